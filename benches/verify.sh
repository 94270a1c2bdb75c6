#!/usr/bin/env bash
# Benchmark: `portcullis verify` against `openssl dgst -verify` on the same
# 1 GiB file, RSA-PSS (RSA-2048) with SHA-256 and SHA-512. Prints MB/s for each
# (best of RUNS interleaved runs, page cache warm) and the ratio portcullis / openssl.
# Target: ratio >= 0.95 for both hashes.
#
# Usage: benches/verify.sh            (SIZE_MIB=1024 RUNS=3 by default)
#        SIZE_MIB=256 RUNS=5 benches/verify.sh
# Scratch files go to ${BENCH_DIR:-/tmp/portcullis-bench} (kept between runs).
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE_MIB=${SIZE_MIB:-1024}
RUNS=${RUNS:-3}
DIR=${BENCH_DIR:-/tmp/portcullis-bench}
mkdir -p "$DIR/certs"

cargo build --release --quiet
BIN=$(pwd)/target/release/portcullis

DATA="$DIR/data-${SIZE_MIB}MiB.bin"
if [ ! -f "$DATA" ] || [ "$(stat -c %s "$DATA")" -ne $((SIZE_MIB * 1024 * 1024)) ]; then
    echo "creating $DATA" >&2
    head -c $((SIZE_MIB * 1024 * 1024)) /dev/urandom > "$DATA"
fi
KEY="$DIR/rsa2048.pem"
PUB="$DIR/rsa2048.pub.pem"
ID=6f1b3c2e-9d5a-4c47-8f0e-2b7d1a9c3e55
if [ ! -f "$KEY" ]; then
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$KEY" 2>/dev/null
    openssl pkey -in "$KEY" -pubout -out "$PUB"
    openssl req -x509 -new -key "$KEY" -subj "/CN=portcullis bench" -days 3650 -out "$DIR/certs/$ID.pem"
fi

# Warm the page cache so both tools read from memory.
cat "$DATA" > /dev/null

seconds() { # command... -> wall time in seconds
    local start end
    start=$(date +%s.%N)
    "$@" > /dev/null 2>&1 || { echo "command failed: $*" >&2; exit 1; }
    end=$(date +%s.%N)
    echo "$end - $start" | bc -l
}
min() { if [ -z "$1" ] || [ "$(echo "$2 < $1" | bc -l)" = 1 ]; then echo "$2"; else echo "$1"; fi; }

MB=$(echo "$SIZE_MIB * 1048576 / 1000000" | bc -l)
printf '%-8s %14s %14s %8s\n' hash "portcullis MB/s" "openssl MB/s" ratio
for hash in sha256 sha512; do
    SIG="$DIR/sig.$hash"
    openssl dgst "-$hash" -sign "$KEY" -sigopt rsa_padding_mode:pss -out "$SIG" "$DATA"
    B64=$(openssl base64 -A < "$SIG")
    METHOD="SHA-${hash#sha}"
    # Interleave the two tools so a change in machine load hits both alike.
    t_ours=""
    t_openssl=""
    for _ in $(seq 1 "$RUNS"); do
        t_ours=$(min "$t_ours" "$(seconds "$BIN" verify "$DATA" --cert-dir "$DIR/certs" \
            --signature "$B64" --hash-method "$METHOD" --key-type RSA-PSS --cert-uuid "$ID")")
        t_openssl=$(min "$t_openssl" "$(seconds openssl dgst "-$hash" -verify "$PUB" \
            -sigopt rsa_padding_mode:pss -signature "$SIG" "$DATA")")
    done
    ours=$(echo "$MB / $t_ours" | bc -l)
    theirs=$(echo "$MB / $t_openssl" | bc -l)
    ratio=$(echo "$ours / $theirs" | bc -l)
    printf '%-8s %14.0f %14.0f %8.2f\n' "$hash" "$ours" "$theirs" "$ratio"
done
