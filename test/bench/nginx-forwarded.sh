#!/usr/bin/env bash
# test/bench/nginx-forwarded.sh - nginx for peers.sh (NGINX_BIN), configured to send
# the backend the same request headers gatewaypod sends (and ingress-nginx sends):
# X-Forwarded-For, X-Real-IP, X-Forwarded-Host, X-Forwarded-Proto,
# X-Forwarded-Port and a generated X-Request-ID. peers.sh's own nginx config sets
# none, so the backend parses six headers fewer per request behind it than behind
# us; with this wrapper both proxies ask the backend for the same work.
#
# It rewrites the config given with -c next to it (<conf>.forwarded.conf) and execs
# nginx with every other argument unchanged, so the PID and signals stay nginx's.
set -eu
NGINX=${REAL_NGINX_BIN:-/usr/sbin/nginx}
args=()
while [ $# -gt 0 ]; do
	if [ "$1" = -c ] && [ $# -gt 1 ]; then
		out="$2.forwarded.conf"
		sed 's|proxy_set_header Connection "";|proxy_set_header Connection "";\
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\
            proxy_set_header X-Real-IP $remote_addr;\
            proxy_set_header X-Forwarded-Host $http_host;\
            proxy_set_header X-Forwarded-Proto $scheme;\
            proxy_set_header X-Forwarded-Port $server_port;\
            proxy_set_header X-Request-ID $request_id;|' "$2" > "$out"
		grep -q 'X-Request-ID' "$out" || { echo "nginx-forwarded.sh: no proxy_set_header Connection line in $2" >&2; exit 2; }
		args+=(-c "$out"); shift 2
	else
		args+=("$1"); shift
	fi
done
exec "$NGINX" "${args[@]}"
