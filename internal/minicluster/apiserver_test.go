package minicluster_test

import (
	"context"
	"os"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/portico-dev/portico/internal/minicluster"
)

// TestAPIServerStopStart stops kube-apiserver and starts it again: the API
// is gone meanwhile, then answers on the same address with the same
// credentials and the data etcd kept.
func TestAPIServerStopStart(t *testing.T) {
	assets := os.Getenv("KUBEBUILDER_ASSETS")
	if assets == "" {
		t.Fatal("KUBEBUILDER_ASSETS not set: run `make k8s-assets` (make test sets it)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := minicluster.Start(ctx, minicluster.Options{AssetsDir: assets})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := c.Stop(); err != nil {
			t.Errorf("Stop: %v", err)
		}
	}()
	cms := c.Clientset.CoreV1().ConfigMaps("default")
	cm, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "kept"}, Data: map[string]string{"k": "v"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}

	for round := range 2 { // the second round stops the replacement started by the first
		if err := c.StopAPIServer(); err != nil {
			t.Fatalf("round %d: StopAPIServer: %v", round, err)
		}
		if err := c.StopAPIServer(); err == nil {
			t.Errorf("round %d: a second StopAPIServer succeeded", round)
		}
		short, cancelShort := context.WithTimeout(ctx, 2*time.Second)
		_, err := cms.Get(short, "kept", metav1.GetOptions{})
		cancelShort()
		if err == nil {
			t.Fatalf("round %d: the API answered while stopped", round)
		}
		if err := c.StartAPIServer(ctx); err != nil {
			t.Fatalf("round %d: StartAPIServer: %v", round, err)
		}
		got, err := cms.Get(ctx, "kept", metav1.GetOptions{})
		if err != nil {
			t.Fatalf("round %d: after restart: %v", round, err)
		}
		if got.ResourceVersion != cm.ResourceVersion || got.Data["k"] != "v" {
			t.Errorf("round %d: after restart got %s %v, want %s %v", round, got.ResourceVersion, got.Data, cm.ResourceVersion, cm.Data)
		}
	}
	if err := c.StartAPIServer(ctx); err == nil {
		t.Error("StartAPIServer on a running API server succeeded")
	}
}
