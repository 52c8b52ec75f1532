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

package proxy

import (
	"crypto/tls"
	"net"

	"github.com/portico-dev/portico/gatewaypod/healthcheck"
	"github.com/portico-dev/portico/gatewaypod/snapshot"
)

var _ healthcheck.TLSSource = (*upstreamConfig)(nil)

// ProbeTLS implements healthcheck.TLSSource: active checks of an HTTPS or
// GRPCS route's endpoints use the route's own TLS configuration (the
// current generation, so reloaded material counts), with host, the
// check's Host, sent as the server name unless proxy-ssl-name sets one.
// Verification is the route's: against proxy-ssl-name or the Service name.
func (c *upstreamConfig) ProbeTLS(host string) (*tls.Config, error) {
	g := c.gen.Load()
	if g.err != nil {
		return nil, g.err
	}
	cfg := g.tls.Clone()
	if host != "" && c.settings.ServerName == "" && net.ParseIP(host) == nil {
		cfg.ServerName = host
	}
	return cfg, nil
}

// checkFor is the active check of backend b reached through u: over TLS
// with the route's settings for HTTPS and GRPCS.
func (p *Proxy) checkFor(b *snapshot.Backend, u *snapshot.Upstream) healthcheck.Check {
	c := checkOf(b.HealthCheck)
	if uc := p.upstreams.config(u, b); uc != nil && uc.secure() {
		c.TLS = uc
	}
	return c
}
