# Shell helpers of the SQL-level benchmarks, sourced by bench/*.sh after
# scripts/cluster.sh.
# shellcheck shell=bash

# bench_start NAME PORT [postgresql.conf lines...]: a throwaway cluster
# tuned for benchmarks in WORK (removed on exit), with database bench,
# drift, and pgvector with drift_vector when installed (HAVE_PGVECTOR=1).
bench_start() {
    local name=$1 port=$2
    shift 2
    WORK=$(pg_tmpdir "$name")
    trap 'cluster_stop "$WORK/pg"; rm -rf "$WORK"' EXIT
    as_pg mkdir -p "$WORK/pg"
    cluster_start "$WORK/pg" "$port" "shared_buffers = 4GB" "maintenance_work_mem = 2GB" "jit = off" \
        "max_wal_size = 8GB" "checkpoint_timeout = 30min" "synchronous_commit = off" "autovacuum = off" "$@"
    dpsql -d postgres -c "CREATE DATABASE bench"
    B -c "CREATE EXTENSION drift"
    HAVE_PGVECTOR=$(B -Atc "SELECT count(*) FROM pg_available_extensions WHERE name = 'vector'")
    [ "$HAVE_PGVECTOR" = 1 ] && B -c "CREATE EXTENSION vector" -c "CREATE EXTENSION drift_vector"
    return 0
}

# psql on the bench database.
B() { dpsql -d bench "$@"; }

# Wall-clock seconds.
now() { date +%s.%N; }

# best_qps SCRIPT PGOPTIONS [CLIENTS]: the best of three pgbench runs of
# SECS seconds each, with CLIENTS clients (default 1) on as many threads
# (on a shared machine, noise only ever slows a run).
best_qps() {
    local qps=0 r c=${3:-1}
    for _ in 1 2 3; do
        r=$(as_pg env PGOPTIONS="$2" pgbench -n -c "$c" -j "$c" -T "$SECS" -f "$1" -h "$PGHOST" -p "$PGPORT" -U postgres bench \
              2>/dev/null | awk '/^tps/ {printf "%.0f", $3}')
        [ "${r:-0}" -gt "$qps" ] && qps=$r
    done
    echo "$qps"
}

# recall_sql BASE QUERIES TRUTH OP DIGITS: SQL for the mean recall@10 of
# "ORDER BY v OP q LIMIT 10" over table BASE, for every query q of table
# QUERIES, against table TRUTH's ids of the same query id.
recall_sql() {
    echo "SELECT round(avg((SELECT count(*) FROM unnest(ARRAY(SELECT b.id FROM $1 b ORDER BY b.v $4 q.v LIMIT 10)) g
                            WHERE g = ANY (t.ids)))::numeric / 10, $5)
            FROM $2 q JOIN $3 t USING (id)"
}

# floor_script FILE BASE QUERIES: the floor of a query's fixed cost, a
# pgbench script of the same shape as query_script's (a random query id, its
# vector fetched by a subquery) answered by a btree lookup of table BASE.
floor_script() {
    echo "\\set q random($(B -Atc "SELECT min(id) FROM $3"), $(B -Atc "SELECT max(id) FROM $3"))
SELECT id FROM $2 WHERE id = :q AND (SELECT v FROM $3 WHERE id = :q) IS NOT NULL LIMIT 10;" | as_pg tee "$1" >/dev/null
}

# query_script FILE BASE QUERIES OP: a pgbench script running one query of
# table QUERIES (a random id) against table BASE.
query_script() {
    echo "\\set q random($(B -Atc "SELECT min(id) FROM $3"), $(B -Atc "SELECT max(id) FROM $3"))
SELECT id FROM $2 ORDER BY v $4 (SELECT v FROM $3 WHERE id = :q) LIMIT 10;" | as_pg tee "$1" >/dev/null
}
