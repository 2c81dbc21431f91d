#!/usr/bin/env bash
# The drift scenario: build an index on N rows of distribution A, insert N
# rows of a shifted distribution B, let maintenance run, then query A-like
# and B-like vectors. For each way of maintaining the index (the janitor,
# drift_maintain calls with the janitor off, none beyond inline flushes)
# it reports the insert rate (and the rate with no index), recall@10 and
# QPS at fixed settings before and after the drift, and the same after a
# fresh REINDEX, and the index size at every phase: after the build, right
# after the inserts, at its peak during maintenance (sampled every half
# second), once maintenance has settled, and after REINDEX. With pgvector
# installed, the column then becomes vector and drift (janitor), ivfflat
# and hnsw go through the same steps on it. With ROUNDS=n, the
# janitor's index (after its REINDEX) then goes through n more rounds of
# drift (insert N rows shifted further, delete the oldest N) with the same
# size report, against a fresh build on the same rows.
#
#   bench/drift.sh N DIM [SHIFT]     e.g. bench/drift.sh 100000 128 6
#
# Environment: QUERIES (per distribution, default 200), SECONDS_PER_POINT
# (each of the three QPS runs, best kept; default 3), PROBES (default 10),
# PGVECTOR=0 to skip pgvector even when it is installed, MAINTAINERS
# (default "janitor drift_maintain none"), ROUNDS (default 0), INSERT_BATCH
# (rows per transaction when rows are inserted; default: one statement),
# INDEX_OPTIONS (the drift index's WITH options, e.g. "rerank = heap").
set -euo pipefail
cd "$(dirname "$0")/.."
make -s tools
source scripts/cluster.sh
source bench/common.sh

N=${1:?rows}; DIM=${2:?dim}; SHIFT=${3:-6}
QUERIES=${QUERIES:-200}
SECS=${SECONDS_PER_POINT:-3}
PROBES=${PROBES:-10}
bench_start driftbench 55451 "shared_preload_libraries = 'drift'" "drift.janitor = off"

gen() { echo "$DRIFT_ROOT/build/vecdata gen $1 $DIM 256 7 $2 $3"; }
for t in a b qa qb; do B -c "CREATE TABLE $t (id int PRIMARY KEY, v real[])"; done
B -c "\\copy a FROM PROGRAM '$(gen "$N" 0 0)'"
B -c "\\copy b FROM PROGRAM '$(gen "$N" "$SHIFT" "$N")'"
B -c "\\copy qa FROM PROGRAM '$(gen "$QUERIES" 0 $((N * 10)))'"
B -c "\\copy qb FROM PROGRAM '$(gen "$QUERIES" "$SHIFT" $((N * 20)))'"
B -c "CREATE TABLE ab AS SELECT * FROM a UNION ALL SELECT * FROM b"
echo "# truth: exact top-10 over A and over A+B" >&2
B -c "SET enable_indexscan = off;
      CREATE TABLE truth_before AS SELECT q.id, ARRAY(SELECT x.id FROM a x ORDER BY x.v <-> q.v LIMIT 10) AS ids FROM qa q;
      CREATE TABLE truth_a AS SELECT q.id, ARRAY(SELECT x.id FROM ab x ORDER BY x.v <-> q.v LIMIT 10) AS ids FROM qa q;
      CREATE TABLE truth_b AS SELECT q.id, ARRAY(SELECT x.id FROM ab x ORDER BY x.v <-> q.v LIMIT 10) AS ids FROM qb q;"

rate() { printf '%.0f' "$(echo "$1 / ($3 - $2)" | bc -l)"; }

# recall_qps GUCS QTABLE TRUTH: "recall qps" of table t.
recall_qps() {
    local gucs=$1 q=$2 truth=$3 recall
    recall=$(B -Atc "$gucs SET enable_seqscan = off; $(recall_sql t "$q" "$truth" "<->" 3)")
    query_script "$WORK/q.sql" t "$q" "<->"
    echo "$recall $(best_qps "$WORK/q.sql" "-c enable_seqscan=off $(echo "$gucs" | sed -E 's/SET ([a-z_.]+) = ([^;]+);/-c \1=\2/g')")"
}

# Insert rate of B into a table with no index.
B -c "CREATE TABLE t AS SELECT * FROM a"
t0=$(now); B -c "INSERT INTO t SELECT * FROM b"; t1=$(now)
noindex=$(rate "$N" "$t0" "$t1")
B -c "DROP TABLE t"
echo "# no index: $noindex rows/s" >&2

# insert_from TABLE FIRST_ID: inserts TABLE's rows into t, in one
# statement, or with INSERT_BATCH set in transactions of that many rows
# (ids FIRST_ID on), as rows that stream in would arrive.
insert_from() {
    if [ -z "${INSERT_BATCH:-}" ]; then B -c "INSERT INTO t SELECT * FROM $1" >/dev/null; return; fi
    local lo
    for ((lo = $2; lo < $2 + N; lo += INSERT_BATCH)); do
        echo "INSERT INTO t SELECT * FROM $1 WHERE id >= $lo AND id < $((lo + INSERT_BATCH));"
    done | B -q >/dev/null
}

