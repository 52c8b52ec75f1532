package proxy

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"runtime"
	"testing"
	"time"

	"github.com/portico-dev/portico/internal/testcerts"
)

func TestVerifyCache(t *testing.T) {
	ca := testcerts.New(t, nil, testcerts.Options{CA: true})
	other := testcerts.New(t, nil, testcerts.Options{CA: true})
	good := testcerts.New(t, ca, testcerts.Options{Client: true})
	stranger := testcerts.New(t, other, testcerts.Options{Client: true})
	pool, pool2 := x509.NewCertPool(), x509.NewCertPool()
	pool.AddCert(ca.Cert)
	pool2.AddCert(ca.Cert)
	var c verifyCache

	cs := &tls.ConnectionState{PeerCertificates: []*x509.Certificate{good.Cert}}
	if err := c.verify(cs, pool, 1); err != nil {
		t.Fatal(err)
	}
	// Same connection, pool and depth: the result is reused (the swapped
	// certificate is not looked at).
	cs.PeerCertificates = []*x509.Certificate{stranger.Cert}
	if err := c.verify(cs, pool, 1); err != nil {
		t.Fatalf("not reused: %v", err)
	}
	// A new pool (new snapshot or CA bundle) verifies again.
	if err := c.verify(cs, pool2, 1); err == nil {
		t.Fatal("a new pool reused the old result")
	}
	// Another connection is verified on its own.
	if err := c.verify(&tls.ConnectionState{PeerCertificates: []*x509.Certificate{stranger.Cert}}, pool, 1); err == nil {
		t.Fatal("another connection reused a result")
	}
	// A result never outlives the leaf.
	short := testcerts.New(t, ca, testcerts.Options{Client: true, NotAfter: time.Now().Add(time.Second)})
	cs3 := &tls.ConnectionState{PeerCertificates: []*x509.Certificate{short.Cert}}
	if err := c.verify(cs3, pool, 1); err != nil {
		t.Fatal(err)
	}
	v, _ := c.m.Load(weakOf(cs3))
	if until := v.(*verified).until; until.After(short.Cert.NotAfter) {
		t.Errorf("result valid until %v, after the leaf's NotAfter %v", until, short.Cert.NotAfter)
	}

	// Entries go away with their connections.
	cs, cs3 = nil, nil
	for i := 0; i < 200 && mapLen(&c) > 0; i++ {
		runtime.GC()
		runtime.Gosched()
	}
	if n := mapLen(&c); n != 0 {
		t.Errorf("%d entries left after their connections were collected", n)
	}
}

func mapLen(c *verifyCache) int {
	n := 0
	c.m.Range(func(any, any) bool { n++; return true })
	return n
}

// BenchmarkVerifyCacheHit is the per-request cost once a connection's
// certificate is verified (compare BenchmarkVerifyClientChain).
func BenchmarkVerifyCacheHit(b *testing.B) {
	ca := testcerts.New(b, nil, testcerts.Options{CA: true})
	leaf := testcerts.New(b, ca, testcerts.Options{Client: true})
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	cs := &tls.ConnectionState{PeerCertificates: []*x509.Certificate{leaf.Cert}}
	var c verifyCache
	for b.Loop() {
		if err := c.verify(cs, pool, 1); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStripClientCertHeaders is what every request pays for dropping
// client-supplied ssl-client-* headers (a browser-like header set).
func BenchmarkStripClientCertHeaders(b *testing.B) {
	h := http.Header{"Accept": {"text/html"}, "Accept-Encoding": {"gzip"}, "Accept-Language": {"en"}, "Cookie": {"a=b"},
		"User-Agent": {"Mozilla/5.0"}, "Sec-Fetch-Mode": {"navigate"}, "Cache-Control": {"no-cache"}, "Referer": {"https://x/"}}
	for b.Loop() {
		stripClientCertHeaders(h, false)
	}
}
