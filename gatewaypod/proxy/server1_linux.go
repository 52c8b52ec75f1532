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
	"syscall"
	"unsafe"
)

// peekReadable reports whether the socket fd has a byte to read (or an
// error or EOF to report), without consuming anything and without
// blocking: recv(MSG_PEEK|MSG_DONTWAIT) of one byte. EAGAIN: not yet.
func peekReadable(fd uintptr) (bool, error) {
	var b [1]byte
	for {
		_, _, errno := syscall.Syscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&b[0])), 1,
			syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
		switch errno {
		case 0:
			return true, nil // data, or EOF (0 bytes): the read reports it
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false, nil
		default:
			return true, nil // the read reports the error
		}
	}
}
