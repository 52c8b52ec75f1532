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
	"os"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// idleParker keeps the keep-alive connections that waited idleParkAfter for
// their next request without a goroutine: their sockets wait in an epoll
// instance of its own (level-triggered, one-shot), which the runtime's
// poller waits on like any socket, so no thread blocks. A readable socket
// gets a goroutine again; one idle past the idle timeout is closed.
//
// Why: a goroutine that served a request keeps the stack that request
// grew (several KiB) for as long as the connection lives; a parked
// connection costs its descriptor and its fastConn.
type idleParker struct {
	srv    *FastServer
	epfd   int
	ep     *os.File // epfd, for the runtime poller and deadlines
	raw    syscall.RawConn
	pollFn func(uintptr) bool
	events []unix.EpollEvent
	n      int

	mu        sync.Mutex
	parked    map[int32]*fastConn // by socket
	closed    bool
	lastSweep time.Time
}

func newIdleParker(s *FastServer) (*idleParker, error) {
	fd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, err
	}
	f := os.NewFile(uintptr(fd), "portico-idle-connections")
	raw, err := f.SyscallConn()
	if err == nil {
		err = f.SetReadDeadline(time.Time{}) // fails unless the poller has it
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	p := &idleParker{srv: s, epfd: fd, ep: f, raw: raw, events: make([]unix.EpollEvent, 128),
		parked: map[int32]*fastConn{}, lastSweep: time.Now()}
	p.pollFn = p.poll
	return p, nil
}

// run wakes parked connections whose client sent something, and once a
// second closes those idle past the idle timeout, until close.
func (p *idleParker) run() {
	for {
		_ = p.ep.SetReadDeadline(time.Now().Add(time.Second))
		p.n = 0
		err := p.raw.Read(p.pollFn)
		p.wake(p.events[:p.n])
		if err != nil && !os.IsTimeout(err) {
			return // closed
		}
		if now := time.Now(); now.Sub(p.lastSweep) >= time.Second {
			p.lastSweep = now
			p.sweep(now)
		}
	}
}

// poll is the RawConn.Read callback: a non-blocking epoll_pwait.
func (p *idleParker) poll(fd uintptr) bool {
	for {
		n, _, errno := syscall.RawSyscall6(syscall.SYS_EPOLL_PWAIT, fd, uintptr(unsafe.Pointer(&p.events[0])),
			uintptr(len(p.events)), 0, 0, 0)
		switch errno {
		case 0:
			p.n = int(n)
			return n > 0
		case syscall.EINTR:
			continue
		default:
			return true
		}
	}
}

func (p *idleParker) wake(events []unix.EpollEvent) {
	for i := range events {
		fd := events[i].Fd
		p.mu.Lock()
		fc := p.parked[fd]
		delete(p.parked, fd)
		p.mu.Unlock()
		if fc == nil {
			continue
		}
		_ = unix.EpollCtl(p.epfd, unix.EPOLL_CTL_DEL, int(fd), nil)
		go fc.resume()
	}
}

// sweep closes the connections idle past the idle timeout.
func (p *idleParker) sweep(now time.Time) {
	limit := p.srv.idleLimit()
	if limit <= 0 {
		return
	}
	var expired []*fastConn
	p.mu.Lock()
	for fd, fc := range p.parked {
		if now.Sub(fc.idleSince) >= limit {
			delete(p.parked, fd)
			expired = append(expired, fc)
		}
	}
	p.mu.Unlock()
	for _, fc := range expired {
		_ = unix.EpollCtl(p.epfd, unix.EPOLL_CTL_DEL, int(fc.parkedFD), nil)
		fc.finish(false)
	}
}

// close stops parking and closes the parked connections.
func (p *idleParker) close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	parked := p.parked
	p.parked = nil
	p.mu.Unlock()
	for _, fc := range parked {
		fc.finish(false)
	}
	p.ep.Close()
}

// park hands fc, idle and holding no buffered bytes, to the parker; false
// when it cannot (the caller then closes the connection as before).
func (s *FastServer) park(fc *fastConn) bool {
	p := s.parker
	fc.releaseReader()
	if fc.br != nil {
		return false // unread bytes: not idle after all
	}
	// The parker keeps the idle timeout; the socket's deadline would only
	// fire into the void.
	_ = fc.conn.SetReadDeadline(time.Time{})
	fc.armedFor = 0
	fd := int32(-1)
	if err := fc.raw.Control(func(f uintptr) { fd = int32(f) }); err != nil {
		return false
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return false
	}
	fc.parkedFD = fd
	p.parked[fd] = fc
	p.mu.Unlock()
	// Level-triggered: bytes that came before this call report at once.
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT, Fd: fd}
	if err := unix.EpollCtl(p.epfd, unix.EPOLL_CTL_ADD, int(fd), &ev); err != nil {
		p.mu.Lock()
		owned := p.parked[fd] == fc
		delete(p.parked, fd)
		p.mu.Unlock()
		return !owned // close took it meanwhile: it is finished
	}
	return true
}

// resume serves a parked connection whose client sent something (or
// closed) on a new goroutine.
func (fc *fastConn) resume() {
	fc.arm(fc.srv.idleWait())
	fc.run()
}
