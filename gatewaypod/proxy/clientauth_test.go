package proxy

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/portico-dev/portico/gatewaypod/snapshot"
	"github.com/portico-dev/portico/internal/testcerts"
)

// clientAuthFront serves a snapshot with one host per verification mode
// over TLS (and cleartext), with a trusted and an untrusted CA.
type clientAuthFront struct {
	tlsAddr, plainURL string
	ca                *testcerts.Cert
}

func newClientAuthFront(t *testing.T) *clientAuthFront {
	t.Helper()
	b := newBackend(t, "b")
	ca := testcerts.New(t, nil, testcerts.Options{CommonName: "client CA", CA: true})
	srv := testcerts.New(t, nil, testcerts.Options{DNSNames: []string{"*.test"}})
	auth := func(verify string, mut ...func(*snapshot.ClientAuth)) *snapshot.ClientAuth {
		c := &snapshot.ClientAuth{CASecret: "ns/ca", CAHash: snapshot.DataHash(ca.CertPEM), Verify: verify}
		for _, m := range mut {
			m(c)
		}
		return c
	}
	hosts := map[string]*snapshot.ClientAuth{
		"secure.test":   auth(snapshot.VerifyOn, func(c *snapshot.ClientAuth) { c.PassCertificate = true }),
		"optional.test": auth(snapshot.VerifyOptional),
		"noca.test":     auth(snapshot.VerifyOptionalNoCA),
		"page.test":     auth(snapshot.VerifyOn, func(c *snapshot.ClientAuth) { c.ErrorPage = "https://errors.example.com/cert.html" }),
		"deep.test":     auth(snapshot.VerifyOn, func(c *snapshot.ClientAuth) { c.Depth = 2 }),
		"off.test":      auth(snapshot.VerifyOff),
		"cn.test":       auth(snapshot.VerifyOn, func(c *snapshot.ClientAuth) { c.MatchCN = "CN=(good client|chained client)" }),
		"cnopt.test":    auth(snapshot.VerifyOptional, func(c *snapshot.ClientAuth) { c.MatchCN = "CN=good" }),
		"cnoff.test":    auth(snapshot.VerifyOff, func(c *snapshot.ClientAuth) { c.MatchCN = "CN=good" }),
		"unloaded.test": {CASecret: "ns/missing", CAHash: "0123456789abcdef"},
		"public.test":   nil,
	}
	s := &snapshot.Snapshot{}
	for _, h := range sortedHostKeys(hosts) {
		s.Hosts = append(s.Hosts, snapshot.VirtualHost{Host: h, ClientAuth: hosts[h], Routes: []snapshot.Route{{
			Path: "/", PathType: snapshot.PathPrefix, Backend: snapshot.Backend{Name: "b", Endpoints: []string{addr(b)}}}}})
	}
	cert := testCert{secret: "ns/tls", crt: srv.CertPEM, key: srv.KeyPEM, hosts: []string{"*.test"}}
	s.Certificates = []snapshot.Certificate{cert.pinned()}
	s.Version = snapshot.Hash(s)

	p, plain := newProxy(t, nil)
	rt := compile(t, s)
	p.Swap(rt)
	store, err := NewCertStore(func(n string) *snapshot.Certificate { return p.Router().Certificate(n) }, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	store.SetClientAuthLookup(func(n string) *snapshot.ClientAuth { return p.Router().ClientAuth(n) })
	p.SetClientCAs(store.ClientCAPool)
	store.SetCertificates(s.Certificates)
	store.SetClientCAs(rt.ClientCAs())
	data := secretData(cert)
	data[snapshot.CADataKey("ns/ca")] = ca.CertPEM
	store.SetData(data)
	return &clientAuthFront{tlsAddr: tlsFront(t, p, store), plainURL: plain.URL, ca: ca}
}

func sortedHostKeys(m map[string]*snapshot.ClientAuth) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// caResult is what one request through the front produced.
type caResult struct {
	status   int
	location string
	backend  http.Header // the upstream's view; nil when not proxied
	asked    bool        // the handshake requested a client certificate
}

// do sends GET path with SNI sni and Host host, offering cert (nil: none).
func (f *clientAuthFront) do(t *testing.T, sni, host string, cert *tls.Certificate, h2 bool, hdr map[string]string) caResult {
	t.Helper()
	var res caResult
	tr := &http.Transport{ForceAttemptHTTP2: h2, TLSClientConfig: &tls.Config{ServerName: sni, InsecureSkipVerify: true,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			res.asked = true
			if cert == nil {
				return &tls.Certificate{}, nil
			}
			return cert, nil
		}}}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 5 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	hdr2 := map[string]string{"Host": host}
	for k, v := range hdr {
		hdr2[k] = v
	}
	resp, body := get(t, c, "https://"+f.tlsAddr+"/", hdr2)
	res.status, res.location = resp.StatusCode, resp.Header.Get("Location")
	if h2 && resp.ProtoMajor != 2 {
		t.Errorf("want HTTP/2, got %s", resp.Proto)
	}
	if resp.StatusCode == http.StatusOK {
		res.backend = decodeEcho(t, body).Header
	}
	return res
}

