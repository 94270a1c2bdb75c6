#!/usr/bin/env bash
# Benchmark: 1 GiB signed uploads through `portcullis serve` (issue 11),
# against `portcullis ingest` of the same file and `openssl dgst -md5`, all
# in one run so every figure sees the same machine noise.
#
# Prints (best of $RUNS, default 3, interleaved):
#   - HTTP upload with `curl -T` (Content-Length) and with the real
#     glanceclient (`glance image-create --file`: chunked), in MB/s;
#   - `portcullis ingest` of the same file, and `openssl dgst -md5` of it;
#   - 4 parallel curl uploads: aggregate MB/s;
#   - the server's peak RSS (VmHWM: the whole run, 4 uploads in flight included);
#   - ratios and the targets: HTTP >= 0.9x ingest, ingest >= 0.75x
#     openssl dgst -md5, server RSS < 64 MiB.
# With REAL_GLANCE=1 it then runs the real Glance 33's bench
# (../shared/tools/real-glance/bench.sh 1, started and stopped here) and
# prints its table beside ours.
#
# Input, key, certificate and signature come from benches/signed-input.sh
# (RSA-PSS SHA-512). The server's data directory is on $BENCH_DATA_ROOT
# (default /dev/shm). Needs: cargo, curl, jq, openssl, /usr/bin/time; for
# glanceclient, $CLIENTS_VENV (default /work/cache/venv-clients, made by
# .ci/compat.sh's compat_install) or `glance` on PATH.
set -euo pipefail

cd "$(dirname "$0")/.."
BENCH_DATA_ROOT=${BENCH_DATA_ROOT:-/dev/shm}
RUNS=${RUNS:-3}
# shellcheck source=benches/signed-input.sh
. benches/signed-input.sh
# shellcheck source=benches/serve-url.sh
. benches/serve-url.sh

cargo build --release --quiet
bin=$PWD/target/release/portcullis
glance=${CLIENTS_VENV:-/work/cache/venv-clients}/bin/glance
[[ -x $glance ]] || glance=$(command -v glance || true)

