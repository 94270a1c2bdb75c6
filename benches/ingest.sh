#!/usr/bin/env bash
# Benchmark: ingest a 1 GiB signed image (RSA-PSS SHA-512, os_hash sha512)
# with the release binary and compare with the hashes it has to compute.
#
# Prints: portcullis MB/s (best of $RUNS, default 5) and peak RSS; single-core
# `openssl dgst -md5` on the same file (best of $RUNS, interleaved with the
# ingests so both see the same machine noise); md5sum + sha512sum run one
# after the other; single-core `openssl speed -evp md5` and `-evp sha512`
# (64 KiB blocks); ratios.
# Targets: portcullis >= 0.75x `openssl dgst -md5` of the same file (issue 11),
# peak RSS < 64 MiB. With BASELINE_BIN=<another portcullis binary> (say, one
# built from main), that binary is run in the same loop, interleaved, and
# the ratio of the two is printed too.
#
# Self-contained and rerunnable: makes its key, certificate, signature and
# input under $BENCH_DIR (default /tmp/portcullis-bench; the 1 GiB input is
# reused when present). The data directory is on $BENCH_DATA_ROOT (default
# /dev/shm, so the figure is the pipeline's, not the disk's; set it to a disk
# path to include the disk). Needs: cargo, openssl, md5sum, sha512sum, /usr/bin/time.
set -euo pipefail

cd "$(dirname "$0")/.."
BENCH_DATA_ROOT=${BENCH_DATA_ROOT:-/dev/shm}
# shellcheck source=benches/signed-input.sh
. benches/signed-input.sh

cargo build --release --quiet
bin=target/release/portcullis

now() { date +%s.%N; }
mbps() { python3 -c "print(f'{$bytes / ($2 - $1) / 1e6:.0f}')"; }
speed() { # single-core openssl speed in MB/s for 64 KiB blocks, wall clock
    # (-elapsed: by default openssl divides by its CPU time, which would
    # flatter it against the wall-clock figures above on a busy machine)
    openssl speed -elapsed -seconds 3 -bytes 65536 -evp "$1" 2>/dev/null | awk -v a="$1" '$1 == a { sub(/k$/, "", $2); printf "%.0f", $2 * 1000 / 1e6 }'
}

data_dir=$(mktemp -d "$BENCH_DATA_ROOT/portcullis-bench-data.XXXXXX")
trap 'rm -rf "$data_dir"' EXIT

load_before=$(cut -d' ' -f1 /proc/loadavg)
# Warm the page cache so every contender reads from memory.
cat "$input" > /dev/null