func TestClientAuth(t *testing.T) {
	f := newClientAuthFront(t)
	ca := f.ca
	other := testcerts.New(t, nil, testcerts.Options{CommonName: "other CA", CA: true})
	leaf := func(parent *testcerts.Cert, o testcerts.Options) *tls.Certificate {
		c := testcerts.New(t, parent, o).TLS()
		return &c
	}
	good := leaf(ca, testcerts.Options{CommonName: "good client", Client: true})
	wrongCA := leaf(other, testcerts.Options{CommonName: "stranger", Client: true})
	expired := leaf(ca, testcerts.Options{CommonName: "old client", Client: true,
		NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-24 * time.Hour)})
	serverOnly := leaf(ca, testcerts.Options{CommonName: "server purpose"})
	inter := testcerts.New(t, ca, testcerts.Options{CommonName: "intermediate", CA: true})
	chained := testcerts.New(t, inter, testcerts.Options{CommonName: "chained client", Client: true}).TLS(inter)
	forged := map[string]string{"Ssl-Client-Verify": "SUCCESS", "ssl_client_subject_dn": "CN=admin", "SSL-Client-Cert": "x"}

	type want struct {
		status   int
		verify   string // ssl-client-verify upstream ("" = absent)
		subject  string // substring of ssl-client-subject-dn
		location string
		asked    bool
	}
	tests := map[string]struct {
		sni, host string
		cert      *tls.Certificate
		h2        bool
		hdr       map[string]string
		want      want
	}{
		"on: a valid certificate passes, over HTTP/2 too": {sni: "secure.test", host: "secure.test", cert: good, h2: true,
			want: want{status: 200, verify: "SUCCESS", subject: "CN=good client", asked: true}},
		"on: no certificate is refused":                    {sni: "secure.test", host: "secure.test", want: want{status: 400, asked: true}},
		"on: a certificate of another CA":                  {sni: "secure.test", host: "secure.test", cert: wrongCA, want: want{status: 400, asked: true}},
		"on: an expired certificate":                       {sni: "secure.test", host: "secure.test", cert: expired, want: want{status: 400, asked: true}},
		"on: a server-only certificate":                    {sni: "secure.test", host: "secure.test", cert: serverOnly, want: want{status: 400, asked: true}},
		"on: a chain deeper than depth 1":                  {sni: "secure.test", host: "secure.test", cert: &chained, want: want{status: 400, asked: true}},
		"on: depth 2 accepts the intermediate":             {sni: "deep.test", host: "deep.test", cert: &chained, want: want{status: 200, verify: "SUCCESS", subject: "CN=chained client", asked: true}},
		"on: a CA bundle not loaded fails closed":          {sni: "unloaded.test", host: "unloaded.test", cert: good, want: want{status: 400, asked: true}},
		"on with error page: 302 to it":                    {sni: "page.test", host: "page.test", want: want{status: 302, location: "https://errors.example.com/cert.html", asked: true}},
		"optional: none passes as NONE, forgeries dropped": {sni: "optional.test", host: "optional.test", hdr: forged, want: want{status: 200, verify: "NONE", asked: true}},
		"optional: a bad certificate is refused":           {sni: "optional.test", host: "optional.test", cert: wrongCA, want: want{status: 400, asked: true}},
		"optional: a good one passes":                      {sni: "optional.test", host: "optional.test", cert: good, want: want{status: 200, verify: "SUCCESS", subject: "CN=good client", asked: true}},
		"optional_no_ca: a stranger passes, marked FAILED": {sni: "noca.test", host: "noca.test", cert: wrongCA,
			want: want{status: 200, verify: "FAILED:unable to get local issuer certificate", subject: "CN=stranger", asked: true}},
		"optional_no_ca: an expired certificate is refused": {sni: "noca.test", host: "noca.test", cert: expired, want: want{status: 400, asked: true}},
		"optional_no_ca: none passes as NONE":               {sni: "noca.test", host: "noca.test", want: want{status: 200, verify: "NONE", asked: true}},
		"off: no certificate is asked for":                  {sni: "off.test", host: "off.test", cert: good, want: want{status: 200, verify: "NONE"}},
		"no client auth: forged headers are dropped":        {sni: "public.test", host: "public.test", hdr: forged, want: want{status: 200}},
		// auth-tls-match-cn: nginx's ~ on the subject DN, unanchored.
		"match-cn: a matching subject passes":          {sni: "cn.test", host: "cn.test", cert: good, want: want{status: 200, verify: "SUCCESS", subject: "CN=good client", asked: true}},
		"match-cn: another subject of the same CA 403": {sni: "cn.test", host: "cn.test", cert: leaf(ca, testcerts.Options{CommonName: "mallory", Client: true}), want: want{status: 403, asked: true}},
		"match-cn: the pattern is not anchored":        {sni: "cnopt.test", host: "cnopt.test", cert: good, want: want{status: 200, verify: "SUCCESS", subject: "CN=good client", asked: true}},
		"match-cn: verification still comes first":     {sni: "cn.test", host: "cn.test", cert: wrongCA, want: want{status: 400, asked: true}},
		"match-cn, optional: no certificate is 403":    {sni: "cnopt.test", host: "cnopt.test", want: want{status: 403, asked: true}},
		"match-cn, off: nothing can match, 403":        {sni: "cnoff.test", host: "cnoff.test", cert: good, want: want{status: 403}},
		// The classic hole: TLS for a name that does not ask for a
		// certificate, then the Host of one that does.
		"SNI without client auth, Host with: 421":      {sni: "public.test", host: "secure.test", cert: good, want: want{status: 421}},
		"SNI without client auth, Host with, HTTP/2":   {sni: "public.test", host: "secure.test", cert: good, h2: true, want: want{status: 421}},
		"SNI with other settings, Host secure: 421":    {sni: "noca.test", host: "secure.test", cert: good, want: want{status: 421, asked: true}},
		"no SNI at all, Host secure: 421":              {sni: "", host: "secure.test", cert: good, want: want{status: 421}},
		"SNI secure, Host public: served without auth": {sni: "secure.test", host: "public.test", cert: good, want: want{status: 200, asked: true}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := f.do(t, tc.sni, tc.host, tc.cert, tc.h2, tc.hdr)
			if got.status != tc.want.status || got.location != tc.want.location || got.asked != tc.want.asked {
				t.Fatalf("status %d location %q asked %v, want %d %q %v", got.status, got.location, got.asked, tc.want.status, tc.want.location, tc.want.asked)
			}
			if got.backend == nil {
				return
			}
			if v := got.backend.Get(hdrSSLClientVerify); v != tc.want.verify {
				t.Errorf("ssl-client-verify = %q, want %q", v, tc.want.verify)
			}
			if v := got.backend.Get(hdrSSLClientSubjectDN); !strings.Contains(v, tc.want.subject) || (tc.want.subject == "") != (v == "") {
				t.Errorf("ssl-client-subject-dn = %q, want %q", v, tc.want.subject)
			}
			for k := range got.backend {
				if kl := strings.ToLower(k); strings.HasPrefix(kl, "ssl_client") || kl == "ssl-client-cert" && tc.host != "secure.test" {
					t.Errorf("forged header %s reached the upstream: %q", k, got.backend[k])
				}
			}
		})
	}

	t.Run("pass-certificate-to-upstream sends the escaped PEM and the issuer", func(t *testing.T) {
		got := f.do(t, "secure.test", "secure.test", good, false, nil)
		pemText, err := url.PathUnescape(got.backend.Get(hdrSSLClientCert))
		if err != nil || !strings.HasPrefix(pemText, "-----BEGIN CERTIFICATE-----\n") || strings.ContainsAny(got.backend.Get(hdrSSLClientCert), "\n +/=") {
			t.Errorf("ssl-client-cert = %q (%v)", got.backend.Get(hdrSSLClientCert), err)
		}
		if v := got.backend.Get(hdrSSLClientIssuerDN); !strings.Contains(v, "CN=client CA") {
			t.Errorf("ssl-client-issuer-dn = %q", v)
		}
	})

	t.Run("cleartext", func(t *testing.T) {
		for _, tc := range []struct {
			host, path string
			want       int
		}{
			{"secure.test", "/", 403},
			{"optional.test", "/", 403},
			{"noca.test", "/x", 403},
			{"off.test", "/", 200},
			{"public.test", "/", 200},
			{"secure.test", "/.well-known/acme-challenge/token", 200},
		} {
			resp, body := get(t, http.DefaultClient, f.plainURL+tc.path, map[string]string{"Host": tc.host, "Ssl-Client-Verify": "SUCCESS"})
			if resp.StatusCode != tc.want {
				t.Errorf("http://%s%s: %d, want %d", tc.host, tc.path, resp.StatusCode, tc.want)
				continue
			}
			if tc.want == 200 {
				if v := decodeEcho(t, body).Header.Get(hdrSSLClientVerify); v == "SUCCESS" {
					t.Errorf("http://%s%s: the forged ssl-client-verify reached the upstream", tc.host, tc.path)
				}
			}
		}
	})
}

