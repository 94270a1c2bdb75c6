#!/usr/bin/env bash
# Benchmark: `portcullis glance audit` of 8 images of 128 MiB on a local
# `portcullis serve`, at concurrency 1 and 4, beside the download alone:
# the real glanceclient's `glance image-download` of the same images piped
# to `md5sum`, one image after the other, in the same run.
#
# Prints, per round (RUNS, default 3, interleaved so all contenders see the
# same machine noise): MB/s of the download baseline, of audit -c 1 and of
# audit -c 4; then best and median of each and the ratios to the baseline.
# Goal: audit at concurrency 1 >= 0.9x the download alone.
#
# Both contenders read the same bytes from the same server (which verifies
# md5 and the sha512 os_hash of every download it serves); glanceclient
# verifies the os_hash (sha512) of what it writes, md5sum hashes it once
# more; the audit hashes md5 and sha512 once each (in parallel, on the hash
# pool) and runs the format inspector. With SIGNED=1 the images are also
# signed (RSA-2048, SHA-256), so the audit verifies a signature too (one
# more hash, SHA-256, in the SHA lane).
#
# Self-contained and rerunnable: the server's data directory is on
# $BENCH_DATA_ROOT (default /dev/shm, so the figures are the pipelines',
# not the disk's) and removed at the end, as is the input file; the server
# listens on 127.0.0.1 (a free port) and is stopped by pid whatever happens.
# Also prints the audit's peak RSS (bounded whatever the image size).
# Needs: cargo, python3, md5sum, /usr/bin/time, the real glanceclient
# ($PORTCULLIS_CLIENTS_VENV, default /work/cache/venv-clients; see .ci/compat.sh).
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
BENCH_DATA_ROOT=${BENCH_DATA_ROOT:-/dev/shm}
IMAGES=${IMAGES:-8}
SIZE_MIB=${SIZE_MIB:-128}
RUNS=${RUNS:-3}
SIGNED=${SIGNED:-0}
PORTCULLIS_CLIENTS_VENV=${PORTCULLIS_CLIENTS_VENV:-$([ -d /work/cache ] && echo /work/cache/venv-clients || echo "$HOME/.cache/portcullis/venv-clients")}
GLANCE="$PORTCULLIS_CLIENTS_VENV/bin/glance"
if [[ ! -x $GLANCE ]]; then
    # shellcheck source=../.ci/compat.sh
    source .ci/compat.sh
    compat_install
fi

cargo build --release --quiet
bin=$ROOT/target/release/portcullis

work=$(mktemp -d "$BENCH_DATA_ROOT/portcullis-glance-bench.XXXXXX")
server_pid=
cleanup() {
    if [[ -n $server_pid ]] && kill -0 "$server_pid" 2>/dev/null; then
        kill -TERM "$server_pid"
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/data"
printf 'cert_dir = "%s/testdata/certs"\n' "$ROOT" > "$work/data/portcullis.toml"
NO_COLOR=1 "$bin" serve --bind 127.0.0.1:0 --data-dir "$work/data" > "$work/stdout" 2> "$work/server.log" &
server_pid=$!
# shellcheck source=benches/serve-url.sh
. "$ROOT/benches/serve-url.sh"
url=$(serve_url "$work/stdout" "$work/server.log" "$server_pid")

input="$work/input.raw"
head -c $((SIZE_MIB * 1024 * 1024)) /dev/urandom > "$input"
sign=()
if [[ $SIGNED == 1 ]]; then
    sign=(--sign-key testdata/keys/rsa2048.pem --cert-uuid "$(awk '$1 == "cert-rsa2048" { print $2 }' testdata/certs/INDEX)")
fi
ids=()
for i in $(seq 1 "$IMAGES"); do
    ids+=("$("$bin" glance upload "$input" --name "bench-$i" --disk-format raw --container-format bare \
        "${sign[@]}" --os-image-url "$url" --format json | python3 -c 'import json, sys; print(json.load(sys.stdin)["image"]["id"])')")
done
rm -f "$input"
bytes=$((IMAGES * SIZE_MIB * 1024 * 1024))

now() { date +%s.%N; }
mbps() { python3 -c "print(f'{$bytes / ($2 - $1) / 1e6:.0f}')"; }

download_all() {
    local t0 t1 id
    t0=$(now)
    for id in "${ids[@]}"; do
        "$GLANCE" --os-image-url "$url" --os-auth-token bench image-download "$id" | md5sum > /dev/null
    done
    t1=$(now)
    mbps "$t0" "$t1"
}

audit() { # concurrency → MB/s
    local t0 t1
    t0=$(now)
    /usr/bin/time -a -f '%M' -o "$work/rss-$1.txt" "$bin" glance audit --os-image-url "$url" --cert-dir testdata/certs \
        --concurrency "$1" --format json > "$work/audit.json"
    t1=$(now)
    python3 - "$work/audit.json" "$IMAGES" "$bytes" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
summary = report["summary"]
assert report["passed"] and summary["images"] == int(sys.argv[2]) and summary["bytes"] == int(sys.argv[3]), summary
PY
    mbps "$t0" "$t1"
}

load_before=$(cut -d' ' -f1 /proc/loadavg)
download=() c1=() c4=()
printf '%-6s %14s %12s %12s\n' round 'download MB/s' 'audit -c 1' 'audit -c 4'
for round in $(seq 1 "$RUNS"); do
    d=$(download_all)
    a1=$(audit 1)
    a4=$(audit 4)
    download+=("$d") c1+=("$a1") c4+=("$a4")
    printf '%-6s %14s %12s %12s\n' "$round" "$d" "$a1" "$a4"
done
load_after=$(cut -d' ' -f1 /proc/loadavg)
peak1=$(sort -n "$work/rss-1.txt" | tail -1) peak4=$(sort -n "$work/rss-4.txt" | tail -1)

python3 - "${download[*]}" "${c1[*]}" "${c4[*]}" <<PY
import statistics, sys
download, c1, c4 = ([float(x) for x in arg.split()] for arg in sys.argv[1:4])
def line(name, values):
    print(f"{name:28} best {max(values):5.0f} MB/s   median {statistics.median(values):5.0f} MB/s")
print()
print(f"$IMAGES images of $SIZE_MIB MiB (signed: $SIGNED), data on $BENCH_DATA_ROOT, load average $load_before -> $load_after")
line("glance image-download|md5sum", download)
line("glance audit -c 1", c1)
line("glance audit -c 4", c4)
print(f"audit -c 1 / download: best {max(c1) / max(download):.2f}, median {statistics.median(c1) / statistics.median(download):.2f} (goal >= 0.90)")
print(f"audit -c 4 / download: best {max(c4) / max(download):.2f}, median {statistics.median(c4) / statistics.median(download):.2f}")
print(f"audit peak RSS: -c 1 {$peak1 / 1024:.0f} MiB, -c 4 {$peak4 / 1024:.0f} MiB (images of $SIZE_MIB MiB)")
PY
