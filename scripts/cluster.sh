# Shell helpers, sourced by the scripts: a throwaway PostgreSQL cluster run
# by an unprivileged OS user, in its own directory, on a Unix socket only.
# shellcheck shell=bash

PG_BIN=$(pg_config --bindir)
DRIFT_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DRIFT_DATA=${DRIFT_DATA:-$DRIFT_ROOT/../shared/data}
# The OS user that runs PostgreSQL (it refuses to run as root).
PG_USER=${PG_USER:-$( [ "$(id -u)" = 0 ] && echo postgres || id -un )}

# Runs a command as PG_USER.
as_pg() {
    if [ "$(id -un)" = "$PG_USER" ]; then "$@"; else runuser -u "$PG_USER" -- "$@"; fi
}

# Makes a directory owned by PG_USER and prints its path.
pg_tmpdir() {
    local d
    d=$(mktemp -d "${TMPDIR:-/tmp}/drift-$1.XXXXXX")
    chmod 755 "$d"
    [ "$(id -u)" = 0 ] && chown "$PG_USER" "$d"
    echo "$d"
}

# cluster_start DIR PORT [postgresql.conf lines...]: initdb and start.
cluster_start() {
    local dir=$1 port=$2
    shift 2
    as_pg "$PG_BIN/initdb" -D "$dir/data" -A trust -U postgres --no-sync >"$dir/initdb.log" 2>&1
    {
        echo "listen_addresses = ''"
        echo "unix_socket_directories = '$dir'"
        echo "port = $port"
        echo "fsync = off"
        echo "shared_buffers = 512MB"
        echo "maintenance_work_mem = 512MB"
        for line in "$@"; do echo "$line"; done
    } | as_pg tee -a "$dir/data/postgresql.conf" >/dev/null
    as_pg "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w start >/dev/null
    export PGHOST=$dir PGPORT=$port PGUSER=postgres
}

# cluster_stop DIR: stop the cluster.
cluster_stop() {
    as_pg "$PG_BIN/pg_ctl" -D "$1/data" -m fast -w stop >/dev/null 2>&1 || true
}

# psql as PG_USER against the current cluster, stopping on the first error.
dpsql() {
    as_pg env PGHOST="$PGHOST" PGPORT="$PGPORT" PGUSER="$PGUSER" psql -X -q -v ON_ERROR_STOP=1 "$@"
}

# load_vectors DB TABLE KIND FILE [ARG]: (id int, v real[]) rows from an
# .fvecs/.ivecs file through build/vecdata.
load_vectors() {
    local db=$1 table=$2 kind=$3 file=$4 arg=${5:-}
    local col=v type="real[]"
    [ "$kind" = ivecs ] && col=ids type="int[]"
    dpsql -d "$db" -c "CREATE TABLE $table (id int PRIMARY KEY, $col $type)" \
        -c "\\copy $table FROM PROGRAM '$DRIFT_ROOT/build/vecdata $kind $file $arg'"
}
