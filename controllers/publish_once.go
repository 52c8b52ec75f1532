package controllers

// newPublish reports whether version differs from the last snapshot this
// process published for the instance name, and records it. The status in
// the cache alone is not enough: it can lag behind the operator's own status
// writes (after an API server outage the informers resume one by one, up to
// client-go's 30 s backoff apart), and every reconcile meanwhile would count
// and announce the same snapshot again.
func (r *GatewayConfigReconciler) newPublish(name, version string) bool {
	prev, loaded := r.published.Swap(name, version)
	return !loaded || prev.(string) != version
}
