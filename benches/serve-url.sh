# Sourced by the benchmarks that start `portcullis serve --bind 127.0.0.1:0`
# (serve.sh, api-load.sh, glance-audit.sh, scale.sh).
#
# serve_url STDOUT LOG PID: waits up to 10 s for the server's one stdout line
# `listening on <url>` and prints the URL; fails, printing the server's log,
# when the process exits first or the line never comes.
serve_url() {
    local out=$1 log=$2 pid=$3 url=
    for _ in $(seq 100); do
        url=$(sed -n 's/^listening on //p' "$out" 2>/dev/null)
        [[ -n $url ]] && { echo "$url"; return 0; }
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    echo "portcullis serve did not start:" >&2
    cat "$log" >&2
    return 1
}
