package minicluster

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// RSS returns the resident set size, in bytes, of the live process of the
// Pod namespace/name, from /proc/<pid>/status (VmRSS). Inside
// EnterPrivateNetwork /proc shows the outer PID namespace, so the process is
// found by its pid in ours: the last NSpid of a process in our namespace.
func (r *PodRunner) RSS(namespace, name string) (int64, error) {
	pid := r.PID(namespace, name)
	if pid == 0 {
		return 0, fmt.Errorf("minicluster: pod %s/%s has no live process", namespace, name)
	}
	procPID, err := procPIDOf(pid)
	if err != nil {
		return 0, err
	}
	return vmRSS(procPID)
}

// procPIDOf finds the /proc entry of the process whose pid in our PID
// namespace is pid.
func procPIDOf(pid int) (int, error) {
	self, err := os.Readlink("/proc/self/ns/pid")
	if err != nil {
		return 0, err
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		if ns, err := os.Readlink(filepath.Join("/proc", e.Name(), "ns", "pid")); err != nil || ns != self {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "status"))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "NSpid:" && f[len(f)-1] == strconv.Itoa(pid) {
				return strconv.Atoi(e.Name())
			}
		}
	}
	return 0, fmt.Errorf("minicluster: no /proc entry for pid %d of our PID namespace", pid)
}

// vmRSS reads VmRSS of /proc/<pid>/status, in bytes.
func vmRSS(pid int) (int64, error) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "VmRSS:" && f[2] == "kB" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("minicluster: no VmRSS in /proc/%d/status", pid)
}
