package source

import (
	"context"
	"io"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/portico-dev/portico/gatewaypod/snapshot"
)

// apiLink forwards TCP to the real API server and can be cut: while cut,
// its port refuses connections and every forwarded one is closed (what a
// pod sees while kube-apiserver restarts). Its dial, given to the pod's
// client, notes when each attempt came while the link was cut.
type apiLink struct {
	t            *testing.T
	addr, target string

	mu       sync.Mutex
	ln       net.Listener // nil while cut
	conns    map[net.Conn]struct{}
	attempts []time.Time
}

func newAPILink(t *testing.T, target string) *apiLink {
	l := &apiLink{t: t, target: target, conns: map[net.Conn]struct{}{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l.addr = ln.Addr().String()
	l.serve(ln)
	t.Cleanup(l.cut)
	return l
}

func (l *apiLink) serve(ln net.Listener) {
	l.mu.Lock()
	l.ln = ln
	l.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.DialTimeout("tcp", l.target, 5*time.Second)
			if err != nil {
				c.Close()
				continue
			}
			l.mu.Lock()
			if l.ln != ln { // cut meanwhile
				l.mu.Unlock()
				c.Close()
				up.Close()
				continue
			}
			l.conns[c], l.conns[up] = struct{}{}, struct{}{}
			l.mu.Unlock()
			go func() { _, _ = io.Copy(up, c); up.Close() }()
			go func() { _, _ = io.Copy(c, up); c.Close() }()
		}
	}()
}

// dial is the pod client's dialer.
func (l *apiLink) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	l.mu.Lock()
	if l.ln == nil {
		l.attempts = append(l.attempts, time.Now())
	}
	l.mu.Unlock()
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}

func (l *apiLink) cut() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ln != nil {
		l.ln.Close()
		l.ln = nil
	}
	for c := range l.conns {
		c.Close()
		delete(l.conns, c)
	}
}

// restore listens again and returns the longest time the pod's client went
// without trying to connect while the link was cut (since cutAt).
func (l *apiLink) restore(cutAt time.Time) time.Duration {
	l.mu.Lock()
	longest, prev := time.Duration(0), cutAt
	for _, at := range append(l.attempts, time.Now()) {
		longest = max(longest, at.Sub(prev))
		prev = at
	}
	l.mu.Unlock()
	ln, err := net.Listen("tcp", l.addr)
	if err != nil {
		l.t.Fatalf("listen again on %s: %v", l.addr, err)
	}
	l.serve(ln)
	return longest
}

// TestWatchResumesSoonAfterOutage: while the API server is unreachable, a
// pod's ConfigMap and Secret watches try again at least every
// WatchRetryMax (plus jitter), so they are back within seconds of its
// return. client-go's default backoff waits 6.4-12.8 s before its fifth try
// and 12.8-25.6 s before its sixth, so a change made during a 20 s outage
// could arrive half a minute late.
func TestWatchResumesSoonAfterOutage(t *testing.T) {
	const outage = 20 * time.Second
	// The longest pause between tries once backing off.
	longestPause := time.Duration(float64(WatchRetryMax) * (1 + watchBackoff.Jitter))
	catchUp := longestPause + 3*time.Second // and a relist

	u, err := url.Parse(api.Config.Host)
	if err != nil {
		t.Fatal(err)
	}
	link := newAPILink(t, u.Host)
	cfg := rest.CopyConfig(api.Config)
	cfg.Dial = link.dial
	u.Host = link.addr
	cfg.Host = u.String()
	cfg.Timeout = 5 * time.Second
	podClient, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}

	ctx := context.Background()
	ns := newNamespace(t)
	vA, a := sealed("a")
	vB, b := sealed("b")
	cm, err := kube.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "gw-snapshot"},
		Data:       map[string]string{snapshot.ConfigMapKey: string(a)},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sec, err := kube.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "gw-tls"},
		Data:       map[string][]byte{"k": []byte("1")},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}

	s, _, _ := newSource(t, Options{Namespace: ns, ConfigMap: "gw-snapshot", Client: podClient})
	runSource(t, s)
	var (
		mu        sync.Mutex
		secretGot string
	)
	wctx, cancel := context.WithCancel(ctx)
	secretDone := make(chan error, 1)
	go func() {
		secretDone <- WatchSecret(wctx, SecretOptions{Namespace: ns, Name: "gw-tls", Client: podClient, OnData: func(d map[string][]byte) {
			mu.Lock()
			secretGot = string(d["k"])
			mu.Unlock()
		}})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-secretDone; err != nil {
			t.Errorf("WatchSecret = %v", err)
		}
	})
	secret := func() string { mu.Lock(); defer mu.Unlock(); return secretGot }
	eventually(t, "snapshot A through the link", func() bool { return s.Version() == vA })
	eventually(t, "Secret through the link", func() bool { return secret() == "1" })

	link.cut()
	cutAt := time.Now()
	time.Sleep(time.Second)
	cm.Data = map[string]string{snapshot.ConfigMapKey: string(b)}
	if _, err := kube.CoreV1().ConfigMaps(ns).Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	sec.Data = map[string][]byte{"k": []byte("2")}
	if _, err := kube.CoreV1().Secrets(ns).Update(ctx, sec, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(outage - time.Second)
	if s.Version() != vA || secret() != "1" {
		t.Fatalf("changed while the link was cut: version %s, secret %q", s.Version(), secret())
	}

	pause := link.restore(cutAt)
	back := time.Now()
	t.Logf("longest pause between connection attempts during the outage: %s", pause.Round(time.Millisecond))
	if pause > longestPause+300*time.Millisecond {
		t.Errorf("the watches paused %s between tries while the API was down; want at most %s", pause.Round(time.Millisecond), longestPause)
	}
	for s.Version() != vB || secret() != "2" {
		if time.Since(back) > catchUp {
			t.Fatalf("%s after the API came back: version %s (want %s), secret %q (want \"2\"); the watches must resume within %s",
				time.Since(back).Round(time.Millisecond), s.Version(), vB, secret(), catchUp)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("caught up %s after a %s outage", time.Since(back).Round(time.Millisecond), outage)
}