RUNS=${RUNS:-5}
BASELINE_BIN=${BASELINE_BIN:-}
ingest_once() { # binary → MB/s; leaves rss.txt
    rm -rf "${data_dir:?}"/*
    local t0 t1
    t0=$(now)
    /usr/bin/time -f '%M %U %S' -o "$BENCH_DIR/rss.txt" "$1" ingest "$input" --data-dir "$data_dir" \
        --name bench --disk-format raw --container-format bare \
        --properties "$BENCH_DIR/properties.json" --cert-dir "$BENCH_DIR/certs" --format json > "$BENCH_DIR/ingest.json"
    t1=$(now)
    grep -q '"status": *"active"' "$BENCH_DIR/ingest.json" || { echo "ingest did not end active" >&2; cat "$BENCH_DIR/ingest.json" >&2; exit 1; }
    mbps "$t0" "$t1"
}
cpu_seconds() { read -r _ user sys < <(tail -1 "$BENCH_DIR/rss.txt"); python3 -c "print(f'{$user + $sys:.2f}')"; }
best_ingest=0 best_baseline=0 best_dgst=0 rss_kib=0 user_s=0 sys_s=0
all_ingest=() all_baseline=()
# CPU time (user + sys) is less sensitive than wall time to a busy machine:
# the least of the runs is kept for each binary.
min_cpu=999 min_cpu_baseline=999
for run in $(seq "$RUNS"); do
    this=$(ingest_once "$bin")
    cpu=$(cpu_seconds)
    min_cpu=$(python3 -c "print(min($min_cpu, $cpu))")
    if (( this > best_ingest )); then
        best_ingest=$this
        read -r rss_kib user_s sys_s < <(tail -1 "$BENCH_DIR/rss.txt")
    fi
    all_ingest+=("$this")
    line="run $run: ingest $this MB/s ($cpu CPU s)"
    if [[ -n $BASELINE_BIN ]]; then
        this=$(ingest_once "$BASELINE_BIN")
        cpu=$(cpu_seconds)
        min_cpu_baseline=$(python3 -c "print(min($min_cpu_baseline, $cpu))")
        (( this > best_baseline )) && best_baseline=$this
        all_baseline+=("$this")
        line="$line, baseline $this MB/s ($cpu CPU s)"
    fi
    t0=$(now); openssl dgst -md5 "$input" > /dev/null; t1=$(now)
    this=$(mbps "$t0" "$t1")
    (( this > best_dgst )) && best_dgst=$this
    echo "$line, openssl dgst -md5 $this MB/s" >&2
done

t2=$(now); md5sum "$input" > /dev/null; t3=$(now); sha512sum "$input" > /dev/null; t4=$(now)
ours=$best_ingest
md5sum_mbps=$(mbps "$t2" "$t3")
sha512sum_mbps=$(mbps "$t3" "$t4")
sequential=$(mbps "$t2" "$t4")
ossl_md5=$(speed md5)
ossl_sha512=$(speed sha512)
limit=$(( ossl_md5 < ossl_sha512 ? ossl_md5 : ossl_sha512 ))

printf '%-44s %8s\n' "input" "$SIZE_MIB MiB, RSA-PSS SHA-512, os_hash sha512"
printf '%-44s %8s MB/s\n' "portcullis ingest (end to end, best of $RUNS)" "$ours"
printf '%-44s %8s MB/s\n' "openssl dgst -md5, same file (best of $RUNS)" "$best_dgst"
printf '%-44s %8s s\n' "portcullis CPU time, least of $RUNS" "$min_cpu"
if [[ -n $BASELINE_BIN ]]; then
    printf '%-44s %8s MB/s\n' "baseline ingest (best of $RUNS)" "$best_baseline"
    printf '%-44s %8s s\n' "baseline CPU time, least of $RUNS" "$min_cpu_baseline"
fi
printf '%-44s %8s MiB\n' "portcullis peak RSS" "$((rss_kib / 1024))"
printf '%-44s %8s s\n' "portcullis CPU time (user + sys)" "$(python3 -c "print(f'{$user_s + $sys_s:.2f}')")"
printf '%-44s %8s\n' "load average before the run" "$load_before"
printf '%-44s %8s MB/s\n' "md5sum" "$md5sum_mbps"
printf '%-44s %8s MB/s\n' "sha512sum" "$sha512sum_mbps"
printf '%-44s %8s MB/s\n' "md5sum + sha512sum, one after the other" "$sequential"
printf '%-44s %8s MB/s\n' "openssl speed -evp md5 (1 core)" "$ossl_md5"
printf '%-44s %8s MB/s\n' "openssl speed -evp sha512 (1 core)" "$ossl_sha512"
python3 - <<PY
ours, limit, sequential, rss, dgst = $ours, $limit, $sequential, $rss_kib / 1024, $best_dgst
print(f"{'ratio portcullis / openssl dgst -md5 (>= 0.75)':<44} {ours / dgst:8.2f}")
baseline = $best_baseline
if baseline:
    print(f"{'ratio baseline / openssl dgst -md5':<44} {baseline / dgst:8.2f}")
    print(f"{'ratio portcullis / baseline':<44} {ours / baseline:8.2f}")
    import statistics
    ours_median = statistics.median([${all_ingest[*]/%/,}])
    baseline_median = statistics.median([${all_baseline[*]/%/,}])
    print(f"{'medians portcullis / baseline (MB/s)':<44} {ours_median:.0f} / {baseline_median:.0f} = {ours_median / baseline_median:.2f}")
    print(f"{'CPU time portcullis / baseline':<44} {$min_cpu / $min_cpu_baseline:8.2f}")
print(f"{'ratio portcullis / slowest openssl speed':<44} {ours / limit:8.2f}")
print(f"{'ratio portcullis / md5sum+sha512sum':<44} {ours / sequential:8.2f}")
print(f"{'peak RSS target < 64 MiB':<44} {'ok' if rss < 64 else 'MISSED':>8}")
print(f"{'throughput target (0.75x openssl dgst -md5)':<44} {'ok' if ours >= 0.75 * dgst else 'MISSED':>8}")
PY
