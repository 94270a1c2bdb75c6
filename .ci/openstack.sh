#!/usr/bin/env bash
# Real OpenStack Keystone 30 + Barbican 23 for portcullis's tests (issue 9).
#
# Runs the shared scripts in ../shared/tools/real-keystone-barbican as they
# are (venv from PyPI, uWSGI on 127.0.0.1, SQLite), then provisions what the
# tests need with the openstack CLI, exactly as an operator would: projects
# demo and other, users alice (member of demo) and bob (member of other), a
# signing key and its certificate stored by alice as a Barbican certificate
# secret, and a private-key secret (not a certificate).  Writes the fixture
# file the tests read ($OSID_ROOT/portcullis-openstack.json; tests find it
# through PORTCULLIS_TEST_OPENSTACK).
#
#   .ci/openstack.sh up                 setup + start + provision; prints the export line
#   .ci/openstack.sh setup|provision    one step (idempotent)
#   .ci/openstack.sh start|stop [keystone|barbican]...
#
# Env: OSID_ROOT (/tmp/portcullis-osid), OSID_VENV ($PORTCULLIS_CACHE_DIR/venv-osid,
# cache dir default ~/.cache/portcullis), OSID_KEYSTONE_PORT (25000),
# OSID_BARBICAN_PORT (29311), PORTCULLIS_SHARED_DIR (the shared/ copy; default
# ../shared beside the checkout, else /work/shared).
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

shared="${PORTCULLIS_SHARED_DIR:-}"
if [ -z "$shared" ]; then
    for candidate in "$REPO/../shared" /work/shared; do
        if [ -d "$candidate/tools/real-keystone-barbican" ]; then shared="$candidate"; break; fi
    done
fi
TOOL="$shared/tools/real-keystone-barbican"
[ -x "$TOOL/setup.sh" ] || { echo "openstack.sh: no real-keystone-barbican tool under '$shared' (set PORTCULLIS_SHARED_DIR)" >&2; exit 1; }

export OSID_ROOT="${OSID_ROOT:-/tmp/portcullis-osid}"
export OSID_VENV="${OSID_VENV:-${PORTCULLIS_CACHE_DIR:-$HOME/.cache/portcullis}/venv-osid}"
export OSID_KEYSTONE_PORT="${OSID_KEYSTONE_PORT:-25000}"
export OSID_BARBICAN_PORT="${OSID_BARBICAN_PORT:-29311}"
# Distinctive passwords, so tests can grep every output for them.
export OSID_ADMIN_PASSWORD="${OSID_ADMIN_PASSWORD:-admin-Pw-3f9c1d}"
export OSID_SERVICE_PASSWORD="${OSID_SERVICE_PASSWORD:-barbican-Pw-8e2a6b}"
ALICE_PASSWORD="${PORTCULLIS_ALICE_PASSWORD:-alice-Pw-51c7e0}"
BOB_PASSWORD="${PORTCULLIS_BOB_PASSWORD:-bob-Pw-a04d93}"
FIXTURE="$OSID_ROOT/portcullis-openstack.json"

provision() {
    # lib.sh: KS, BBC, REGION, osc, os_admin (and it drops the caller's OS_*).
    # shellcheck source=/dev/null
    . "$TOOL/lib.sh"
    local t0 dir demo_id other_id href_cert href_key
    t0=$(date +%s)
    dir="$OSID_ROOT/portcullis"
    mkdir -p "$dir"
    demo_id=$(os_admin project create --or-show --domain Default demo -f value -c id)
    other_id=$(os_admin project create --or-show --domain Default other -f value -c id)
    os_admin user create --or-show --domain Default --password "$ALICE_PASSWORD" alice -f value -c id >/dev/null
    os_admin user create --or-show --domain Default --password "$BOB_PASSWORD" bob -f value -c id >/dev/null
    # --or-show keeps an existing user's password: set it, so reruns agree.
    os_admin user set --password "$ALICE_PASSWORD" alice
    os_admin user set --password "$BOB_PASSWORD" bob
    os_admin role add --project demo --user alice member
    os_admin role add --project other --user bob member

    # alice's signing key and self-signed certificate (RSA 3072, PEM), stored
    # as castellan stores an X509 object: PEM bytes, base64 on the wire.
    if [ ! -s "$dir/alice.key" ]; then
        openssl req -x509 -newkey rsa:3072 -nodes -sha256 -days 3650 \
            -subj "/O=portcullis CI/CN=alice signing" \
            -keyout "$dir/alice.key" -out "$dir/alice.crt" 2>/dev/null
    fi
    href_cert=$(osc alice demo "$ALICE_PASSWORD" -- secret store --name alice-signing-cert \
        --secret-type certificate --payload-content-type application/octet-stream \
        --payload-content-encoding base64 --payload "$(base64 -w0 "$dir/alice.crt")" \
        -f value -c "Secret href")
    # A secret that is not a certificate: the private key, as type private.
    href_key=$(osc alice demo "$ALICE_PASSWORD" -- secret store --name alice-private-key \
        --secret-type private --payload-content-type application/octet-stream \
        --payload-content-encoding base64 --payload "$(base64 -w0 "$dir/alice.key")" \
        -f value -c "Secret href")

    "$OSID_VENV/bin/python" - "$FIXTURE" <<EOF
import json, sys
fixture = {
    "auth_url": "$KS/v3",
    "www_authenticate_uri": "$KS",
    "barbican_url": "$BBC",
    "region": "$REGION",
    "admin": {"username": "admin", "password": "$OSID_ADMIN_PASSWORD", "project_name": "admin"},
    "service": {"username": "barbican", "password": "$OSID_SERVICE_PASSWORD", "project_name": "service"},
    "alice": {"username": "alice", "password": "$ALICE_PASSWORD", "project_name": "demo", "project_id": "$demo_id"},
    "bob": {"username": "bob", "password": "$BOB_PASSWORD", "project_name": "other", "project_id": "$other_id"},
    "certificate_href": "$href_cert",
    "certificate_path": "$dir/alice.crt",
    "key_path": "$dir/alice.key",
    "private_key_href": "$href_key",
    "control": ["$REPO/.ci/openstack.sh"],
    "control_env": {k: v for k, v in [
        ("OSID_ROOT", "$OSID_ROOT"), ("OSID_VENV", "$OSID_VENV"),
        ("OSID_KEYSTONE_PORT", "$OSID_KEYSTONE_PORT"), ("OSID_BARBICAN_PORT", "$OSID_BARBICAN_PORT"),
        ("PORTCULLIS_SHARED_DIR", "$shared")]},
}
with open(sys.argv[1], "w") as f:
    json.dump(fixture, f, indent=2)
EOF
    chmod 600 "$FIXTURE"
    echo "provisioned in $(( $(date +%s) - t0 ))s: $FIXTURE"
}

command="${1:-}"
[ $# -gt 0 ] && shift
case "$command" in
    setup) "$TOOL/setup.sh" ;;
    start) "$TOOL/start.sh" "$@" ;;
    stop) "$TOOL/stop.sh" "$@" ;;
    provision) provision ;;
    up)
        "$TOOL/setup.sh"
        "$TOOL/start.sh"
        provision
        echo "export PORTCULLIS_TEST_OPENSTACK=$FIXTURE"
        ;;
    *) echo "usage: $0 up | setup | provision | start [service] | stop [service]" >&2; exit 2 ;;
esac