work=$(mktemp -d "$BENCH_DATA_ROOT/portcullis-bench-serve.XXXXXX")
server_pid=
cleanup() {
    [[ -n $server_pid ]] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

now() { date +%s.%N; }
mbps() { python3 -c "print(f'{$3 * $bytes / ($2 - $1) / 1e6:.0f}')"; }
load_before=$(cut -d' ' -f1 /proc/loadavg)
cat "$input" > /dev/null

# The server: port 0 picks a free port; it prints `listening on <url>`.
mkdir -p "$work/serve"
"$bin" serve --bind 127.0.0.1:0 --data-dir "$work/serve" --cert-dir "$BENCH_DIR/certs" \
    > "$work/serve.out" 2> "$work/serve.log" &
server_pid=$!
url=$(serve_url "$work/serve.out" "$work/serve.log" "$server_pid")

create_body() { # name → the create request with the four signature properties
    jq -c --arg name "$1" '. + {name: $name, disk_format: "raw", container_format: "bare"}' \
        "$BENCH_DIR/properties.json"
}
create() { # name → image id
    curl -sf -X POST -H 'Content-Type: application/json' -d "$(create_body "$1")" "$url/v2/images" | jq -r .id
}
expect_active() { # id
    local status
    status=$(curl -sf "$url/v2/images/$1" | jq -r .status)
    [[ $status == active ]] || { echo "image $1 is $status after its upload" >&2; tail -5 "$work/serve.log" >&2; exit 1; }
}
delete() { curl -sf -X DELETE "$url/v2/images/$1" > /dev/null; }

curl_upload() { # id → uploads the input with Content-Length
    curl -sf -X PUT -H 'Content-Type: application/octet-stream' -T "$input" "$url/v2/images/$1/file"
}
curl_once() {
    local id t0 t1
    id=$(create bench-curl)
    t0=$(now); curl_upload "$id"; t1=$(now)
    expect_active "$id"; delete "$id"
    mbps "$t0" "$t1" 1
}
glance_once() {
    local t0 t1 id
    local props=()
    while IFS=$'\t' read -r key value; do props+=(--property "$key=$value"); done \
        < <(jq -r 'to_entries[] | "\(.key)\t\(.value)"' "$BENCH_DIR/properties.json")
    t0=$(now)
    "$glance" --os-image-url "$url" --os-auth-token any image-create --name bench-glance \
        --disk-format raw --container-format bare "${props[@]}" --file "$input" > "$work/glance.out" 2>&1 < /dev/null
    t1=$(now)
    id=$(curl -sf "$url/v2/images?name=bench-glance" | jq -r '.images[0].id')
    expect_active "$id"; delete "$id"
    mbps "$t0" "$t1" 1
}
ingest_once() {
    rm -rf "$work/ingest"
    local t0 t1
    t0=$(now)
    "$bin" ingest "$input" --data-dir "$work/ingest" --name bench --disk-format raw \
        --container-format bare --properties "$BENCH_DIR/properties.json" \
        --cert-dir "$BENCH_DIR/certs" --format json > "$work/ingest.json"
    t1=$(now)
    grep -q '"status": *"active"' "$work/ingest.json" || { echo "ingest did not end active" >&2; exit 1; }
    mbps "$t0" "$t1" 1
}
dgst_once() {
    local t0 t1
    t0=$(now); openssl dgst -md5 "$input" > /dev/null; t1=$(now)
    mbps "$t0" "$t1" 1
}
parallel_once() { # 4 uploads at once → aggregate MB/s
    local ids=() pids=() t0 t1 id
    for n in 1 2 3 4; do ids+=("$(create "bench-parallel-$n")"); done
    t0=$(now)
    for id in "${ids[@]}"; do curl_upload "$id" & pids+=($!); done
    for pid in "${pids[@]}"; do wait "$pid"; done
    t1=$(now)
    for id in "${ids[@]}"; do expect_active "$id"; delete "$id"; done
    mbps "$t0" "$t1" 4
}
best() { python3 -c "import sys; print(max(int(x) for x in sys.argv[1:]))" "$@"; }

curl_runs=() glance_runs=() ingest_runs=() dgst_runs=() parallel_runs=()
for run in $(seq "$RUNS"); do
    curl_runs+=("$(curl_once)")
    [[ -n $glance ]] && glance_runs+=("$(glance_once)")
    ingest_runs+=("$(ingest_once)")
    dgst_runs+=("$(dgst_once)")
    parallel_runs+=("$(parallel_once)")
    echo "run $run: curl ${curl_runs[-1]}, glanceclient ${glance_runs[-1]:-n/a}, ingest ${ingest_runs[-1]}, openssl dgst -md5 ${dgst_runs[-1]}, 4 parallel ${parallel_runs[-1]} MB/s" >&2
done
rss_kib=$(awk '/^VmHWM/ {print $2}' "/proc/$server_pid/status")

curl_best=$(best "${curl_runs[@]}")
glance_best=$([[ ${#glance_runs[@]} -gt 0 ]] && best "${glance_runs[@]}" || echo 0)
ingest_best=$(best "${ingest_runs[@]}")
dgst_best=$(best "${dgst_runs[@]}")
parallel_best=$(best "${parallel_runs[@]}")
printf '%-52s %8s\n' "input" "$SIZE_MIB MiB, RSA-PSS SHA-512, os_hash sha512"
printf '%-52s %8s\n' "load average before the run" "$load_before"
printf '%-52s %8s MB/s\n' "HTTP upload, curl -T (best of $RUNS)" "$curl_best"
printf '%-52s %8s MB/s\n' "HTTP upload, glanceclient image-create (best of $RUNS)" "$glance_best"
printf '%-52s %8s MB/s\n' "4 parallel HTTP uploads, aggregate (best of $RUNS)" "$parallel_best"
printf '%-52s %8s MB/s\n' "portcullis ingest, same file (best of $RUNS)" "$ingest_best"
printf '%-52s %8s MB/s\n' "openssl dgst -md5, same file (best of $RUNS)" "$dgst_best"
printf '%-52s %8s MiB\n' "server peak RSS (VmHWM, whole run)" "$((rss_kib / 1024))"
python3 - <<PY
curl, glance, ingest, dgst, rss = $curl_best, $glance_best, $ingest_best, $dgst_best, $rss_kib / 1024
def line(label, value): print(f"{label:<52} {value:>8}")
line("ratio curl upload / ingest (>= 0.9)", f"{curl / ingest:.2f}")
if glance:
    line("ratio glanceclient upload / ingest (>= 0.9)", f"{glance / ingest:.2f}")
line("ratio ingest / openssl dgst -md5 (>= 0.75)", f"{ingest / dgst:.2f}")
line("HTTP upload target (curl >= 0.9x ingest)", "ok" if curl >= 0.9 * ingest else "MISSED")
line("ingest target (>= 0.75x openssl dgst -md5)", "ok" if ingest >= 0.75 * dgst else "MISSED")
line("server RSS target (< 64 MiB)", "ok" if rss < 64 else "MISSED")
PY

if [[ ${REAL_GLANCE:-0} == 1 ]]; then
    real=${REAL_GLANCE_TOOLS:-../shared/tools/real-glance}
    [[ -d $real ]] || real=/work/shared/tools/real-glance
    echo >&2; echo "real Glance 33 (same machine, same run):" >&2
    "$real/setup.sh" > "$work/glance-setup.log" 2>&1 || { echo "real Glance setup failed: $work/glance-setup.log" >&2; exit 1; }
    "$real/start.sh" > /dev/null
    "$real/bench.sh" 1 > "$work/glance-bench.log" 2>&1 || true
    "$real/stop.sh" > /dev/null
    cat "${GLANCE_ANCHOR_ROOT:-/tmp/glance-anchor}/bench/results.md"
fi
