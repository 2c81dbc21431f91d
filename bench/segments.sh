#!/usr/bin/env bash
# .drift segments: for each data set, build a drift index, export it
# (drift_export_segment), verify the file outside PostgreSQL
# (drift-segment verify), import its rows into a new table
# (INSERT ... SELECT FROM drift_segment_rows), and build an index on them
# from the segment's centroids (WITH (segment = ...)) beside one trained on
# them; prints a markdown table of speeds (rows/s, and MB/s of the raw
# float vectors), the file's size against the raw floats and the index,
# how the float columns were coded (ALP, ALP_RD, raw), and recall@10 at
# drift.probes = 10 of the index from the segment and the trained one.
#
#   bench/segments.sh [SETS]    SETS: any of sift glove mnist gen:N:DIM
#                               (default "sift glove mnist gen:100000:768 gen:1000000:128")
#
# Environment: QUERIES (queries of generated sets, default 50).
set -euo pipefail
cd "$(dirname "$0")/.."
make -s tools build/drift-segment
source scripts/cluster.sh
source bench/common.sh

SETS=${1:-sift glove mnist gen:100000:768 gen:1000000:128}
NQ=${QUERIES:-50}
bench_start segments 55453
as_pg mkdir -p "$WORK/seg"

# load SET: tables base, queries (id int, v real[]) and the operator for SET.
load() {
    B -c "DROP TABLE IF EXISTS base, queries, truth, imported, trained CASCADE"
    B -c "CREATE TABLE base (id int PRIMARY KEY, v real[]); CREATE TABLE queries (id int PRIMARY KEY, v real[])"
    local d=$DRIFT_DATA
    case $1 in
        sift) B -c "\\copy base FROM PROGRAM '$DRIFT_ROOT/build/vecdata fvecs $d/siftsmall/siftsmall_base.fvecs'" \
                -c "\\copy queries FROM PROGRAM '$DRIFT_ROOT/build/vecdata fvecs $d/siftsmall/siftsmall_query.fvecs'"
              OP='<->' OPCLASS='' ;;
        glove) B -c "\\copy base FROM PROGRAM '$DRIFT_ROOT/build/vecdata fvecs $d/glove50/glove50_base.fvecs'" \
                 -c "\\copy queries FROM PROGRAM '$DRIFT_ROOT/build/vecdata fvecs $d/glove50/glove50_query.fvecs'"
               OP='<=>' OPCLASS='drift_cosine_ops' ;;
        mnist) B -c "\\copy base FROM PROGRAM '$DRIFT_ROOT/build/vecdata fvecs $d/mnist/mnist_t10k_base9000.fvecs'" \
                 -c "\\copy queries FROM PROGRAM '$DRIFT_ROOT/build/vecdata fvecs $d/mnist/mnist_t10k_query1000.fvecs'"
               OP='<->' OPCLASS='' ;;
        gen:*) IFS=: read -r _ n dim <<< "$1"
               B -c "\\copy base FROM PROGRAM '$DRIFT_ROOT/build/vecdata gen $n $dim 256 7'" \
                 -c "\\copy queries FROM PROGRAM '$DRIFT_ROOT/build/vecdata gen $NQ $dim 256 7 0 $((n * 10))'"
               OP='<->' OPCLASS='' ;;
    esac
    B -c "DELETE FROM queries WHERE id >= (SELECT min(id) FROM queries) + $NQ" -c "VACUUM ANALYZE base"
    B -c "SET enable_indexscan = off; SET max_parallel_workers_per_gather = 2;
          CREATE TABLE truth AS SELECT q.id, ARRAY(SELECT b.id FROM base b ORDER BY b.v $OP q.v LIMIT 10) AS ids FROM queries q"
}

# timed SQL: runs SQL, prints its wall-clock seconds.
timed() {
    local t0; t0=$(now)
    B -q -c "$1" >/dev/null
    printf '%.2f' "$(echo "$(now) - $t0" | bc -l)"
}