// TestClientCAPinning: a CA bundle whose bytes do not match the pinned hash
// is not used; the previous one keeps verifying, and with none before the
// host's clients are refused (fail closed).
func TestClientCAPinning(t *testing.T) {
	ca1 := testcerts.New(t, nil, testcerts.Options{CommonName: "ca1", CA: true})
	ca2 := testcerts.New(t, nil, testcerts.Options{CommonName: "ca2", CA: true})
	c1 := testcerts.New(t, ca1, testcerts.Options{Client: true})
	store, err := NewCertStore(nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	verifies := func(c *testcerts.Cert) bool {
		return verifyClientChain(store.ClientCAPool("ns/ca"), []*x509.Certificate{c.Cert}, 1) == nil
	}
	key := snapshot.CADataKey("ns/ca")
	store.SetClientCAs(map[string]string{"ns/ca": snapshot.DataHash(ca1.CertPEM)})
	if store.ClientCAPool("ns/ca") != nil {
		t.Fatal("a pool before any data")
	}
	store.SetData(map[string][]byte{key: ca2.CertPEM}) // not the pinned bytes
	if store.ClientCAPool("ns/ca") != nil {
		t.Fatal("unpinned bytes were loaded")
	}
	store.SetData(map[string][]byte{key: ca1.CertPEM})
	if !verifies(c1) {
		t.Fatal("the pinned CA does not verify its client")
	}
	store.SetData(map[string][]byte{key: ca2.CertPEM}) // Secret ahead of the snapshot
	if !verifies(c1) {
		t.Error("the previous CA must keep verifying until the snapshot pins the new one")
	}
	store.SetClientCAs(map[string]string{"ns/ca": snapshot.DataHash(ca2.CertPEM)})
	if verifies(c1) {
		t.Error("the old CA still verifies after the new one is pinned")
	}
	store.SetClientCAs(map[string]string{})
	if store.ClientCAPool("ns/ca") != nil {
		t.Error("a CA no snapshot uses is still loaded")
	}
}

// BenchmarkVerifyClientChain is the per-request cost of verifying a client
// certificate (leaf signed by the CA, ECDSA P-256).
func BenchmarkVerifyClientChain(b *testing.B) {
	ca := testcerts.New(b, nil, testcerts.Options{CA: true})
	leaf := testcerts.New(b, ca, testcerts.Options{Client: true})
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	certs := []*x509.Certificate{leaf.Cert}
	for b.Loop() {
		if err := verifyClientChain(pool, certs, 1); err != nil {
			b.Fatal(err)
		}
	}
}
