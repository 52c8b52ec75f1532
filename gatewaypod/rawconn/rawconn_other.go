//go:build !linux

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

// Package rawconn is a no-op off Linux: connections are used as they are.
package rawconn

import (
	"errors"
	"net"
)

// Wrap returns c.
func Wrap(c net.Conn) net.Conn { return c }

// Listener returns ln.
func Listener(ln net.Listener) net.Listener { return ln }

// ErrWouldBlock is ReadFD's EAGAIN.
var ErrWouldBlock = errors.New("would block")

// ReadFD is not implemented here: every call would block.
func ReadFD(uintptr, []byte) (int, error) { return 0, ErrWouldBlock }

// PeerClosed cannot look here: it reports the peer present.
func PeerClosed(uintptr) bool { return false }