# recall10 TABLE: recall@10 of TABLE's drift index at probes 10.
recall10() { B -Atc "SET drift.probes = 10; SET enable_seqscan = off; $(recall_sql "$1" queries truth "$OP" 3)"; }

mb() { printf '%.1f' "$(echo "$1 / 1048576" | bc -l)"; }
rate() { printf '%.0f' "$(echo "$1 / $2" | bc -l)"; }

rows_out=()
for set in $SETS; do
    echo "# $set: loading" >&2
    load "$set"
    build=$(timed "CREATE INDEX base_idx ON base USING drift (v $OPCLASS)")
    seg="$WORK/seg/$set.drift"
    export_s=$(timed "SELECT drift_export_segment('base_idx', '$seg')")
    IFS='|' read -r rows dim buckets codes file cold raw ratio alp alprd rawc ok <<< "$(B -Atc "SELECT rows, dimension, buckets, codes,
        file_bytes, cold_bytes, raw_vector_bytes, round(compression_ratio::numeric, 2), alp_columns, alp_rd_columns, raw_columns, checksums_ok
        FROM drift_segment_info('$seg')")"
    index_bytes=$(B -Atc "SELECT pg_relation_size('base_idx')")
    t0=$(now); as_pg "$DRIFT_ROOT/build/drift-segment" verify "$seg" >/dev/null; verify_s=$(printf '%.2f' "$(echo "$(now) - $t0" | bc -l)")
    import_s=$(timed "CREATE TABLE imported AS SELECT id::int, embedding AS v FROM drift_segment_rows('$seg')")
    B -q -c "ALTER TABLE imported ADD PRIMARY KEY (id)" -c "CREATE TABLE trained AS SELECT * FROM imported" -c "VACUUM ANALYZE imported, trained"
    from_seg=$(timed "CREATE INDEX ON imported USING drift (v $OPCLASS) WITH (segment = '$seg')")
    trained_s=$(timed "CREATE INDEX ON trained USING drift (v $OPCLASS) WITH (lists = $buckets)")
    r_seg=$(recall10 imported); r_trained=$(recall10 trained); r_orig=$(recall10 base)
    alp_share=$(printf '%.0f%% / %.0f%% / %.0f%%' "$(echo "100 * $alp / ($alp + $alprd + $rawc)" | bc -l)" \
        "$(echo "100 * $alprd / ($alp + $alprd + $rawc)" | bc -l)" "$(echo "100 * $rawc / ($alp + $alprd + $rawc)" | bc -l)")
    rows_out+=("| $set ($rows × $dim, $codes, $buckets buckets) | $(rate "$rows" "$export_s") rows/s, $(mb "$(rate "$raw" "$export_s")") MB/s ($export_s s) | $(mb "$(rate "$raw" "$verify_s")") MB/s ($verify_s s) | $(rate "$rows" "$import_s") rows/s, $(mb "$(rate "$raw" "$import_s")") MB/s ($import_s s) | $(mb "$file") MB: $(printf '%.2f' "$(echo "$file / $raw" | bc -l)")× raw, $(printf '%.2f' "$(echo "$file / $index_bytes" | bc -l)")× index ($(mb "$index_bytes") MB) | ${ratio}× ($alp_share) | $from_seg s vs $trained_s s (build $build s) | $r_seg / $r_trained / $r_orig | $ok |")
    echo "${rows_out[-1]}" >&2
done

echo
echo "Segments: export, verify, import, and an index from a segment's centroids (one run, $(nproc) cores)."
echo "MB/s are of the raw float vectors (rows × dimension × 4 bytes). Vectors compression: raw floats over the cold"
echo "region's bytes, then the share of column vectors coded ALP / ALP_RD / raw. Recall@10 at drift.probes = 10"
echo "on the first $NQ queries of each set: index from the segment / trained on the"
echo "same rows with as many buckets / the exported index."
echo
echo "| data | export | drift-segment verify | import (drift_segment_rows) | file | vectors compression (ALP / ALP_RD / raw) | index from segment vs trained | recall@10 | checksums |"
echo "|---|---|---|---|---|---|---|---|---|"
printf '%s\n' "${rows_out[@]}"
