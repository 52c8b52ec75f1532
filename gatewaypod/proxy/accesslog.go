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
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
)

// MetricAccessLogDropped counts access log lines dropped because the
// writer fell behind (its buffer was full).
const MetricAccessLogDropped = "portico_gatewaypod_access_log_dropped_total"

// DefaultAccessLogFields are logged when AccessLogOptions.Fields is empty.
// The query string is not among them: it often carries tokens.
var DefaultAccessLogFields = []string{
	"time", "remote", "method", "host", "path", "status", "bytes", "duration_ms", "backend", "request_id",
}

// DefaultAccessLogBuffer is how many lines may wait for the writer.
const DefaultAccessLogBuffer = 4096

// AccessLogOptions configures the access log: one JSON object per line per
// logged request. The zero value logs nothing.
type AccessLogOptions struct {
	// SampleRate is the share of requests logged: 0 logs nothing, 1 all.
	SampleRate float64
	// Fields, in output order (see accessFieldNames); nil means
	// DefaultAccessLogFields. No field carries a request header other than
	// User-Agent: Authorization and Cookie are never logged.
	Fields []string
	// Out receives the lines; nil means os.Stdout.
	Out io.Writer
	// Rand returns numbers in [0, 1) for sampling; nil means
	// math/rand/v2.Float64. It must be safe for concurrent use.
	Rand func() float64
	// Buffer is how many lines may wait for the writer before new ones are
	// dropped (and counted); 0 means DefaultAccessLogBuffer.
	Buffer int
}

// accessField identifies one access log field.
type accessField uint8

const (
	fieldTime accessField = iota
	fieldRemote
	fieldMethod
	fieldHost
	fieldPath
	fieldQuery
	fieldStatus
	fieldBytes
	fieldDurationMs
	fieldBackend
	fieldEndpoint
	fieldRequestID
	fieldUserAgent
	fieldProtocol
	numAccessFields
)

// accessFieldNames are the JSON keys, indexed by accessField.
var accessFieldNames = [numAccessFields]string{
	"time", "remote", "method", "host", "path", "query", "status", "bytes", "duration_ms",
	"backend", "endpoint", "request_id", "user_agent", "protocol",
}

// AccessLogFieldNames lists the fields AccessLogOptions.Fields may name.
func AccessLogFieldNames() []string { return append([]string(nil), accessFieldNames[:]...) }

// accessLog formats sampled requests and hands the lines to a writer
// goroutine through a bounded channel: the request never waits for stdout.
type accessLog struct {
	fields  []accessField
	rate    float64
	rand    func() float64
	lines   chan *[]byte
	bufs    sync.Pool // *[]byte
	entries sync.Pool // *accessEntry
	dropped prometheus.Counter
	out     *bufio.Writer
	stop    chan struct{}
	done    chan struct{}
}

// newAccessLog returns nil when nothing is to be logged.
func newAccessLog(o AccessLogOptions, dropped prometheus.Counter) (*accessLog, error) {
	if !(o.SampleRate > 0) {
		return nil, nil
	}
	if o.SampleRate > 1 {
		return nil, fmt.Errorf("access log sample rate %v is above 1", o.SampleRate)
	}
	names := o.Fields
	if len(names) == 0 {
		names = DefaultAccessLogFields
	}
	l := &accessLog{rate: o.SampleRate, rand: o.Rand, dropped: dropped,
		stop: make(chan struct{}), done: make(chan struct{})}
	for _, n := range names {
		i := 0
		for i < len(accessFieldNames) && accessFieldNames[i] != n {
			i++
		}
		if i == len(accessFieldNames) {
			return nil, fmt.Errorf("unknown access log field %q", n)
		}
		l.fields = append(l.fields, accessField(i))
	}
	if l.rand == nil {
		l.rand = rand.Float64
	}
	n := o.Buffer
	if n <= 0 {
		n = DefaultAccessLogBuffer
	}
	l.lines = make(chan *[]byte, n)
	l.bufs.New = func() any { b := make([]byte, 0, 512); return &b }
	l.entries.New = func() any { return new(accessEntry) }
	out := o.Out
	if out == nil {
		out = os.Stdout
	}
	l.out = bufio.NewWriterSize(out, 64<<10)
	go l.write()
	return l, nil
}

// accessEntry collects what serve learns about one logged request.
type accessEntry struct {
	w         accessWriter
	start     time.Time
	path      string
	query     string
	remote    string
	backend   string
	endpoint  string
	requestID string
}

