#!/usr/bin/env bash
# Load benchmark of the metadata API (issue 11): $IMAGES images (default
# 1000) with a few properties, then `ab -n $REQUESTS -c 16` (default 2000)
# on `GET /v2/images?limit=25`, `GET /v2/images/{id}` and
# `GET /v2/images?name=…`.
#
# Prints requests/s, p50/p99 latency and failed requests for each, against
# portcullis serve (release build, data directory on $BENCH_DATA_ROOT,
# default /dev/shm). With REAL_GLANCE=1 the real Glance 33
# (../shared/tools/real-glance: 2 uWSGI workers, no Keystone) gets the same
# images and the same three runs in the same script, and the ratios are
# printed; without it, the figures recorded in issue 11 (95, 230 and 106
# requests/s) are printed as the reference. Goal: >= 10x Glance on each,
# p99 < 50 ms, no failed request.
# Needs: cargo, curl, jq, ab (apache2-utils).
set -euo pipefail

cd "$(dirname "$0")/.."
BENCH_DATA_ROOT=${BENCH_DATA_ROOT:-/dev/shm}
IMAGES=${IMAGES:-1000}
REQUESTS=${REQUESTS:-2000}
# shellcheck source=benches/serve-url.sh
. benches/serve-url.sh
command -v ab > /dev/null || { echo "ab not found: apt-get install apache2-utils" >&2; exit 1; }

cargo build --release --quiet
bin=$PWD/target/release/portcullis
work=$(mktemp -d "$BENCH_DATA_ROOT/portcullis-bench-api.XXXXXX")
server_pid=
real=
cleanup() {
    [[ -n $server_pid ]] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
    [[ -n $real ]] && "$real/stop.sh" > /dev/null 2>&1
    rm -rf "$work"
}
trap cleanup EXIT

fill() { # url → creates $IMAGES images; prints one id
    local url=$1
    python3 - "$url" "$IMAGES" <<'PY'
import json, sys, urllib.request
from concurrent.futures import ThreadPoolExecutor
url, count = sys.argv[1], int(sys.argv[2])
def create(n):
    body = {"name": f"load-{n:04d}", "disk_format": "qcow2", "container_format": "bare",
            "os_distro": "debian", "build": str(n), "tier": ["gold", "silver"][n % 2]}
    request = urllib.request.Request(f"{url}/v2/images", json.dumps(body).encode(),
                                     {"Content-Type": "application/json", "X-Auth-Token": "any"})
    with urllib.request.urlopen(request) as answer:
        return json.load(answer)["id"]
with ThreadPoolExecutor(4) as pool:
    ids = list(pool.map(create, range(count)))
print(ids[count // 2])
PY
}
load() { # label url → "rps p50 p99 failed"
    ab -q -n "$REQUESTS" -c 16 -H 'X-Auth-Token: any' "$2" > "$work/ab.out" 2>&1 || { cat "$work/ab.out" >&2; exit 1; }
    local rps p50 p99 failed non2xx
    rps=$(awk '/^Requests per second/ {print $4}' "$work/ab.out")
    p50=$(awk '$1 == "50%" {print $2}' "$work/ab.out")
    p99=$(awk '$1 == "99%" {print $2}' "$work/ab.out")
    failed=$(awk '/^Failed requests/ {print $3}' "$work/ab.out")
    non2xx=$(awk '/^Non-2xx responses/ {print $3}' "$work/ab.out")
    echo "$rps ${p50:-?} ${p99:-?} $((failed + ${non2xx:-0}))"
}
run_all() { # url id → three lines "label rps p50 p99 failed"
    echo "list $(load list "$1/v2/images?limit=25")"
    echo "show $(load show "$1/v2/images/$2")"
    echo "name $(load name "$1/v2/images?name=load-0500")"
}

load_before=$(cut -d' ' -f1 /proc/loadavg)
mkdir -p "$work/serve"
"$bin" serve --bind 127.0.0.1:0 --data-dir "$work/serve" > "$work/serve.out" 2> "$work/serve.log" &
server_pid=$!
url=$(serve_url "$work/serve.out" "$work/serve.log" "$server_pid")
id=$(fill "$url")
ours=$(run_all "$url" "$id")
rss_kib=$(awk '/^VmHWM/ {print $2}' "/proc/$server_pid/status")

if [[ ${REAL_GLANCE:-0} == 1 ]]; then
    real=${REAL_GLANCE_TOOLS:-../shared/tools/real-glance}
    [[ -d $real ]] || real=/work/shared/tools/real-glance
    "$real/setup.sh" > "$work/glance-setup.log" 2>&1 || { echo "real Glance setup failed" >&2; cat "$work/glance-setup.log" >&2; exit 1; }
    "$real/reset.sh" > /dev/null 2>&1
    "$real/start.sh" > /dev/null
    glance_url=http://127.0.0.1:${GLANCE_ANCHOR_PORT:-9292}
    glance_id=$(fill "$glance_url")
    theirs=$(run_all "$glance_url" "$glance_id")
    "$real/stop.sh" > /dev/null; "$real/reset.sh" > /dev/null 2>&1
    real=
else
    theirs=$'list 95 - - -\nshow 230 - - -\nname 106 - - -'
fi

echo "$IMAGES images, ab -n $REQUESTS -c 16, load average before: $load_before; server peak RSS $((rss_kib / 1024)) MiB"
python3 - "$ours" "$theirs" "${REAL_GLANCE:-0}" <<'PY'
import sys
ours = {line.split()[0]: line.split()[1:] for line in sys.argv[1].splitlines()}
theirs = {line.split()[0]: line.split()[1:] for line in sys.argv[2].splitlines()}
source = "measured now" if sys.argv[3] == "1" else "recorded in issue 11"
urls = {"list": "GET /v2/images?limit=25", "show": "GET /v2/images/{id}", "name": "GET /v2/images?name=..."}
print(f"{'request':<26} {'portcullis req/s':>16} {'p50 ms':>7} {'p99 ms':>7} {'failed':>6}   {'Glance 33 req/s':>15} ({source}) {'ratio':>6}  goal")
for key, label in urls.items():
    rps, p50, p99, failed = ours[key]
    glance = float(theirs[key][0])
    ratio = float(rps) / glance
    ok = ratio >= 10 and p99 != "?" and float(p99) < 50 and int(failed) == 0
    print(f"{label:<26} {float(rps):>16.0f} {p50:>7} {p99:>7} {failed:>6}   {glance:>15.0f} {'':>{len(source) + 2}} {ratio:>6.1f}  {'ok' if ok else 'MISSED'}")
PY