# Index size in MB.
mb() { printf '%.1f' "$(echo "$1 / 1048576" | bc -l)"; }
isize() { B -Atc "SELECT pg_relation_size('t_idx')"; }

# Samples the index size every half second while $WORK/sampling exists;
# the largest seen is in $WORK/peak.
sample_peak() {
    local max=0 s
    echo 0 >"$WORK/peak"
    while [ -e "$WORK/sampling" ]; do
        s=$(B -Atc "SELECT pg_relation_size('t_idx')" 2>/dev/null || echo 0)
        if [ "${s:-0}" -gt "$max" ]; then max=$s; echo "$max" >"$WORK/peak"; fi
        sleep 0.5
    done
}
start_sampling() { as_pg touch "$WORK/sampling"; sample_peak & SAMPLER=$!; }
stop_sampling() { rm -f "$WORK/sampling"; wait "$SAMPLER"; cat "$WORK/peak"; }

# settle MAINTAINER: until maintenance is done (the janitor idle: counters
# still and L0 flushed; drift_maintain: a pass with nothing to do).
settle() {
    case "$1" in
        janitor)
            # (three equal readings 2 s apart: the janitor may also be
            # waiting to give the end of the index back)
            local last="" cur same=0
            while [ "$same" -lt 2 ]; do
                sleep 2
                cur=$(B -Atc "SELECT l0_entries, flushes, splits, merges, compactions, retired_chains, pg_relation_size('t_idx') FROM drift_index_stats('t_idx')")
                if [ "$cur" = "$last" ] && [ "${cur%%|*}" = 0 ]; then same=$((same + 1)); else same=0; fi
                last=$cur
            done ;;
        drift_maintain)
            while [ "$(B -Atc "SELECT flushed_rows + splits + merges + compactions FROM drift_maintain('t_idx')")" != 0 ]; do :; done ;;
        *) ;;
    esac
}

# Size of a fresh build of index definition $1 on t's rows now.
fresh_size() {
    local s
    B -c "${1/t_idx/t_fresh}" >/dev/null
    s=$(B -Atc "SELECT pg_relation_size('t_fresh')")
    B -c "DROP INDEX t_fresh" >/dev/null
    echo "$s"
}

rows=() sizes=()
# scenario NAME CREATE_INDEX GUCS MAINTAIN
scenario() {
    local name=$1 create=$2 gucs=$3 maintain=$4 t0 t1 before after_a after_b fresh_a fresh_b ins mt0 mt1
    local s_build s_ins s_peak s_settled s_reindex
    B -c "DROP TABLE IF EXISTS t" -c "CREATE TABLE t AS SELECT * FROM a" -c "$create" -c "VACUUM ANALYZE t"
    s_build=$(isize)
    before=$(recall_qps "$gucs" qa truth_before)
    # The janitor, when it is the maintainer, works while the rows arrive.
    [ "$maintain" = janitor ] && B -c "ALTER SYSTEM SET drift.janitor = on" -c "SELECT pg_reload_conf()" >/dev/null
    start_sampling
    t0=$(now); insert_from b "$N"; t1=$(now)
    s_ins=$(isize)
    ins=$(rate "$N" "$t0" "$t1")
    mt0=$(now)
    settle "$maintain"
    mt1=$(now)
    # (VACUUM runs drift's maintenance, so the run without it only analyzes)
    if [ "$maintain" = none ]; then B -c "ANALYZE t"; else B -c "VACUUM ANALYZE t"; fi
    # (what VACUUM moved off the end is released and given back after it)
    [ "$maintain" != none ] && settle "$maintain"
    s_peak=$(stop_sampling)
    s_settled=$(isize)
    after_a=$(recall_qps "$gucs" qa truth_a)
    after_b=$(recall_qps "$gucs" qb truth_b)
    local stats=""
    [[ "$create" == *drift* ]] && stats=$(B -Atc "SELECT lists || ' lists, ' || splits || ' splits, ' || merges || ' merges, ' || quantizers_fitted || ' quantizers' FROM drift_index_stats('t_idx')")
    [ "$maintain" = janitor ] && B -c "ALTER SYSTEM SET drift.janitor = off" -c "SELECT pg_reload_conf()" >/dev/null
    B -c "REINDEX INDEX t_idx"
    s_reindex=$(isize)
    fresh_a=$(recall_qps "$gucs" qa truth_a)
    fresh_b=$(recall_qps "$gucs" qb truth_b)
    rows+=("| $name | $ins ($(( ins * 100 / noindex ))%) | $(printf '%.0f' "$(echo "$mt1 - $mt0" | bc -l)") s | ${before// / / } | ${after_a// / / } | ${after_b// / / } | ${fresh_a// / / } | ${fresh_b// / / } | $stats |")
    echo "# ${rows[-1]}" >&2
    sizes+=("| $name | $(mb "$s_build") | $(mb "$s_ins") | $(mb "$s_peak") ($(ratio "$s_peak" "$s_reindex")) | $(mb "$s_settled") ($(ratio "$s_settled" "$s_reindex")) | $(mb "$s_reindex") |")
    echo "# ${sizes[-1]}" >&2
    if [ "$maintain" = janitor ] && [ "${ROUNDS:-0}" -gt 0 ]; then rounds "$create"; fi
}

