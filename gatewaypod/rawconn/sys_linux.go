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

package rawconn

import (
	"errors"
	"io"
	"syscall"
	"unsafe"
)

// ErrWouldBlock is ReadFD's EAGAIN: nothing to read yet.
var ErrWouldBlock = errors.New("would block")

// ReadFD is one recv(2) on the non-blocking socket fd, issued without
// telling the scheduler (see the package comment), for code that already
// holds the descriptor inside a RawConn callback. EAGAIN is ErrWouldBlock,
// 0 bytes io.EOF.
func ReadFD(fd uintptr, p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for {
		n, errno := rawRead(fd, p)
		switch errno {
		case 0:
			if n == 0 {
				return 0, io.EOF
			}
			return n, nil
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return 0, ErrWouldBlock
		default:
			return 0, errno
		}
	}
}

// PeerClosed reports whether the peer of socket fd closed or reset it: a
// non-consuming, non-blocking one-byte recv sees EOF or an error. Bytes
// waiting, or none yet (EAGAIN), mean the peer is still there.
func PeerClosed(fd uintptr) bool {
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

// rawRead and rawWrite use recvfrom/sendto, not read/write: on a socket
// they skip the VFS layer (file position lock, rw_verify_area, the iter
// indirection), about 0.5 us per request less kernel time at 25k req/s.
// MSG_NOSIGNAL: a peer that is gone gives EPIPE, never SIGPIPE.
func rawRead(fd uintptr, p []byte) (int, syscall.Errno) {
	n, _, errno := syscall.RawSyscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)), 0, 0, 0)
	return int(n), errno
}

func rawWrite(fd uintptr, p []byte) (int, syscall.Errno) {
	n, _, errno := syscall.RawSyscall6(syscall.SYS_SENDTO, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)), syscall.MSG_NOSIGNAL, 0, 0)
	return int(n), errno
}
