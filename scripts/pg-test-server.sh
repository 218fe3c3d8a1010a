#!/usr/bin/env bash
# Throwaway PostgreSQL server for tests.
#
#   scripts/pg-test-server.sh start DIR   start (or find running) a cluster in DIR, print its URL
#   scripts/pg-test-server.sh url DIR     print the URL of the running cluster in DIR
#   scripts/pg-test-server.sh stop DIR    stop it (no-op if not running)
#
# The cluster lives entirely in DIR (data, unix socket, log), listens on a free
# port on 127.0.0.1 only, trusts local connections, and has one database,
# palaver_test. It is tuned for speed, not durability (fsync off): never point
# anything but tests at it. Idempotent: `start` on a running cluster only
# prints the URL; `start` after `stop` reuses the data. Run as root, it runs
# the server as the `postgres` user (created by Debian's package) or, failing
# that, a `palaver-pg` system user; as anyone else, as that user. If that user
# cannot reach DIR (e.g. DIR is under /root), the cluster's files go to
# /tmp/palaver-pg-<hash of DIR> instead and DIR keeps the port file. If no
# PostgreSQL server binaries are found and we are root, Debian's `postgresql`
# package is installed.
set -euo pipefail

usage() { echo "usage: $0 start|stop|url DIR" >&2; exit 2; }
[[ $# -eq 2 ]] || usage
cmd=$1
mkdir -p "$2"
dir=$(cd "$2" && pwd)
db=palaver_test

find_bindir() {
    local candidate
    for candidate in /usr/lib/postgresql/15/bin "$(pg_config --bindir 2>/dev/null || true)" \
        $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        if [[ -n $candidate && -x $candidate/initdb && -x $candidate/pg_ctl ]]; then
            echo "$candidate"
            return 0
        fi
    done
    return 1
}

bindir=$(find_bindir || true)
if [[ -z $bindir ]]; then
    if [[ $cmd == stop ]]; then exit 0; fi
    if [[ $(id -u) -ne 0 ]]; then
        echo "$0: no PostgreSQL server binaries found; install Debian's 'postgresql' package" >&2
        exit 1
    fi
    echo "$0: installing PostgreSQL (apt-get install postgresql)" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq postgresql >&2
    bindir=$(find_bindir) || { echo "$0: PostgreSQL installed but initdb not found" >&2; exit 1; }
fi

# The server refuses to run as root: pick an unprivileged user to run it as.
if [[ $(id -u) -eq 0 ]]; then
    if id -u postgres >/dev/null 2>&1; then
        pg_user=postgres
    else
        pg_user=palaver-pg
        id -u "$pg_user" >/dev/null 2>&1 ||
            useradd --system --no-create-home --shell /usr/sbin/nologin "$pg_user"
    fi
    as_pg() { runuser -u "$pg_user" -- "$@"; }
else
    pg_user=$(id -un)
    as_pg() { "$@"; }
fi

# Where the cluster's own files live: DIR itself when the server's user can
# reach it, else a fixed folder under /tmp derived from DIR.
root=$dir
if [[ $(id -u) -eq 0 ]] && ! as_pg test -x "$dir"; then
    root=/tmp/palaver-pg-$(printf '%s' "$dir" | md5sum | cut -c1-12)
    mkdir -p "$root"
fi
data="$root/data"
run="$root/run"
log="$root/postgres.log"
port_file="$dir/port"
url_of() { echo "postgres://postgres@127.0.0.1:$1/$db"; }

running() { [[ -f $data/PG_VERSION ]] && as_pg "$bindir/pg_ctl" -D "$data" status >/dev/null 2>&1; }

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

pick_port() {
    local port tries=0
    while ((tries++ < 200)); do
        port=$((20000 + RANDOM % 40000))
        if ! port_in_use "$port"; then echo "$port"; return 0; fi
    done
    echo "$0: no free port found" >&2
    return 1
}

case $cmd in
url)
    if running && [[ -f $port_file ]]; then
        url_of "$(cat "$port_file")"
    else
        echo "$0: no cluster running in $dir" >&2
        exit 1
    fi
    ;;
stop)
    if running; then
        as_pg "$bindir/pg_ctl" -D "$data" -m fast -w stop >/dev/null
    fi
    ;;
start)
    if running && [[ -f $port_file ]]; then
        url_of "$(cat "$port_file")"
        exit 0
    fi
    mkdir -p "$run"
    if [[ $(id -u) -eq 0 ]]; then
        chown "$pg_user" "$root" "$run"
        touch "$log" && chown "$pg_user" "$log"
    fi
    if [[ ! -f $data/PG_VERSION ]]; then
        rm -rf "$data"
        as_pg "$bindir/initdb" -D "$data" -U postgres --auth=trust -E UTF8 --locale=C >"$root/initdb.log" 2>&1 ||
            { cat "$root/initdb.log" >&2; exit 1; }
        cat >>"$data/postgresql.conf" <<CONF
# palaver test server: throwaway, loopback only, fast.
listen_addresses = '127.0.0.1'
unix_socket_directories = '$run'
max_connections = 300
fsync = off
synchronous_commit = off
full_page_writes = off
CONF
    fi
    # A port can be taken between our check and the server's bind: retry.
    for _ in 1 2 3 4 5; do
        port=$(pick_port)
        if as_pg "$bindir/pg_ctl" -D "$data" -l "$log" -w -t 60 -o "-p $port" start >/dev/null 2>&1; then
            echo "$port" >"$port_file"
            break
        fi
        port=
    done
    if [[ -z ${port:-} ]]; then
        echo "$0: PostgreSQL did not start; last lines of $log:" >&2
        tail -n 20 "$log" >&2
        exit 1
    fi
    psql=("$bindir/psql" -h "$run" -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1 -qtAX)
    if [[ $(as_pg "${psql[@]}" -c "SELECT 1 FROM pg_database WHERE datname = '$db'") != 1 ]]; then
        as_pg "${psql[@]}" -c "CREATE DATABASE $db" >/dev/null
    fi
    url_of "$port"
    ;;
*)
    usage
    ;;
esac