# ratio A B: A / B to two decimals, as "1.07x".
ratio() { printf '%.2fx' "$(echo "$1 / $2" | bc -l)"; }

# rounds CREATE: ROUNDS more rounds of drift on the janitor's index (from
# its REINDEX above): each inserts N rows shifted further and deletes the
# oldest N, settles, and reports the peak size against a fresh build on the
# rows the table held at the peak (before the delete) and the settled size
# against a fresh build on the rows left.
rounds() {
    local create=$1 r peak settled fresh fresh_peak
    B -c "ALTER SYSTEM SET drift.janitor = on" -c "SELECT pg_reload_conf()" >/dev/null
    for r in $(seq 1 "$ROUNDS"); do
        B -c "DROP TABLE IF EXISTS c" -c "CREATE TABLE c (id int PRIMARY KEY, v real[])" \
          -c "\\copy c FROM PROGRAM '$(gen "$N" $(( SHIFT * (r + 1) )) $(( N * (r + 1) )))'" >/dev/null
        B -c "DROP TABLE IF EXISTS p" -c "CREATE TABLE p AS SELECT * FROM t UNION ALL SELECT * FROM c" >/dev/null
        start_sampling
        insert_from c $(( N * (r + 1) ))
        B -c "DELETE FROM t WHERE id < $(( N * r ))" >/dev/null
        settle janitor
        B -c "VACUUM t" >/dev/null
        settle janitor
        peak=$(stop_sampling)
        settled=$(isize)
        fresh=$(fresh_size "$create")
        fresh_peak=$(fresh_size "${create/ON t /ON p }")
        sizes+=("| round $r (+$N shifted, -$N oldest) | | | $(mb "$peak") ($(ratio "$peak" "$fresh_peak")) | $(mb "$settled") ($(ratio "$settled" "$fresh")) | $(mb "$fresh_peak") at the peak, $(mb "$fresh") settled |")
        echo "# ${sizes[-1]}" >&2
    done
    B -c "ALTER SYSTEM SET drift.janitor = off" -c "SELECT pg_reload_conf()" >/dev/null
}

DRIFT_IDX="CREATE INDEX t_idx ON t USING drift (v)${INDEX_OPTIONS:+ WITH ($INDEX_OPTIONS)}"
for m in ${MAINTAINERS:-janitor drift_maintain none}; do
    case "$m" in
        janitor) scenario "drift, janitor" "$DRIFT_IDX" "SET drift.probes = $PROBES;" janitor ;;
        drift_maintain) scenario "drift, drift_maintain (janitor off)" "$DRIFT_IDX" "SET drift.probes = $PROBES;" drift_maintain ;;
        none) scenario "drift, no maintenance (inline flushes only)" "$DRIFT_IDX" "SET drift.probes = $PROBES;" none ;;
    esac
done
if [ "$HAVE_PGVECTOR" = 1 ] && [ "${PGVECTOR:-1}" != 0 ]; then
    B -c "ALTER TABLE a ALTER COLUMN v TYPE vector($DIM)" -c "ALTER TABLE b ALTER COLUMN v TYPE vector($DIM)" \
      -c "ALTER TABLE qa ALTER COLUMN v TYPE vector($DIM)" -c "ALTER TABLE qb ALTER COLUMN v TYPE vector($DIM)"
    scenario "drift on vector, janitor" "$DRIFT_IDX" "SET drift.probes = $PROBES;" janitor
    lists=$(printf '%.0f' "$(echo "sqrt($N)" | bc -l)")
    scenario "pgvector ivfflat (lists=$lists)" "CREATE INDEX t_idx ON t USING ivfflat (v vector_l2_ops) WITH (lists = $lists)" \
        "SET ivfflat.probes = $PROBES;" none
    scenario "pgvector hnsw (m=16, ef_construction=64)" "CREATE INDEX t_idx ON t USING hnsw (v vector_l2_ops)" \
        "SET hnsw.ef_search = 40;" none
fi

echo
echo "Drift scenario: $N rows of A ($DIM-d, 256 clusters), then $N rows of B (shift $SHIFT); $QUERIES queries each; probes=$PROBES."
echo "Insert rate with no index: $noindex rows/s. Cells are recall@10 / QPS (1 client, best of 3 x ${SECS}s)."
echo
echo "| index, maintenance | inserts/s of B (vs no index) | maintenance time | A queries before drift | A queries after | B queries after | A after REINDEX | B after REINDEX | index after maintenance |"
echo "|---|---|---|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
echo
echo "Index size (MB) at each phase; peak and settled also as a multiple of a fresh build on the same rows (REINDEX)."
echo
echo "| index, maintenance | after build | after inserts | peak during maintenance | settled | REINDEX |"
echo "|---|---|---|---|---|---|"
printf '%s\n' "${sizes[@]}"
