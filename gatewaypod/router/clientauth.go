package router

import "github.com/portico-dev/portico/gatewaypod/snapshot"

// ClientAuth returns the client-certificate verification of the virtual
// host a TLS server name (SNI) selects, the way a Host header would select
// it; nil when that host has none. The result belongs to the Router.
func (rt *Router) ClientAuth(serverName string) *snapshot.ClientAuth {
	if vh := rt.host(normalizeHost(serverName)); vh != nil {
		return vh.clientAuth
	}
	return nil
}

// ClientCAs returns the CA Secrets (namespace/name) the virtual hosts
// verify client certificates with, each once, with the pinned hash.
func (rt *Router) ClientCAs() map[string]string {
	out := map[string]string{}
	add := func(vh *vhost) {
		if vh != nil && vh.clientAuth != nil {
			out[vh.clientAuth.CASecret] = vh.clientAuth.CAHash
		}
	}
	rt.eachHost(add)
	return out
}

// DefaultBackend returns the snapshot's default backend, nil when none.
// The result belongs to the Router.
func (rt *Router) DefaultBackend() *snapshot.Backend { return rt.defaultBackend }
