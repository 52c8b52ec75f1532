package minicluster

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"sync"
	"syscall"
	"time"
)

// The kernel delivers a child's parent-death signal (Pdeathsig) when the
// *thread* that forked it exits, not when the process does. Go normally keeps
// its threads forever, except that a thread whose goroutine exits while
// locked to it (runtime.LockOSThread) is destroyed, which would kill children
// forked from that thread by surprise. All children are therefore forked from
// one dedicated goroutine that locks its thread and never exits, so their
// Pdeathsig fires only when the whole process dies.
var spawner struct {
	once sync.Once
	ch   chan func()
}

// onSpawnThread runs f on the dedicated spawning thread and waits for it.
// f must not call onSpawnThread itself.
func onSpawnThread(f func()) {
	spawner.once.Do(func() {
		spawner.ch = make(chan func())
		go func() {
			runtime.LockOSThread() // never unlocked, on purpose (see above)
			for f := range spawner.ch {
				f()
			}
		}()
	})
	done := make(chan struct{})
	spawner.ch <- func() { defer close(done); f() }
	<-done
}

// childSysProcAttr is used for every process this package starts: it dies
// with us (SIGKILL on parent death) and gets its own process group, so a
// Ctrl-C on the terminal reaches only our process, which then stops children
// in order, and so that stopping a child also reaches its own children.
func childSysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// child is a long-running helper process (kube-controller-manager,
// kube-scheduler, kwok).
type child struct {
	name    string
	cmd     *exec.Cmd
	log     *os.File
	exited  chan struct{}
	waitErr error
}

// startChild starts path with args, stdout and stderr appended to logPath.
func startChild(name, path string, args []string, logPath string) (*child, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(path, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = childSysProcAttr()
	onSpawnThread(func() { err = cmd.Start() })
	if err != nil {
		_ = logf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	c := &child{name: name, cmd: cmd, log: logf, exited: make(chan struct{})}
	go func() {
		c.waitErr = cmd.Wait()
		_ = logf.Close()
		close(c.exited)
	}()
	return c, nil
}

// alive reports whether the process has not exited yet.
func (c *child) alive() bool {
	select {
	case <-c.exited:
		return false
	default:
		return true
	}
}

// stop sends SIGTERM to the child's process group, then SIGKILL after grace,
// and waits for the child to be reaped. It returns an error only if the
// process had to be killed or died before stop was called.
func (c *child) stop(grace time.Duration) error {
	return terminate(c.cmd, c.exited, grace, func() error {
		if c.waitErr != nil {
			return fmt.Errorf("%s exited early: %w", c.name, c.waitErr)
		}
		return fmt.Errorf("%s exited early", c.name)
	})
}

// terminate stops a started command whose Wait closes exited. If the process
// already exited, it returns early().
func terminate(cmd *exec.Cmd, exited <-chan struct{}, grace time.Duration, early func() error) error {
	select {
	case <-exited:
		if early != nil {
			return early()
		}
		return nil
	default:
	}
	pid := cmd.Process.Pid
	_ = syscall.Kill(-pid, syscall.SIGTERM) // whole process group
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
		_ = syscall.Kill(-pid, syscall.SIGKILL) // leftovers of the group, if any
		return nil
	case <-time.After(grace):
	}
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	_ = cmd.Process.Kill()
	<-exited
	return errors.New("did not exit on SIGTERM within " + grace.String() + ", killed")
}
