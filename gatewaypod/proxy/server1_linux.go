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
	"io"
	"syscall"
	"unsafe"
)

// fastPathSupported: the fast path drives client sockets itself here.
const fastPathSupported = true

// readFD is one read(2) on a non-blocking socket, issued without telling
// the scheduler (it never blocks; a scheduler-visible call would let the
// runtime's monitor thread hand the P to another thread during a long one,
// and wake up every 20 µs for a while after). EAGAIN is errWouldBlock, 0
// bytes io.EOF.
func readFD(fd uintptr, p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for {
		n, _, errno := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
		switch errno {
		case 0:
			if n == 0 {
				return 0, io.EOF
			}
			return int(n), nil
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return 0, errWouldBlock
		default:
			return 0, errno
		}
	}
}

// peekClosed reports whether the socket's peer closed or reset it: a
// non-consuming, non-blocking one-byte recv sees EOF or an error. Bytes
// waiting, or none yet (EAGAIN), mean the peer is still there.
func peekClosed(fd uintptr) bool {
	var b [1]byte
	for {
		n, _, errno := syscall.RawSyscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&b[0])), 1,
			syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
		switch errno {
		case 0:
			return n == 0
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false
		default:
			return true
		}
	}
}
