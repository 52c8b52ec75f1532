package minicluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// StopAPIServer stops kube-apiserver (SIGTERM, then SIGKILL after a grace
// period) and leaves etcd and everything else running, to test how clients
// live through an API outage. StartAPIServer brings it back with the same
// command line: same port, certificates, etcd and so the same data, so
// Config and every kubeconfig written stay valid.
func (c *Cluster) StopAPIServer() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.apiStopped != nil {
		return errors.New("minicluster: kube-apiserver already stopped")
	}
	var argv []string
	if c.apiServer != nil { // a replacement we started ourselves
		argv = c.apiServer.cmd.Args
		if err := c.apiServer.stop(stopGrace); err != nil {
			return fmt.Errorf("minicluster: stop kube-apiserver: %w", err)
		}
		c.apiServer = nil
	} else { // the one envtest started: find it by name among our children
		pid, err := childByName("kube-apiserver")
		if err != nil {
			return err
		}
		if argv, err = procStrings(pid, "cmdline"); err != nil {
			return err
		}
		own, err := ownPID(pid)
		if err != nil {
			return err
		}
		p, err := os.FindProcess(own)
		if err != nil {
			return err
		}
		_ = p.Signal(os.Interrupt)
		// envtest's own goroutine reaps it; wait until it is gone.
		deadline := time.Now().Add(stopGrace)
		for alive(pid) && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if alive(pid) {
			_ = p.Kill()
		}
		for alive(pid) {
			time.Sleep(50 * time.Millisecond)
		}
	}
	c.apiStopped = &stoppedAPIServer{argv: argv}
	return nil
}

// StartAPIServer starts kube-apiserver again after StopAPIServer and waits
// until it answers /readyz (bounded by ctx).
func (c *Cluster) StartAPIServer(ctx context.Context) error {
	c.mu.Lock()
	s := c.apiStopped
	if s == nil || c.stopped {
		c.mu.Unlock()
		return errors.New("minicluster: kube-apiserver is not stopped")
	}
	ch, err := startChild("kube-apiserver", s.argv[0], s.argv[1:], filepath.Join(c.LogDir, "kube-apiserver.log"))
	if err == nil {
		c.apiServer, c.apiStopped = ch, nil
	}
	c.mu.Unlock()
	if err != nil {
		return fmt.Errorf("minicluster: start kube-apiserver: %w", err)
	}
	var last error
	for {
		if !ch.alive() {
			return fmt.Errorf("minicluster: kube-apiserver exited on restart: %v (logs in %s)", ch.waitErr, c.LogDir)
		}
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, last = c.Clientset.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(rctx)
		cancel()
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("minicluster: kube-apiserver not ready after restart: %w (last: %v)", ctx.Err(), last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// stoppedAPIServer is the command line of a stopped kube-apiserver (which
// inherited our environment, as the restarted one does).
type stoppedAPIServer struct{ argv []string }

// childByName returns the pid of the only child process of ours whose
// command name is name. Pids are as /proc shows them: inside
// EnterPrivateNetwork, /proc is still the outer PID namespace's.
func childByName(name string) (int, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	link, err := os.Readlink("/proc/self")
	if err != nil {
		return 0, err
	}
	self, err := strconv.Atoi(link)
	if err != nil {
		return 0, err
	}
	var found []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...
		open, end := bytes.IndexByte(stat, '('), bytes.LastIndexByte(stat, ')')
		if open < 0 || end < open {
			continue
		}
		fields := strings.Fields(string(stat[end+1:]))
		if string(stat[open+1:end]) != name || len(fields) < 2 || fields[0] == "Z" {
			continue
		}
		if ppid, _ := strconv.Atoi(fields[1]); ppid == self {
			found = append(found, pid)
		}
	}
	if len(found) != 1 {
		return 0, fmt.Errorf("minicluster: %d child processes named %s, want 1", len(found), name)
	}
	return found[0], nil
}

// ownPID translates a pid of /proc's namespace into ours (the last NSpid).
func ownPID(procPID int) (int, error) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(procPID), "status"))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "NSpid:" {
			return strconv.Atoi(f[len(f)-1])
		}
	}
	return procPID, nil
}

// procStrings reads a NUL-separated /proc/<pid>/<file> such as cmdline.
func procStrings(pid int, file string) ([]string, error) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), file))
	if err != nil {
		return nil, err
	}
	return strings.Split(strings.TrimRight(string(b), "\x00"), "\x00"), nil
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	stat, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return false
	}
	end := bytes.LastIndexByte(stat, ')')
	return end < 0 || !bytes.HasPrefix(bytes.TrimSpace(stat[end+1:]), []byte("Z"))
}
