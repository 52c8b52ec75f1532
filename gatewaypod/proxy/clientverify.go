package proxy

import (
	"crypto/tls"
	"crypto/x509"
	"runtime"
	"sync"
	"time"
	"weak"
)

// verifyTTL bounds how long a connection's verification result is reused
// before the chain is verified again (a CA or intermediate may expire).
const verifyTTL = time.Minute

// verifyCache remembers the verification of each TLS connection's client
// certificate, so the chain is verified once per connection rather than
// once per request (about 0.4 ms each). net/http hands every request of a
// connection the same *tls.ConnectionState, for HTTP/1.1 and HTTP/2; the
// cache holds it weakly and drops the entry when the connection is gone.
type verifyCache struct {
	m sync.Map // weak.Pointer[tls.ConnectionState] -> *verified
}

// verified is one result, valid for the pool and depth it was made with.
type verified struct {
	pool  *x509.CertPool
	depth int
	until time.Time
	err   error
}

// verify returns verifyClientChain(pool, cs.PeerCertificates, depth),
// reusing the connection's earlier result when pool and depth are the same
// (a new snapshot or CA bundle gives a new pool, and a new verification).
func (c *verifyCache) verify(cs *tls.ConnectionState, pool *x509.CertPool, depth int) error {
	now := time.Now()
	certs := cs.PeerCertificates
	k := weakOf(cs)
	if v, ok := c.m.Load(k); ok {
		r := v.(*verified)
		if r.pool == pool && r.depth == depth && now.Before(r.until) {
			return r.err
		}
	}
	r := &verified{pool: pool, depth: depth, until: now.Add(verifyTTL), err: verifyClientChain(pool, certs, depth)}
	if na := certs[0].NotAfter; na.Before(r.until) {
		r.until = na
	}
	if _, loaded := c.m.Swap(k, r); !loaded {
		runtime.AddCleanup(cs, func(k weak.Pointer[tls.ConnectionState]) { c.m.Delete(k) }, k)
	}
	return r.err
}

func weakOf(cs *tls.ConnectionState) weak.Pointer[tls.ConnectionState] { return weak.Make(cs) }
