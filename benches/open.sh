#!/usr/bin/env bash
# Benchmark: what the bounded sweep at open (`sweep_at_open`, issue 8 item
# 11) costs an ordinary command. Every command that opens the data directory
# collects at most 16 pending deletions, orphan staged writes and stale lock
# files; with nothing to collect that is one indexed query and two listings
# of the staging directory. This runs the same commands with
# `sweep_at_open = true` (the default) and `false` (the baseline) on one data
# directory, interleaved so both see the same machine noise.
#
# Runs RUNS x PER_ROUND (default 4 x 50) iterations, each one `images show`
# (a read) and one `images create` (a write) with each setting, back to
# back. Prints the median milliseconds per command for each setting, the
# ratio with/without and the quartiles of the runs without it; then the
# sweep's own time as the command logs it (`-vv`, `elapsed_us`). Goal: no
# measurable difference (the ratio within the runs' own spread).
#
# The repository holds IMAGES (default 1000) records, 50 of them with data,
# so listings and queries are not of an empty directory. Self-contained and
# rerunnable: the data directory is on $BENCH_DATA_ROOT (default /tmp, a
# disk, as a user's would be) and removed at the end.
# Needs: cargo, python3.
set -euo pipefail

cd "$(dirname "$0")/.."
BENCH_DATA_ROOT=${BENCH_DATA_ROOT:-/tmp}
IMAGES=${IMAGES:-1000}
RUNS=${RUNS:-4}
PER_ROUND=${PER_ROUND:-50}
cargo build --release --quiet
BIN=$(pwd)/target/release/portcullis
WORK=$(mktemp -d "$BENCH_DATA_ROOT/portcullis-open-bench.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
export PORTCULLIS_DATA_DIR=$WORK/data NO_COLOR=1

echo "populating: $IMAGES images (50 with data)"
head -c 65536 /dev/urandom > "$WORK/small.raw"
for i in $(seq 1 50); do
    "$BIN" ingest "$WORK/small.raw" --name "data-$i" --disk-format raw --container-format bare >/dev/null
done
for i in $(seq 51 "$IMAGES"); do
    "$BIN" images create --name "meta-$i" --disk-format raw --container-format bare >/dev/null
done
ID=$("$BIN" images list --limit 1 --format json | python3 -c 'import json,sys; print(json.load(sys.stdin)["images"][0]["id"])')

# Nanoseconds of one run of "$@".
once() {
    local start end
    start=$(date +%s%N)
    "$@" >/dev/null
    end=$(date +%s%N)
    echo $((end - start))
}

# Each iteration runs both settings back to back (which goes first
# alternates), so slow moments of the machine hit both alike; medians of
# single runs shrug off the outliers.
CONFIG=$PORTCULLIS_DATA_DIR/portcullis.toml
declare -a show_on show_off create_on create_off
for i in $(seq 1 "$RUNS"); do
    for j in $(seq 1 "$PER_ROUND"); do
        for setting in $(if (( (i + j) % 2 )); then echo true false; else echo false true; fi); do
            echo "sweep_at_open = $setting" > "$CONFIG"
            show=$(once "$BIN" images show "$ID")
            create=$(once "$BIN" images create --name bench --disk-format raw --container-format bare)
            if [[ $setting == true ]]; then show_on+=("$show"); create_on+=("$create"); else show_off+=("$show"); create_off+=("$create"); fi
        done
    done
    echo "round $i of $RUNS done"
done

# The sweep's own time, as the command logs it at -vv (the wall-clock
# rounds above are dominated by process start and noise).
echo "sweep_at_open = true" > "$PORTCULLIS_DATA_DIR/portcullis.toml"
declare -a inside
for _ in $(seq 1 30); do
    inside+=("$("$BIN" -vv images show "$ID" 2>&1 >/dev/null | sed -n 's/.*sweep at open done elapsed_us=\([0-9]*\).*/\1/p')")
done

python3 - "${show_on[*]}" "${show_off[*]}" "${create_on[*]}" "${create_off[*]}" "${inside[*]}" <<'PY'
import statistics, sys
show_on, show_off, create_on, create_off = ([int(x) / 1e6 for x in arg.split()] for arg in sys.argv[1:5])
inside = [int(x) / 1000 for x in sys.argv[5].split()]
m_inside = statistics.median(inside)
print(f"the sweep at open itself: median {m_inside:.3f} ms (max {max(inside):.3f} ms), "
      f"{m_inside / statistics.median(show_off):.1%} of an images show")
for name, on, off in (("images show", show_on, show_off), ("images create", create_on, create_off)):
    m_on, m_off = statistics.median(on), statistics.median(off)
    q = statistics.quantiles(off, n=4)
    print(f"{name}: median {m_on:.2f} ms with the sweep at open, {m_off:.2f} ms without "
          f"(runs without it: quartiles {q[0]:.2f}-{q[2]:.2f} ms, n={len(off)}): ratio {m_on / m_off:.3f}")
PY
