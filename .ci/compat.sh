# The OpenStack-client compatibility suite's environment: the real
# python-glanceclient and python-openstackclient in a venv, and one real
# `portcullis serve` on 127.0.0.1 (free port, temporary data directory) for
# the whole suite (tests/it/compat.rs). Sourced by .ci/run; developers can
# source it too:
#
#   source .ci/compat.sh && compat_install && compat_start   # exports the variables below
#   cargo test --test it compat::
#   compat_stop
#
#   compat_install   # venv with the clients at the versions glance-wire.md was recorded with (idempotent)
#   compat_start     # builds and starts the server (image_size_cap 4 MiB, cert_dir testdata/certs);
#                    # exports PORTCULLIS_SERVE_URL, PORTCULLIS_SERVE_DATA_DIR,
#                    # PORTCULLIS_SERVE_SIZE_CAP and PORTCULLIS_CLIENTS_VENV; a failed start fails
#   compat_stop      # SIGTERM to the server's pid, waits for it, removes the data directory
#
# The venv lives in $PORTCULLIS_CLIENTS_VENV (default /work/cache/venv-clients
# when /work/cache exists, so developers share one copy; otherwise under ~/.cache).

PORTCULLIS_CLIENTS_VENV=${PORTCULLIS_CLIENTS_VENV:-$([ -d /work/cache ] && echo /work/cache/venv-clients || echo "$HOME/.cache/portcullis/venv-clients")}
COMPAT_GLANCECLIENT_VERSION=${COMPAT_GLANCECLIENT_VERSION:-4.13.0}
COMPAT_OPENSTACKCLIENT_VERSION=${COMPAT_OPENSTACKCLIENT_VERSION:-10.5.0}
COMPAT_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
COMPAT_SERVER_PID=
COMPAT_DIR=
# The suite server's image_size_cap (tests/it/compat.rs reads it back from
# PORTCULLIS_SERVE_SIZE_CAP to upload just over it).
COMPAT_SIZE_CAP=${COMPAT_SIZE_CAP:-4194304}

compat_install() {
    local pip="$PORTCULLIS_CLIENTS_VENV/bin/pip"
    if [ -x "$PORTCULLIS_CLIENTS_VENV/bin/glance" ] && [ -x "$PORTCULLIS_CLIENTS_VENV/bin/openstack" ] \
        && "$pip" show python-glanceclient 2>/dev/null | grep -qx "Version: $COMPAT_GLANCECLIENT_VERSION" \
        && "$pip" show python-openstackclient 2>/dev/null | grep -qx "Version: $COMPAT_OPENSTACKCLIENT_VERSION"; then
        return 0
    fi
    command -v python3 >/dev/null || { echo "compat: python3 (and python3-venv) is needed for the OpenStack clients" >&2; return 1; }
    mkdir -p "$(dirname "$PORTCULLIS_CLIENTS_VENV")"
    python3 -m venv "$PORTCULLIS_CLIENTS_VENV"
    "$pip" install --quiet --upgrade pip
    "$pip" install --quiet "python-glanceclient==$COMPAT_GLANCECLIENT_VERSION" \
        "python-openstackclient==$COMPAT_OPENSTACKCLIENT_VERSION"
    "$PORTCULLIS_CLIENTS_VENV/bin/glance" --version
}

compat_start() {
    (cd "$COMPAT_ROOT" && cargo build --locked --quiet --bin portcullis)
    COMPAT_DIR=$(mktemp -d "${TMPDIR:-/tmp}/portcullis-compat.XXXXXX")
    mkdir -p "$COMPAT_DIR/data"
    # The suite's settings: a small size cap for the 413 scenario, and the
    # test certificates as the key store for the signed-image scenarios.
    cat > "$COMPAT_DIR/data/portcullis.toml" <<TOML
image_size_cap = $COMPAT_SIZE_CAP
cert_dir = "$COMPAT_ROOT/testdata/certs"
TOML
    # Port 0: the server picks a free port and prints `listening on <url>`
    # as its first line on stdout once it accepts connections.
    NO_COLOR=1 "$COMPAT_ROOT/target/debug/portcullis" serve --bind 127.0.0.1:0 --data-dir "$COMPAT_DIR/data" \
        > "$COMPAT_DIR/stdout" 2> "$COMPAT_DIR/server.log" &
    COMPAT_SERVER_PID=$!
    local deadline=$((SECONDS + 60)) url=
    while [ -z "$url" ]; do
        url=$(sed -n 's/^listening on //p' "$COMPAT_DIR/stdout" 2>/dev/null)
        if ! kill -0 "$COMPAT_SERVER_PID" 2>/dev/null; then
            echo "compat: portcullis serve exited before listening:" >&2
            cat "$COMPAT_DIR/server.log" >&2
            return 1
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            echo "compat: portcullis serve did not listen within 60 s:" >&2
            cat "$COMPAT_DIR/server.log" >&2
            return 1
        fi
        [ -n "$url" ] || sleep 0.1
    done
    export PORTCULLIS_SERVE_URL=$url
    export PORTCULLIS_SERVE_DATA_DIR=$COMPAT_DIR/data
    export PORTCULLIS_SERVE_SIZE_CAP=$COMPAT_SIZE_CAP
    export PORTCULLIS_CLIENTS_VENV
    echo "compat: portcullis serve (pid $COMPAT_SERVER_PID) at $url, data in $PORTCULLIS_SERVE_DATA_DIR"
}

compat_stop() {
    if [ -n "$COMPAT_SERVER_PID" ] && kill -0 "$COMPAT_SERVER_PID" 2>/dev/null; then
        kill -TERM "$COMPAT_SERVER_PID"
        local status=0
        wait "$COMPAT_SERVER_PID" || status=$?
        echo "compat: portcullis serve stopped (exit $status)"
    fi
    COMPAT_SERVER_PID=
    if [ -n "$COMPAT_DIR" ]; then
        # Errors the server logged (5xx causes, failed rollbacks) explain a failed test.
        if grep -q " ERROR " "$COMPAT_DIR/server.log" 2>/dev/null; then
            echo "compat: the server logged errors; its last lines:" >&2
            tail -n 40 "$COMPAT_DIR/server.log" >&2
        fi
        rm -rf "$COMPAT_DIR"
        COMPAT_DIR=
    fi
}
