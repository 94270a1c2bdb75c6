#!/usr/bin/env bash
# A throwaway PostgreSQL 15 for the repository conformance suite
# (tests/it/repo.rs), started by .ci/run; usable by hand the same way.
#
#   .ci/postgres.sh install      postgresql-15 from Debian, without the cluster
#                                and service its package would create (idempotent)
#   .ci/postgres.sh up DIR       a cluster in DIR (an empty directory), running;
#                                writes DIR/env (export PORTCULLIS_TEST_POSTGRES_URL=...)
#   .ci/postgres.sh stop DIR     stops that cluster (pg_ctl, else its pid) and removes DIR
#
# The cluster is run by the non-root `postgres` system user when called as
# root (initdb refuses root), listens on 127.0.0.1 and a free port only, uses
# password auth with a random password, and serves TLS with a throwaway CA
# that the tests verify (sslmode=verify-full), so the suite also proves
# portcullis's TLS path. fsync is off: the tests check behaviour, not
# durability. A cluster that does not start fails `up` with its log.
set -euo pipefail

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# Runs a PostgreSQL command as the cluster's owner.
as_pg() {
    if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

postgres_install() {
    [ -x "$PG_BIN/initdb" ] && return 0
    echo "installing: postgresql-15 (no default cluster)"
    as_root mkdir -p /etc/postgresql-common
    if ! grep -qs '^create_main_cluster *= *false' /etc/postgresql-common/createcluster.conf; then
        echo 'create_main_cluster = false' | as_root tee -a /etc/postgresql-common/createcluster.conf >/dev/null
    fi
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql-15
}

postgres_up() {
    local dir=$1
    if [ "$(id -u)" -eq 0 ]; then
        id -u postgres >/dev/null 2>&1 || useradd --system --home-dir /nonexistent --shell /usr/sbin/nologin postgres
        chown postgres: "$dir"
    fi
    chmod 700 "$dir"
    local password
    password=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
    printf '%s\n' "$password" > "$dir/pwfile"
    [ "$(id -u)" -ne 0 ] || chown postgres: "$dir/pwfile"
    as_pg "$PG_BIN/initdb" -D "$dir/data" -U postgres -A scram-sha-256 --pwfile="$dir/pwfile" \
        -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; return 1; }
    rm -f "$dir/pwfile"
    (
        cd "$dir"
        openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 2 \
            -subj "/CN=portcullis test CA" 2>/dev/null
        openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj "/CN=127.0.0.1" 2>/dev/null
        printf 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1\n' > server.ext
        openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out server.crt \
            -days 2 -extfile server.ext 2>/dev/null
        rm -f ca.key ca.srl server.csr server.ext
        chmod 600 server.key
        [ "$(id -u)" -ne 0 ] || chown postgres: server.key server.crt
    )
    local port= candidate
    for _ in 1 2 3 4 5; do
        # Free now; another process may still take it first, hence the retries.
        candidate=$("$(dirname "$0")/free-ports" 1)
        if as_pg "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
            -o "-c listen_addresses=127.0.0.1 -p $candidate -k $dir -c max_connections=300 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c ssl=on -c ssl_cert_file=$dir/server.crt -c ssl_key_file=$dir/server.key" \
            start >/dev/null; then
            port=$candidate
            break
        fi
    done
    if [ -z "$port" ]; then
        echo "PostgreSQL did not start; its log:" >&2
        cat "$dir/server.log" >&2 || true
        return 1
    fi
    # The password is this throwaway cluster's only; the file is in a 0700 directory.
    echo "export PORTCULLIS_TEST_POSTGRES_URL='postgres://postgres:$password@127.0.0.1:$port/postgres?sslmode=verify-full&sslrootcert=$dir/ca.crt'" > "$dir/env"
    echo "PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$port (pid $(head -1 "$dir/data/postmaster.pid"))"
}

postgres_stop() {
    local dir=$1
    if [ -s "$dir/data/postmaster.pid" ]; then
        as_pg "$PG_BIN/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >/dev/null 2>&1 ||
            kill -KILL "$(head -1 "$dir/data/postmaster.pid")" 2>/dev/null || true
    fi
    rm -rf "$dir"
}

case "${1:-}" in
    install) postgres_install ;;
    up) [ -n "${2:-}" ] || { echo "usage: $0 up DIR" >&2; exit 2; }; postgres_up "$2" ;;
    stop) [ -n "${2:-}" ] || { echo "usage: $0 stop DIR" >&2; exit 2; }; postgres_stop "$2" ;;
    *) echo "usage: $0 install | up DIR | stop DIR" >&2; exit 2 ;;
esac
