#!/usr/bin/env bash
# A long snapshot under a stream of inserts: an index on N rows (DIM-d),
# the janitor running, rows streaming in at RATE rows/s and queries at 20/s
# while a REPEATABLE READ transaction stays open for HOLD seconds, then
# AFTER more seconds of the same stream without it, then VACUUM. Every
# SAMPLE seconds it reports L0's rows, flushes so far, retired chains, the
# index size, the rows written and the median and 95th-percentile query
# latency of that interval.
#
#   bench/snapshot.sh N DIM      e.g. bench/snapshot.sh 100000 128
#
# Environment: RATE (rows/s, default 600), HOLD (default 300), AFTER
# (default 60), SAMPLE (default 30).
set -euo pipefail
cd "$(dirname "$0")/.."
make -s tools
source scripts/cluster.sh
source bench/common.sh

N=${1:?rows}; DIM=${2:?dim}
RATE=${RATE:-600}; HOLD=${HOLD:-300}; AFTER=${AFTER:-60}; SAMPLE=${SAMPLE:-30}
bench_start snapbench 55452 "shared_preload_libraries = 'drift'"

gen() { echo "$DRIFT_ROOT/build/vecdata gen $1 $DIM 256 7 $2 $3"; }
B -c "CREATE TABLE t (id bigint PRIMARY KEY, v real[])" -c "CREATE TABLE src (id bigint PRIMARY KEY, v real[])" \
  -c "CREATE TABLE q (id int PRIMARY KEY, v real[])"
B -c "\\copy t FROM PROGRAM '$(gen "$N" 0 0)'"
# Rows to stream: enough for the whole run, drifting (shift 4).
total=$(( RATE * (HOLD + AFTER + 30) ))
B -c "\\copy src FROM PROGRAM '$(gen "$total" 4 "$N")'"
B -c "\\copy q FROM PROGRAM '$(gen 200 2 $(( N * 10 )))'"
B -c "CREATE INDEX t_idx ON t USING drift (v)" -c "VACUUM ANALYZE t"
l0_max=$(B -Atc "SHOW drift.l0_max_rows")

# The stream: 10 rows per transaction at RATE / 10 transactions per second,
# each taking the next ids of src.
B -c "CREATE SEQUENCE batch"
cat <<SQL | as_pg tee "$WORK/ins.sql" >/dev/null
WITH b AS (SELECT nextval('batch') - 1 AS k) INSERT INTO t SELECT s.* FROM src s, b WHERE s.id >= $N + b.k * 10 AND s.id < $N + b.k * 10 + 10;
SQL
cat <<SQL | as_pg tee "$WORK/q.sql" >/dev/null
\\set q random(0, 199)
SELECT id FROM t ORDER BY v <-> (SELECT v FROM q WHERE id = :q) LIMIT 10;
SQL
run_for=$(( HOLD + AFTER ))
as_pg pgbench -n -c 1 -R $(( RATE / 10 )) -T "$run_for" -f "$WORK/ins.sql" -h "$PGHOST" -p "$PGPORT" -U postgres bench \
    >"$WORK/ins.log" 2>&1 &
INS=$!
# Query latencies, one line per query (pgbench -l), in $WORK/qlog.*
as_pg bash -c "cd '$WORK' && pgbench -n -c 1 -R 20 -T '$run_for' -l --log-prefix=qlog -f q.sql -h '$PGHOST' -p '$PGPORT' -U postgres bench" \
    >"$WORK/q.log" 2>&1 &
QRY=$!
# The long snapshot: taken now, held for HOLD seconds.
B -c "BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT count(*) FROM t; SELECT pg_sleep($HOLD); COMMIT;" >/dev/null &
HOLDER=$!

start=$(date +%s)
# latency p50/p95 (ms) of queries that ended in [from, to) (epoch seconds)
latency() {
    cat "$WORK"/qlog.* 2>/dev/null | awk -v a="$1" -v b="$2" '$5 >= a && $5 < b { print $3 / 1000 }' | sort -n |
        awk '{ v[NR] = $1 } END { if (NR == 0) print "- | -"; else printf "%.2f | %.2f\n", v[int((NR + 1) / 2)], v[int(NR * 0.95 + 0.5)] }'
}
# (pgbench writes its log through a buffer: latencies are read at the end)
samples=() bounds=()
prev=$start
for ((t = SAMPLE; t <= run_for; t += SAMPLE)); do
    sleep $(( start + t - $(date +%s) ))
    now_s=$(date +%s)
    s=$(B -Atc "SELECT l0_entries || ' | ' || flushes || ' | ' || retired_chains || ' | ' || pg_size_pretty(pg_relation_size('t_idx')) FROM drift_index_stats('t_idx')")
    written=$(B -Atc "SELECT count(*) - $N FROM t")
    held=$([ "$t" -le "$HOLD" ] && echo held || echo ended)
    samples+=("| $t | $held | $written | $s |")
    bounds+=("$prev $now_s")
    prev=$now_s
done
wait $INS $QRY $HOLDER || true
grep -E "^(tps|latency average)" "$WORK/ins.log" | sed 's/^/# inserts: /' >&2
echo "| t (s) | snapshot | rows written | L0 rows | flushes | retired chains | index size | query p50 / p95 (ms) |"
echo "|---|---|---|---|---|---|---|---|"
for i in "${!samples[@]}"; do
    lat=$(latency ${bounds[$i]})
    echo "${samples[$i]} ${lat/ | / / } |"
done
B -c "VACUUM t" >/dev/null
sleep 10
s=$(B -Atc "SELECT l0_entries || ' | ' || flushes || ' | ' || retired_chains || ' | ' || pg_size_pretty(pg_relation_size('t_idx')) FROM drift_index_stats('t_idx')")
echo "| after VACUUM | | $(B -Atc "SELECT count(*) - $N FROM t") | $s | |"
B -c "CREATE INDEX t_fresh ON t USING drift (v)" >/dev/null
echo
echo "drift.l0_max_rows = $l0_max; a fresh build on the final rows: $(B -Atc "SELECT pg_size_pretty(pg_relation_size('t_fresh'))")."
