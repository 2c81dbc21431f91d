#!/usr/bin/env bash
# The drift scenario: build an index on N rows of distribution A, insert N
# rows of a shifted distribution B, let maintenance run, then query A-like
# and B-like vectors. For each way of maintaining the index (the janitor,
# drift_maintain calls with the janitor off, none beyond inline flushes)
# it reports the insert rate (and the rate with no index), recall@10 and
# QPS at fixed settings before and after the drift, and the same after a
# fresh REINDEX. With pgvector installed, ivfflat and hnsw go through the
# same steps.
#
#   bench/drift.sh N DIM [SHIFT]     e.g. bench/drift.sh 100000 128 6
#
# Environment: QUERIES (per distribution, default 200), SECONDS_PER_POINT
# (each of the three QPS runs, best kept; default 3), PROBES (default 10),
# PGVECTOR=0 to skip pgvector even when it is installed.
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
    recall=$(B -Atc "$gucs SET enable_seqscan = off;
        SELECT round(avg((SELECT count(*) FROM unnest(ARRAY(SELECT x.id FROM t x ORDER BY x.v <-> q.v LIMIT 10)) g
                           WHERE g = ANY (tr.ids)))::numeric / 10, 3)
          FROM $q q JOIN $truth tr USING (id)")
    echo "\\set q random($(B -Atc "SELECT min(id) FROM $q"), $(B -Atc "SELECT max(id) FROM $q"))
SELECT id FROM t ORDER BY v <-> (SELECT v FROM $q WHERE id = :q) LIMIT 10;" | as_pg tee "$WORK/q.sql" >/dev/null
    echo "$recall $(best_qps "$WORK/q.sql" "-c enable_seqscan=off $(echo "$gucs" | sed -E 's/SET ([a-z_.]+) = ([^;]+);/-c \1=\2/g')")"
}

# Insert rate of B into a table with no index.
B -c "CREATE TABLE t AS SELECT * FROM a"
t0=$(now); B -c "INSERT INTO t SELECT * FROM b"; t1=$(now)
noindex=$(rate "$N" "$t0" "$t1")
B -c "DROP TABLE t"
echo "# no index: $noindex rows/s" >&2

rows=()
# scenario NAME CREATE_INDEX GUCS MAINTAIN
scenario() {
    local name=$1 create=$2 gucs=$3 maintain=$4 t0 t1 before after_a after_b fresh_a fresh_b ins mt0 mt1
    B -c "DROP TABLE IF EXISTS t" -c "CREATE TABLE t AS SELECT * FROM a" -c "$create" -c "VACUUM ANALYZE t"
    before=$(recall_qps "$gucs" qa truth_before)
    # The janitor, when it is the maintainer, works while the rows arrive.
    [ "$maintain" = janitor ] && B -c "ALTER SYSTEM SET drift.janitor = on" -c "SELECT pg_reload_conf()" >/dev/null
    t0=$(now); B -c "INSERT INTO t SELECT * FROM b"; t1=$(now)
    ins=$(rate "$N" "$t0" "$t1")
    mt0=$(now)
    case "$maintain" in
        janitor)
            local last="" cur
            # Until the janitor is idle: counters still and L0 flushed (an
            # L0 no row reaches is flushed after drift.l0_idle_flush).
            while :; do
                sleep 2
                cur=$(B -Atc "SELECT l0_entries, flushes, splits, merges, compactions FROM drift_index_stats('t_idx')")
                [ "$cur" = "$last" ] && [ "${cur%%|*}" = 0 ] && break
                last=$cur
            done
            B -c "ALTER SYSTEM SET drift.janitor = off" -c "SELECT pg_reload_conf()" >/dev/null ;;
        drift_maintain)
            while [ "$(B -Atc "SELECT flushed_rows + splits + merges + compactions FROM drift_maintain('t_idx')")" != 0 ]; do :; done ;;
        *) ;;
    esac
    mt1=$(now)
    # (VACUUM runs drift's maintenance, so the run without it only analyzes)
    if [ "$maintain" = none ]; then B -c "ANALYZE t"; else B -c "VACUUM ANALYZE t"; fi
    after_a=$(recall_qps "$gucs" qa truth_a)
    after_b=$(recall_qps "$gucs" qb truth_b)
    local stats=""
    [[ "$create" == *drift* ]] && stats=$(B -Atc "SELECT lists || ' lists, ' || splits || ' splits, ' || merges || ' merges, ' || quantizers_fitted || ' quantizers' FROM drift_index_stats('t_idx')")
    B -c "REINDEX INDEX t_idx"
    fresh_a=$(recall_qps "$gucs" qa truth_a)
    fresh_b=$(recall_qps "$gucs" qb truth_b)
    rows+=("| $name | $ins ($(( ins * 100 / noindex ))%) | $(printf '%.0f' "$(echo "$mt1 - $mt0" | bc -l)") s | ${before// / / } | ${after_a// / / } | ${after_b// / / } | ${fresh_a// / / } | ${fresh_b// / / } | $stats |")
    echo "# ${rows[-1]}" >&2
}

DRIFT_IDX="CREATE INDEX t_idx ON t USING drift (v)"
scenario "drift, janitor" "$DRIFT_IDX" "SET drift.probes = $PROBES;" janitor
scenario "drift, drift_maintain (janitor off)" "$DRIFT_IDX" "SET drift.probes = $PROBES;" drift_maintain
scenario "drift, no maintenance (inline flushes only)" "$DRIFT_IDX" "SET drift.probes = $PROBES;" none
if [ "$HAVE_PGVECTOR" = 1 ] && [ "${PGVECTOR:-1}" != 0 ]; then
    B -c "ALTER TABLE a ALTER COLUMN v TYPE vector($DIM)" -c "ALTER TABLE b ALTER COLUMN v TYPE vector($DIM)" \
      -c "ALTER TABLE qa ALTER COLUMN v TYPE vector($DIM)" -c "ALTER TABLE qb ALTER COLUMN v TYPE vector($DIM)"
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
