/*
Copyright 2026 The Portico Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package proxy

import (
	"net/http"
	"slices"
)

// A chunked HTTP/1.x request may also have carried a Content-Length, or a
// Transfer-Encoding folded over two lines; net/http reads such a request
// by Transfer-Encoding alone (RFC 9112 6.3 allows it) and no longer shows
// the Content-Length to the handler. A front proxy that framed it by
// Content-Length would read what follows as a different request, so RFC
// 9112 requires closing the connection after the response: whatever the
// client sent after the body is never read as a request. Chunked uploads
// are rare on HTTP/1.1, so the cost is one reconnection each.

// needsCloseAfterReply reports whether the connection of req must not be
// reused after the response.
func needsCloseAfterReply(req *http.Request) bool {
	return req.ProtoMajor == 1 && slices.Contains(req.TransferEncoding, "chunked")
}

// closeAfterReply makes net/http close the connection after the response
// by sending "Connection: close" with whatever status is written.
type closeAfterReply struct {
	http.ResponseWriter
	wrote bool
}

func (w *closeAfterReply) WriteHeader(code int) {
	if !w.wrote && code >= 200 {
		w.wrote = true
		w.Header().Set("Connection", "close")
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *closeAfterReply) Write(b []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach Flush and Hijack.
func (w *closeAfterReply) Unwrap() http.ResponseWriter { return w.ResponseWriter }
