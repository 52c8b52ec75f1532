package minicluster

import (
	"fmt"
	"syscall"
)

// Signal sends sig to the live process of the Pod namespace/name, as a
// fault injection: SIGKILL is a crash (the runner restarts the process with
// backoff, and Restarts counts it), SIGTERM asks for a graceful stop. It
// returns the pid signalled, or an error when the Pod has no live process.
func (r *PodRunner) Signal(namespace, name string, sig syscall.Signal) (int, error) {
	r.mu.Lock()
	var target *podProc
	for _, p := range r.procs {
		if p.namespace == namespace && p.name == name {
			target = p
		}
	}
	r.mu.Unlock()
	if target == nil {
		return 0, fmt.Errorf("minicluster: no process for pod %s/%s", namespace, name)
	}
	target.mu.Lock()
	proc, running := target.process, target.running
	target.mu.Unlock()
	if !running || proc == nil {
		return 0, fmt.Errorf("minicluster: pod %s/%s has no live process (waiting to restart)", namespace, name)
	}
	target.logln("sending %s to pid %d", sig, proc.Pid)
	return proc.Pid, proc.Signal(sig)
}

// PID returns the pid of the live process of the Pod namespace/name, or 0.
func (r *PodRunner) PID(namespace, name string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range r.procs {
		if p.namespace == namespace && p.name == name {
			p.mu.Lock()
			defer p.mu.Unlock()
			if p.running && p.process != nil {
				return p.process.Pid
			}
		}
	}
	return 0
}
