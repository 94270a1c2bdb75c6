#!/usr/bin/env bash
# Benchmark: the store alone. A 1 GiB staged write + commit (256 KiB chunks,
# each a fresh buffer, as the CLI's reader makes them) into
#   - the filesystem store on $BENCH_DATA_ROOT (default /dev/shm),
#   - the same write path as it was before Staged::write took Bytes
#     (tokio::fs::File::write_all per chunk: one extra copy), as the baseline,
#   - the S3 store on a SeaweedFS on loopback (data also on $BENCH_DATA_ROOT),
#     with the default parts (8 MiB x 2) and a few other part settings,
#   - one plain `curl -T` PUT of 1 GiB to the same server: its ceiling,
# all in the same run, interleaved, best of $RUNS. Prints MB/s, peak RSS and
# CPU of each process, the store's own peak of buffered bytes, the S3
# server's CPU seconds per run (when this script started it), and ratios.
# Issue 7's goal for the end-to-end upload: S3 >= 0.8x the filesystem store,
# RSS < 64 MiB per node; this script reports what the store alone achieves.
#
# Self-contained and rerunnable: starts its own SeaweedFS (.ci/seaweedfs.sh)
# unless PORTCULLIS_TEST_S3_URL (and AWS_* credentials) name one, and stops
# it at the end. Needs: cargo, python3, curl, /usr/bin/time.
set -euo pipefail

cd "$(dirname "$0")/.."
BENCH_DATA_ROOT=${BENCH_DATA_ROOT:-/dev/shm}
SIZE_MIB=${SIZE_MIB:-1024}
RUNS=${RUNS:-3}

