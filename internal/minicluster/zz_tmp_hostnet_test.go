package minicluster

import (
	"context"
	"os"
	"testing"
	"time"
)

func TestTmpHostNet(t *testing.T) {
	if os.Getenv("TMP_HOSTNET") == "" {
		t.Skip()
	}
	c, err := Start(context.Background(), Options{AssetsDir: "/work/main/bin/k8s", Workloads: true, WorkDir: "/tmp/mc-hostnet"})
	if err != nil {
		t.Fatal(err)
	}
	t.Log("started", os.Getpid())
	time.Sleep(time.Hour)
	_ = c.Stop()
}
