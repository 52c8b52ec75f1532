/*
Copyright 2026 The Portico Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package hostile

import (
	"bytes"
	"crypto/tls"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/portico-dev/portico/gatewaypod/podflags"
	"github.com/portico-dev/portico/gatewaypod/snapshot"
)

// TestHTTP2RapidReset opens and immediately resets thousands of streams on
// one HTTP/2 connection (CVE-2023-44487). The process stays up, its
// goroutines stay bounded during the attack and come back down after it,
// and another client is served throughout.
func TestHTTP2RapidReset(t *testing.T) {
	const (
		streams = 5000
		budget  = 5 * time.Second
	)
	public := newBackend(t, "public")
	tlsDir := t.TempDir()
	cert := tlsFiles(t, tlsDir, "team/app-tls", appHost)
	cert.Default = true
	s := &snapshot.Snapshot{
		Hosts:        []snapshot.VirtualHost{{Host: appHost, Routes: []snapshot.Route{prefixRoute("/public", public)}}},
		Certificates: []snapshot.Certificate{cert},
	}
	gw := startGateway(t, "h2", s, podflags.Flags{HTTPSAddress: "on", TLSDir: tlsDir})
	if gw.https == "" {
		t.Fatal("no HTTPS listener in the start-up log")
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true, ServerName: appHost}, ForceAttemptHTTP2: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	getOK := func() (int, string) {
		req, err := http.NewRequest(http.MethodGet, "https://"+gw.https+"/public/ok", nil)
		if err != nil {
			return 0, err.Error()
		}
		req.Host = appHost
		resp, err := client.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, resp.Proto
	}
	// The certificate arrives from the directory shortly after start.
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, proto := getOK()
		if code == http.StatusOK && proto == "HTTP/2.0" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no HTTP/2 200 before the attack: %d %s", code, proto)
		}
		time.Sleep(100 * time.Millisecond)
	}
	base := gw.goroutines(t)

	// The attack, on its own connection.
	conn, err := tls.Dial("tcp", gw.https, &tls.Config{InsecureSkipVerify: true, ServerName: appHost, NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if p := conn.ConnectionState().NegotiatedProtocol; p != "h2" {
		t.Fatalf("negotiated %q, want h2", p)
	}
	_ = conn.SetDeadline(time.Now().Add(budget + 5*time.Second))
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", "https"}, {":authority", appHost}, {":path", "/public/reset"}} {
		_ = enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	fr := http2.NewFramer(conn, conn)
	if _, err := io.WriteString(conn, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	var goaway atomic.Value
	readerDone := make(chan struct{})
	go func() { // drain what the server sends; note a GOAWAY
		defer close(readerDone)
		for {
			f, err := fr.ReadFrame()
			if err != nil {
				return
			}
			if ga, ok := f.(*http2.GoAwayFrame); ok {
				goaway.Store(ga.ErrCode.String())
			}
		}
	}()
	var peak atomic.Int64
	stopSampling := make(chan struct{})
	var sampler, others sync.WaitGroup
	sampler.Add(1)
	go func() { // sample the gateway's goroutines and serve another client meanwhile
		defer sampler.Done()
		for {
			select {
			case <-stopSampling:
				return
			case <-time.After(100 * time.Millisecond):
			}
			if n := int64(gw.goroutines(t)); n > peak.Load() {
				peak.Store(n)
			}
		}
	}()
	var otherOK, otherFail atomic.Int32
	others.Add(1)
	go func() {
		defer others.Done()
		for {
			select {
			case <-stopSampling:
				return
			case <-time.After(50 * time.Millisecond):
			}
			if code, _ := getOK(); code == http.StatusOK {
				otherOK.Add(1)
			} else {
				otherFail.Add(1)
			}
		}
	}()
	start := time.Now()
	sent := 0
	for i := range streams {
		if time.Since(start) > budget {
			break
		}
		id := uint32(2*i + 1)
		if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: hb.Bytes(), EndStream: true, EndHeaders: true}); err != nil {
			break // the server closed the connection
		}
		if err := fr.WriteRSTStream(id, http2.ErrCodeCancel); err != nil {
			break
		}
		sent++
	}
	took := time.Since(start)
	conn.Close()
	<-readerDone
	// Let the other client run a little past the attack too.
	time.Sleep(300 * time.Millisecond)
	close(stopSampling)
	sampler.Wait()
	others.Wait()

	if otherFail.Load() > 0 || otherOK.Load() == 0 {
		t.Fatalf("another client during the attack: %d ok, %d failed", otherOK.Load(), otherFail.Load())
	}
	// net/http runs at most MaxConcurrentStreams (250) handlers per
	// connection; with the proxy's own goroutines that stays well under 1000.
	if p := peak.Load(); p > int64(base)+1000 {
		t.Fatalf("goroutines peaked at %d (from %d) during the attack", p, base)
	}
	var after int
	for end := time.Now().Add(10 * time.Second); ; {
		if after = gw.goroutines(t); after <= base+20 || time.Now().After(end) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if after > base+20 {
		t.Fatalf("goroutines %d after the attack, %d before", after, base)
	}
	gw.healthy(t)
	t.Logf("rapid reset: %d streams opened and reset in %s (GOAWAY %v); goroutines %d before, peak %d, %d after; backend saw %d requests; other client %d ok",
		sent, took.Round(time.Millisecond), goaway.Load(), base, peak.Load(), after, len(public.requests()), otherOK.Load())
}
