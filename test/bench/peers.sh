#!/usr/bin/env bash
# test/bench/peers.sh - run the shared peer comparison (../shared/bench/peers.sh)
# with Portico's gatewaypod added as proxy "ours".
#
#   test/bench/peers.sh [bench|reload|all]     (default bench)
#
# Builds gatewaypod and mksnapshot into $BENCH_BIN (default /tmp/portico-bench),
# writes a file-only snapshot routing every host and path to the peers' backend,
# and runs gatewaypod with GOMAXPROCS = the mode's worker count. Reload swaps the
# snapshot by rewriting the file atomically (picked up within the 2 s poll).
# Every knob of peers.sh (DUR REPS CONNS MODES PROXIES OUTDIR ...) passes through.
# NGINX_FORWARDED=1 (default) runs nginx through nginx-forwarded.sh, so it sends the
# backend the same forwarding headers we do (equal work for the backend, which
# shares a core with wrk in pinned mode); NGINX_FORWARDED=0 runs peers.sh's bare
# nginx config, whose upstream requests carry only Host.
# Bounded: peers.sh bounds every load run; this script adds a global timeout.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
PEERS=${PEERS:-$ROOT/../shared/bench/peers.sh}
BENCH_BIN=${BENCH_BIN:-/tmp/portico-bench}
TIMEOUT=${TIMEOUT:-3600}
export GOTOOLCHAIN=local PATH=$PATH:/usr/local/go/bin
mkdir -p "$BENCH_BIN"
(cd "$ROOT" && go build -o "$BENCH_BIN/gatewaypod" ./cmd/gatewaypod && go build -o "$BENCH_BIN/mksnapshot" ./test/bench/mksnapshot)

if [ "${NGINX_FORWARDED:-1}" = 1 ] && [ -z "${NGINX_BIN:-}" ]; then
	export NGINX_BIN="$HERE/nginx-forwarded.sh"
fi
export OURS="$BENCH_BIN/gatewaypod --http-address={LISTEN} --health-address=127.0.0.1:18180 --snapshot-file={RUNDIR}/snapshot.json ${OURS_EXTRA_ARGS:-}"
export OURS_SETUP="$BENCH_BIN/mksnapshot -out \$RUNDIR/snapshot.json -endpoints \$BACKEND"
# Each reload writes a new generation (a real new version, so a real swap).
export OURS_RELOAD="g=\$(( \$(cat \$RUNDIR/gen 2>/dev/null || echo 0) + 1 )); echo \$g > \$RUNDIR/gen; $BENCH_BIN/mksnapshot -out \$RUNDIR/snapshot.json -endpoints \$BACKEND -gen \$g"
exec timeout "$TIMEOUT" "$PEERS" "${1:-bench}"