// begin decides whether req is logged and if so returns its entry, whose
// writer wraps w.
func (l *accessLog) begin(w http.ResponseWriter, req *http.Request, start time.Time) *accessEntry {
	if l.rate < 1 && l.rand() >= l.rate {
		return nil
	}
	e := l.entries.Get().(*accessEntry)
	*e = accessEntry{w: accessWriter{ResponseWriter: w}, start: start, path: requestPath(req)}
	if uri := req.RequestURI; uri != "" {
		if i := strings.IndexByte(uri, '?'); i >= 0 {
			e.query = uri[i+1:]
		}
	} else {
		e.query = req.URL.RawQuery
	}
	if rid := req.Header[hdrXRequestID]; len(rid) == 1 && validRequestID(rid[0]) {
		e.requestID = rid[0]
	}
	return e
}

// finish formats e as a line and queues it, or drops it if the writer is
// behind.
func (l *accessLog) finish(e *accessEntry, req *http.Request, code int, elapsed time.Duration) {
	bp := l.bufs.Get().(*[]byte)
	b := append((*bp)[:0], '{')
	for i, f := range l.fields {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = append(b, accessFieldNames[f]...)
		b = append(b, '"', ':')
		switch f {
		case fieldTime:
			b = append(b, '"')
			b = e.start.UTC().AppendFormat(b, "2006-01-02T15:04:05.000Z07:00")
			b = append(b, '"')
		case fieldRemote:
			remote := e.remote
			if remote == "" {
				if host, _, err := net.SplitHostPort(req.RemoteAddr); err == nil {
					remote = host
				}
			}
			b = appendJSONString(b, remote)
		case fieldMethod:
			b = appendJSONString(b, req.Method)
		case fieldHost:
			b = appendJSONString(b, req.Host)
		case fieldPath:
			b = appendJSONString(b, e.path)
		case fieldQuery:
			b = appendJSONString(b, e.query)
		case fieldStatus:
			b = strconv.AppendInt(b, int64(code), 10)
		case fieldBytes:
			b = strconv.AppendInt(b, e.w.bytes, 10)
		case fieldDurationMs:
			b = strconv.AppendFloat(b, float64(elapsed.Microseconds())/1000, 'f', 3, 64)
		case fieldBackend:
			b = appendJSONString(b, e.backend)
		case fieldEndpoint:
			b = appendJSONString(b, e.endpoint)
		case fieldRequestID:
			b = appendJSONString(b, e.requestID)
		case fieldUserAgent:
			var ua string
			if v := req.Header["User-Agent"]; len(v) > 0 {
				ua = v[0]
			}
			b = appendJSONString(b, ua)
		case fieldProtocol:
			b = appendJSONString(b, req.Proto)
		}
	}
	b = append(b, '}', '\n')
	*bp = b
	*e = accessEntry{}
	l.entries.Put(e)
	select {
	case l.lines <- bp:
	default:
		l.dropped.Inc()
		l.putBuf(bp)
	}
}

func (l *accessLog) putBuf(bp *[]byte) {
	if cap(*bp) <= 16<<10 { // do not keep the buffer of a huge path
		l.bufs.Put(bp)
	}
}

// write copies queued lines to the output, flushing whenever the queue is
// empty, until close.
func (l *accessLog) write() {
	defer close(l.done)
	emit := func(bp *[]byte) {
		_, _ = l.out.Write(*bp)
		l.putBuf(bp)
	}
	for {
		select {
		case bp := <-l.lines:
			emit(bp)
			if len(l.lines) == 0 {
				_ = l.out.Flush()
			}
		case <-l.stop:
			for {
				select {
				case bp := <-l.lines:
					emit(bp)
				default:
					_ = l.out.Flush()
					return
				}
			}
		}
	}
}

// close writes out the queued lines and stops the writer. Lines logged
// later are dropped (and counted) once the queue is full.
func (l *accessLog) close() {
	close(l.stop)
	<-l.done
}

// accessWriter counts the response body bytes of a logged request.
type accessWriter struct {
	http.ResponseWriter
	bytes int64
}

func (w *accessWriter) Write(b []byte) (int, error) {
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach Flush and Hijack.
func (w *accessWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// appendJSONString appends s as a JSON string: quotes, backslashes and
// control characters escaped, invalid UTF-8 replaced by U+FFFD.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i++
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
