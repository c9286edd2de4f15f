#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the test suite.
#
#   scripts/test-postgres.sh start DIR   create and start a cluster in DIR (new or empty);
#                                        prints its SQLAlchemy URL, and only that, on stdout:
#                                        postgresql+asyncpg://postgres@127.0.0.1:PORT/flowyard_test
#   scripts/test-postgres.sh stop DIR    stop it (immediate) and delete DIR
#
# Diagnostics go to stderr. The cluster listens on 127.0.0.1 only, on a free port, with
# trust auth and durability switched off (fsync, synchronous_commit, full_page_writes):
# it is for tests and nothing else. We run initdb + pg_ctl directly: Debian's
# pg_createcluster writes `-o listen_addresses=…` unquoted and the cluster won't start.
#
# PostgreSQL server binaries are looked up in /usr/lib/postgresql/*/bin (Debian; newest
# version wins), then $PG_BINDIR, then PATH. When none is found, Debian's `postgresql`
# package is installed if we are root; otherwise we exit 3 with a message (callers treat
# 3 as "PostgreSQL not available here").
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
marker=.flowyard-test-postgres

log() { echo "test-postgres: $*" >&2; }
die() { log "$*"; exit 1; }

find_bindir() {
    local d
    d=$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
    if [[ -n $d && -x $d/initdb ]]; then echo "$d"; return 0; fi
    if [[ -n ${PG_BINDIR:-} && -x $PG_BINDIR/initdb ]]; then echo "$PG_BINDIR"; return 0; fi
    if command -v initdb >/dev/null; then dirname "$(command -v initdb)"; return 0; fi
    return 1
}

free_port() {
    "${PYTHON:-python3}" -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

start() {
    local dir=$1 bindir port url started=$SECONDS attempt
    local -a as=()

    if ! bindir=$(find_bindir); then
        log "no PostgreSQL server binaries (initdb) found; installing Debian's postgresql package"
        local rc=0
        "$here/apt-install.sh" postgresql || rc=$?
        if [[ $rc -ne 0 ]]; then
            log "PostgreSQL is not available (install the 'postgresql' package, or set FLOWYARD_TEST_POSTGRES_URL)"
            exit 3
        fi
        bindir=$(find_bindir) || die "postgresql installed, but no initdb under /usr/lib/postgresql/*/bin"
    fi

    if [[ -e $dir && -n $(ls -A "$dir") ]]; then
        die "$dir exists and is not empty"
    fi
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    [[ $dir != *"'"* ]] || die "the cluster directory must not contain a quote: $dir"
    touch "$dir/$marker"
    echo "$bindir" >"$dir/bindir"

    # From here on, a failure tears down what we built.
    trap 'log "start failed; cleaning up $dir"; stop "$dir" || true' EXIT

    if [[ $(id -u) -eq 0 ]]; then
        # initdb refuses to run as root: the cluster belongs to the postgres user.
        id postgres >/dev/null 2>&1 || die "no 'postgres' user (it comes with Debian's postgresql-common)"
        chown -R postgres:postgres "$dir"
        as=(runuser -u postgres --)
        "${as[@]}" test -w "$dir" \
            || die "user postgres cannot write $dir (is a parent directory closed to other users?)"
    fi

    "${as[@]}" "$bindir/initdb" -D "$dir/data" -U postgres --auth=trust \
        --encoding=UTF8 --locale=C --no-sync >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; die "initdb failed"; }
    "${as[@]}" mkdir "$dir/socket"
    cat >>"$dir/data/postgresql.conf" <<CONF

# scripts/test-postgres.sh: a throwaway cluster for tests
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir/socket'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 200
CONF

    # The port is picked, then bound by postgres: another process may take it between the
    # two, so try a few times.
    for attempt in 1 2 3; do
        port=$(free_port)
        if "${as[@]}" "$bindir/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -o "-p $port" \
            -w -t 60 start >&2; then
            break
        fi
        tail -n 20 "$dir/postgres.log" >&2 || true
        [[ $attempt -lt 3 ]] || die "pg_ctl start failed (log above)"
        log "retrying with another port"
    done

    "$bindir/createdb" -h 127.0.0.1 -p "$port" -U postgres flowyard_test >&2

    url="postgresql+asyncpg://postgres@127.0.0.1:$port/flowyard_test"
    echo "$url" >"$dir/url"
    trap - EXIT
    log "PostgreSQL $("$bindir/postgres" --version | awk '{print $3}') up on 127.0.0.1:$port in $((SECONDS - started)) s ($dir)"
    echo "$url"
}

stop() {
    local dir=$1 bindir
    if [[ ! -d $dir ]]; then
        log "$dir does not exist; nothing to stop"
        return 0
    fi
    if [[ -z $(ls -A "$dir") ]]; then
        rmdir "$dir"  # made by the caller (mktemp); start never got going
        return 0
    fi
    [[ -e $dir/$marker ]] || die "refusing to touch $dir: not a cluster made by this script"
    if [[ -f $dir/data/postmaster.pid ]]; then
        bindir=$(cat "$dir/bindir")
        local -a as=()
        [[ $(id -u) -ne 0 ]] || as=(runuser -u postgres --)
        "${as[@]}" "$bindir/pg_ctl" -D "$dir/data" -m immediate -w stop >&2 \
            || log "pg_ctl stop failed (continuing to remove $dir)"
    fi
    rm -rf "$dir"
}

case ${1:-} in
    start) [[ $# -eq 2 ]] || die "usage: $0 start DIR"; start "$2" ;;
    stop) [[ $# -eq 2 ]] || die "usage: $0 stop DIR"; stop "$2" ;;
    *) echo "usage: $0 start DIR | stop DIR" >&2; exit 2 ;;
esac