# shellcheck source=.ci/seaweedfs.sh
source .ci/seaweedfs.sh
fs_dir=$(mktemp -d "$BENCH_DATA_ROOT/portcullis-bench-store.XXXXXX")
baseline_dir=$(mktemp -d "$BENCH_DATA_ROOT/portcullis-bench-tokio.XXXXXX")
out=$(mktemp -d)
cleanup() {
    seaweedfs_stop
    rm -rf "$fs_dir" "$baseline_dir" "$out" "${curl_input:-}"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [[ -z ${PORTCULLIS_TEST_S3_URL:-} ]]; then
    seaweedfs_install >/dev/null
    TMPDIR=$BENCH_DATA_ROOT seaweedfs_start
fi
s3_url=$PORTCULLIS_TEST_S3_URL

cargo build --release --quiet --bench store_put
bin=$(cargo build --release --bench store_put --message-format=json 2>/dev/null |
    python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("target", {}).get("name") == "store_put" and m.get("executable"):
        print(m["executable"])')
[[ -x $bin ]] || { echo "store_put was not built" >&2; exit 1; }

with_query() { # URL KEY=VALUE...: the S3 url with more query parameters
    local url=$1
    shift
    for pair in "$@"; do url="$url&$pair"; done
    echo "$url"
}

# label|mode|target
contenders=(
    "generate chunks only (no store)|generate|-"
    "fs store, before (tokio::fs, one copy)|tokio-fs|$baseline_dir"
    "fs store, Bytes on the blocking pool|store|$fs_dir"
    "s3 store, 8 MiB x 2 parts (default)|store|$s3_url"
    "s3 store, 16 MiB x 2 parts|store|$(with_query "$s3_url" part_size=16MiB)"
    "s3 store, 8 MiB x 3 parts|store|$(with_query "$s3_url" parts_in_flight=3)"
    "curl PUT to the same server (its ceiling)|curl|$s3_url"
)

# One plain PUT of the same bytes with curl (its own SigV4): what the S3
# server takes from any client, so the store's figure can be read against it.
curl_input="$BENCH_DATA_ROOT/portcullis-bench-put.bin"
head -c $((SIZE_MIB << 20)) /dev/urandom > "$curl_input"
curl_put() { # S3_URL: prints the same line as store_put
    python3 - "$1" "$curl_input" "$SIZE_MIB" <<'PY'
import os, subprocess, sys, time, urllib.parse
url, path, size_mib = sys.argv[1], sys.argv[2], int(sys.argv[3])
parsed = urllib.parse.urlsplit(url)
query = dict(urllib.parse.parse_qsl(parsed.query))
bucket, prefix = parsed.netloc, parsed.path.strip("/")
key = f"{prefix}/curl-bench" if prefix else "curl-bench"
target = f"{query['endpoint']}/{bucket}/{key}"
region = query.get("region", "us-east-1")
auth = ["--aws-sigv4", f"aws:amz:{region}:s3", "-u",
        f"{os.environ['AWS_ACCESS_KEY_ID']}:{os.environ['AWS_SECRET_ACCESS_KEY']}"]
started = time.monotonic()
status = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", *auth, "-T", path, target],
                        capture_output=True, text=True).stdout
seconds = time.monotonic() - started
subprocess.run(["curl", "-s", "-o", "/dev/null", *auth, "-X", "DELETE", target])
assert status == "200", f"curl PUT answered {status}"
total = size_mib << 20
print(f"mode=curl bytes={total} seconds={seconds:.3f} mbps={total / seconds / 1e6:.0f}")
PY
}
weed_cpu() { # the S3 server's CPU seconds so far (when this script started it)
    if [[ -n ${SEAWEEDFS_PID:-} ]]; then
        awk '{printf "%.2f", ($14 + $15) / 100}' "/proc/$SEAWEEDFS_PID/stat"
    else
        echo 0
    fi
}

load_before=$(cut -d' ' -f1 /proc/loadavg)
for run in $(seq "$RUNS"); do
    for i in "${!contenders[@]}"; do
        IFS='|' read -r label mode target <<<"${contenders[$i]}"
        server_before=$(weed_cpu)
        if [[ $mode == curl ]]; then
            curl_put "$target" > "$out/run.$i.$run"
            echo "0 0 0" > "$out/time.$i.$run" # curl's own RSS and CPU are not the point
        else
            /usr/bin/time -f '%M %U %S' -o "$out/time.$i.$run" \
                "$bin" "$mode" "$target" "$SIZE_MIB" > "$out/run.$i.$run"
        fi
        server_after=$(weed_cpu)
        echo " server_cpu=$(python3 -c "print(f'{$server_after - $server_before:.2f}')")" >> "$out/run.$i.$run"
    done
done

python3 - "$out" "$RUNS" "$SIZE_MIB" "$load_before" "${contenders[@]}" <<'PY'
import sys, re
out, runs, size_mib, load = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
contenders = [c.split("|")[0] for c in sys.argv[5:]]
rows = []
for i, label in enumerate(contenders):
    best, rss, cpu, held, server = 0, 0, None, "", ""
    for run in range(1, runs + 1):
        line = open(f"{out}/run.{i}.{run}").read()
        mbps = float(re.search(r"mbps=(\d+)", line).group(1))
        m = re.search(r"peak_held_mib=([\d.]+)", line)
        server_cpu = float(re.search(r"server_cpu=([\d.]+)", line).group(1))
        kib, user, system = open(f"{out}/time.{i}.{run}").read().split()[-3:]
        if mbps > best:
            best, cpu = mbps, float(user) + float(system)
            held = m.group(1) if m else ""
            server = f"{server_cpu:.1f}" if server_cpu > 0 else ""
        rss = max(rss, int(kib) // 1024)
    rows.append((label, best, rss, cpu, held, server))
print(f"{size_mib} MiB staged write + commit, 256 KiB chunks, best of {runs}; load average before: {load}")
print(f"{'contender':<44} {'MB/s':>6} {'peak RSS':>9} {'CPU s':>6} {'held MiB':>9} {'server CPU s':>12}")
for label, mbps, rss, cpu, held, server in rows:
    print(f"{label:<44} {mbps:6.0f} {rss:6d} MiB {cpu:6.2f} {held:>9} {server:>12}")
by = {label: mbps for label, mbps, *_ in rows}
fs_before = by["fs store, before (tokio::fs, one copy)"]
fs_now = by["fs store, Bytes on the blocking pool"]
s3 = by["s3 store, 8 MiB x 2 parts (default)"]
s3_rss = next(rss for label, _, rss, *_ in rows if label == "s3 store, 8 MiB x 2 parts (default)")
print(f"{'ratio fs now / fs before (no-copy change)':<44} {fs_now / fs_before:6.2f}")
print(f"{'ratio s3 (default) / fs now (goal >= 0.8)':<44} {s3 / fs_now:6.2f}")
curl = by["curl PUT to the same server (its ceiling)"]
print(f"{'ratio s3 (default) / curl PUT, same server':<44} {s3 / curl:6.2f}")
print(f"{'s3 peak RSS < 64 MiB':<44} {'ok' if s3_rss < 64 else 'MISSED':>6}")
PY
