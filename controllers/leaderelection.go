package controllers

import "time"

// Leader election timings of the operator (cmd/main.go --leader-elect).
//
// client-go's defaults (lease 15 s, renew deadline 10 s) make a leader give
// up, and the process exit, after 10 s without the API server: an API server
// outage of 30 s would restart every operator replica. While the API server
// is down no other replica can take the lease either, so the leader keeps
// trying for DefaultRenewDeadline. DefaultLeaseDuration stays above it, so a
// standby never takes over while the old leader still believes it leads.
// The price: a crashed leader is replaced after up to DefaultLeaseDuration;
// a leader that stops cleanly releases the lease at once
// (LeaderElectionReleaseOnCancel).
const (
	DefaultLeaseDuration = 60 * time.Second
	DefaultRenewDeadline = 45 * time.Second
	DefaultRetryPeriod   = 5 * time.Second
)
