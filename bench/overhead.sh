#!/usr/bin/env bash
# Per-query cost of a drift scan on SIFT10K (../shared/data/siftsmall), in
# the server and end to end, beside a btree lookup of the same shape:
#   - in the server: a PL/pgSQL loop runs every query (its plan cached) and
#     reports queries per second; the 90th percentile of 100 loops is kept
#     (on a shared VM, noise only ever slows a loop);
#   - end to end: one pgbench client, best of three runs (bench/common.sh).
# With PROFILE=1 and perf installed, also a perf profile of the server loop
# at drift.probes = 8, summed by function (self and with callees) into
# WORK/profile.txt and printed.
#
#   bench/overhead.sh
set -euo pipefail
cd "$(dirname "$0")/.."
make -s tools
source scripts/cluster.sh
source bench/common.sh

SECS=${SECONDS_PER_POINT:-3}
bench_start overhead 55452
load_vectors bench base fvecs "$DRIFT_DATA/siftsmall/siftsmall_base.fvecs"
load_vectors bench queries fvecs "$DRIFT_DATA/siftsmall/siftsmall_query.fvecs"
load_vectors bench truth ivecs "$DRIFT_DATA/siftsmall/siftsmall_groundtruth.ivecs" 10
B -c "CREATE INDEX base_idx ON base USING drift (v)" -c "VACUUM ANALYZE base"
# loop(kind, reps): queries per second of `reps` passes over the queries,
# each a drift scan (kind 'drift') or a btree lookup of the query's id.
B -c "CREATE FUNCTION loop(kind text, reps int) RETURNS float8 LANGUAGE plpgsql AS \$\$
      DECLARE t0 timestamptz := clock_timestamp(); n int := 0; r record; qv real[]; qid int;
      BEGIN
        FOR i IN 1..reps LOOP
          FOR r IN SELECT id, v FROM queries ORDER BY id LOOP
            qv := r.v; qid := r.id;
            IF kind = 'drift' THEN PERFORM id FROM base ORDER BY v <-> qv LIMIT 10;
            ELSE PERFORM id FROM base WHERE id = qid LIMIT 10; END IF;
            n := n + 1;
          END LOOP;
        END LOOP;
        RETURN n / extract(epoch FROM clock_timestamp() - t0);
      END \$\$"
in_server() {  # in_server KIND [SET ...]: the 90th percentile of 100 loops
    B -Atc "${2:-SELECT 1}" -c "SELECT round(percentile_cont(0.9) WITHIN GROUP (ORDER BY x))
                                FROM (SELECT loop('$1', 1) x FROM generate_series(1, 100)) s" | tail -1
}
query_script "$WORK/q.sql" base queries "<->"
floor_script "$WORK/floor.sql" base queries

rows=("| btree lookup (the floor) | - | $(in_server btree) | $(best_qps "$WORK/floor.sql" "") |")
for p in 1 2 4 8 16; do
    recall=$(B -Atc "SET drift.probes = $p; $(recall_sql base queries truth "<->" 3)")
    rows+=("| drift, probes $p | $recall | $(in_server drift "SET drift.probes = $p") | $(best_qps "$WORK/q.sql" "-c drift.probes=$p") |")
done

if [ "${PROFILE:-0}" = 1 ] && command -v perf >/dev/null; then
    B -Atc "SET application_name = 'profiled'" -c "SET drift.probes = 8" -c "SELECT pg_sleep(1)" \
      -c "SELECT loop('drift', 100)" >/dev/null &
    sleep 0.5
    pid=$(B -Atc "SELECT pid FROM pg_stat_activity WHERE application_name = 'profiled'")
    perf record -g -p "$pid" -o "$WORK/perf.data" -- sleep 5 >/dev/null 2>&1 || true
    wait
    perf report -i "$WORK/perf.data" --children --sort symbol -g none 2>/dev/null | grep '%' | sed -n 1,60p \
        > "$WORK/profile.txt"
    cat "$WORK/profile.txt"
fi

echo
echo "### Per-query cost, SIFT10K (10,000 x 128, L2), $(nproc) cores"
echo
echo "| query | recall@10 | queries/s in the server (PL/pgSQL loop) | QPS end to end (1 pgbench client) |"
echo "|---|---|---|---|"
printf '%s\n' "${rows[@]}"
