package minicluster

import (
	"os"
	"testing"
)

// TestOwnRSS finds this test process through its pid in our PID namespace
// (under KUBEBUILDER_ASSETS, TestMain runs it inside EnterPrivateNetwork,
// where /proc shows other numbers) and reads a plausible resident size.
func TestOwnRSS(t *testing.T) {
	procPID, err := procPIDOf(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	rss, err := vmRSS(procPID)
	if err != nil {
		t.Fatal(err)
	}
	if rss < 1<<20 || rss > 4<<30 {
		t.Errorf("RSS = %d bytes, want between 1 MiB and 4 GiB", rss)
	}
	if _, err := procPIDOf(1 << 30); err == nil {
		t.Error("procPIDOf(a pid that does not exist): want an error")
	}
}
