#!/usr/bin/env bash
# SQL-level ANN benchmark on a throwaway cluster: build time, index size,
# insert rate into the indexed table (vs the same table with no index), and
# recall@10 + QPS (one pgbench client, and two) for a sweep of search
# settings, beside a btree lookup's (the floor). Runs drift on a real[]
# column always; with pgvector installed (scripts/deps.sh installs it),
# drift, pgvector's hnsw and pgvector's ivfflat one after another on the
# same vector column of one table (each index built, measured, its inserted
# rows deleted again, dropped), so the cost of each column type shows too.
#
#   bench/ann.sh sift            ../shared/data/siftsmall (10k x 128, L2)
#   bench/ann.sh glove           ../shared/data/glove50 (cosine)
#   bench/ann.sh mnist           ../shared/data/mnist (9,000 x 784, L2)
#   bench/ann.sh gen N DIM       N clustered rows of DIM dimensions
#
# Environment: QUERIES (generated data, default 200), SECONDS_PER_POINT (each
# of the three QPS runs per setting, best kept; default 3), INSERT_ROWS
# (default 10% of N), CODES (the drift indexes measured on the vector
# column: a code kind, with ":half" for precision = half and ":heap" for
# rerank = heap, e.g. "rabitq:heap:half"; default "sq8 rabitq rabitq:half
# rabitq:heap"), HNSW=0 (no hnsw: its build is the slowest by far),
# STORAGE (of the vector column: pgvector's default external, or main to
# keep vectors in the row).
set -euo pipefail
cd "$(dirname "$0")/.."
make -s tools
source scripts/cluster.sh
source bench/common.sh

DATA=${1:-sift}
QUERIES=${QUERIES:-200}
SECS=${SECONDS_PER_POINT:-3}
bench_start bench 55450

op="<->"; dops=""; vops="vector_l2_ops"; dvops=""
case "$DATA" in
    sift)
        load_vectors bench base fvecs "$DRIFT_DATA/siftsmall/siftsmall_base.fvecs"
        load_vectors bench queries fvecs "$DRIFT_DATA/siftsmall/siftsmall_query.fvecs"
        label="SIFT10K (10,000 x 128, L2)" ;;
    glove)
        load_vectors bench base fvecs "$DRIFT_DATA/glove50/glove50_base.fvecs"
        load_vectors bench queries fvecs "$DRIFT_DATA/glove50/glove50_query.fvecs"
        op="<=>"; dops="drift_cosine_ops"; vops="vector_cosine_ops"; dvops="drift_vector_cosine_ops"
        label="GloVe-50 (4,545 x 50, cosine)" ;;
    mnist)
        load_vectors bench base fvecs "$DRIFT_DATA/mnist/mnist_t10k_base9000.fvecs"
        load_vectors bench queries fvecs "$DRIFT_DATA/mnist/mnist_t10k_query1000.fvecs"
        label="MNIST (9,000 x 784, L2)" ;;
    gen)
        N=${2:?rows}; DIM=${3:?dim}
        for t in base queries extra; do B -c "CREATE TABLE $t (id int PRIMARY KEY, v real[])"; done
        B -c "\\copy base FROM PROGRAM '$DRIFT_ROOT/build/vecdata gen $N $DIM 256 7 0 0'"
        B -c "\\copy queries FROM PROGRAM '$DRIFT_ROOT/build/vecdata gen $QUERIES $DIM 256 7 0 0' WHERE false"
        B -c "\\copy queries FROM PROGRAM '$DRIFT_ROOT/build/vecdata gen $QUERIES $DIM 256 7 0 $((N * 10))'"
        B -c "UPDATE queries SET id = id - $((N * 10))"
        label="generated ($N x $DIM, 256 clusters, L2)" ;;
    *) echo "unknown data set $DATA" >&2; exit 2 ;;
esac
N=$(B -Atc "SELECT count(*) FROM base")
DIM=$(B -Atc "SELECT array_length(v, 1) FROM base LIMIT 1")
NQ=$(B -Atc "SELECT count(*) FROM queries")
INSERT_ROWS=${INSERT_ROWS:-$((N / 10))}
# Rows to insert after the build: generated ones (same distribution) or a
# copy of the base rows with fresh ids.
if [ "$DATA" = gen ]; then
    B -c "\\copy extra FROM PROGRAM '$DRIFT_ROOT/build/vecdata gen $INSERT_ROWS $DIM 256 7 0 $((N * 20))'"
else
    B -c "CREATE TABLE extra AS SELECT id + 10000000 AS id, v FROM base ORDER BY id LIMIT $INSERT_ROWS"
fi

echo "# truth: exact top-10 of $NQ queries over $N rows" >&2
B -c "SET enable_indexscan = off; CREATE TABLE truth AS
      SELECT q.id, ARRAY(SELECT b.id FROM base b ORDER BY b.v $op q.v LIMIT 10) AS ids FROM queries q"

secs() { echo "$2 - $1" | bc -l; }
results=()

# bench_method NAME TABLE CREATE_INDEX_SQL GUC VALUES...: the index
# CREATE_INDEX_SQL makes must be named bench_idx; afterwards it is dropped
# and the rows inserted into TABLE deleted, so the next method starts from
# the same table.
bench_method() {
    local name=$1 table=$2 create=$3 guc=$4
    shift 4
    local t0 t1 build size
    t0=$(now); B -c "$create"; t1=$(now)
    build=$(secs "$t0" "$t1")
    B -c "VACUUM ANALYZE $table"  # settle hint bits and statistics before timing queries
    size=$(B -Atc "SELECT pg_size_pretty(pg_relation_size('bench_idx'))")
    echo "# $name: built in ${build}s, $size" >&2
    local qv="queries"
    [ "$table" != base ] && qv="${table}_q"
    query_script "$WORK/q_$table.sql" "$table" "$qv" "$op"
    for val in "$@"; do
        local recall qps qps2
        recall=$(B -Atc "SET $guc = $val; SET enable_seqscan = off; $(recall_sql "$table" "$qv" truth "$op" 3)")
        qps=$(best_qps "$WORK/q_$table.sql" "-c $guc=$val -c enable_seqscan=off")
        qps2=$(best_qps "$WORK/q_$table.sql" "-c $guc=$val -c enable_seqscan=off" 2)
        results+=("| $name | $guc=$val | $recall | $qps | $qps2 |")
        echo "# $name $guc=$val recall@10=$recall qps=$qps qps2=$qps2" >&2
    done
    t0=$(now); B -c "INSERT INTO $table SELECT * FROM ${table}_extra"; t1=$(now)
    local after
    after=$(B -Atc "SELECT pg_size_pretty(pg_relation_size('bench_idx'))")
    inserts+=("| $name | $(printf '%.1f' "$build") | $size | $after | $(printf '%.0f' "$(echo "$INSERT_ROWS / $(secs "$t0" "$t1")" | bc -l)") |")
    B -c "DROP INDEX bench_idx" -c "DELETE FROM $table WHERE id IN (SELECT id FROM ${table}_extra)" -c "VACUUM $table"
}
inserts=()

# The floor of a query's fixed cost.
floor_script "$WORK/floor.sql" base queries
results+=("| btree lookup (the floor) | - | - | $(best_qps "$WORK/floor.sql" "") | $(best_qps "$WORK/floor.sql" "" 2) |")

# Baseline: insert rate with no index.
B -c "CREATE TABLE noidx AS SELECT * FROM base; CREATE TABLE noidx_extra AS SELECT * FROM extra"
t0=$(now); B -c "INSERT INTO noidx SELECT * FROM noidx_extra"; t1=$(now)
inserts+=("| no index | - | - | - | $(printf '%.0f' "$(echo "$INSERT_ROWS / $(secs "$t0" "$t1")" | bc -l)") |")

B -c "CREATE TABLE d AS SELECT * FROM base; CREATE TABLE d_q AS SELECT * FROM queries; CREATE TABLE d_extra AS SELECT * FROM extra"
bench_method "drift (real[])" d "CREATE INDEX bench_idx ON d USING drift (v $dops)" drift.probes 1 2 4 8 16 32
if [ "$HAVE_PGVECTOR" = 1 ]; then
    B -c "CREATE TABLE vec (id int, v vector($DIM)); ALTER TABLE vec ALTER COLUMN v SET STORAGE ${STORAGE:-external};
          INSERT INTO vec SELECT id, v::vector FROM base;
          CREATE TABLE vec_q AS SELECT id, v::vector($DIM) AS v FROM queries;
          CREATE TABLE vec_extra AS SELECT id, v::vector($DIM) AS v FROM extra"
    for variant in ${CODES:-sq8 rabitq rabitq:half rabitq:heap}; do
        opts="codes = ${variant%%:*}"
        for extra in $(echo "$variant" | tr ':' ' ' | cut -s -d' ' -f2-); do
            case "$extra" in
                half) opts="$opts, precision = half" ;;
                heap) opts="$opts, rerank = heap" ;;
                *) echo "unknown variant $variant" >&2; exit 2 ;;
            esac
        done
        bench_method "drift (vector, $variant)" vec "CREATE INDEX bench_idx ON vec USING drift (v $dvops) WITH ($opts)" \
            drift.probes 1 2 4 8 16 32
    done
    [ "${HNSW:-1}" = 1 ] && bench_method "pgvector hnsw" vec "CREATE INDEX bench_idx ON vec USING hnsw (v $vops)" hnsw.ef_search 10 20 40 80 160
    lists=$((N / 1000)); [ $lists -lt 10 ] && lists=10
    bench_method "pgvector ivfflat" vec "CREATE INDEX bench_idx ON vec USING ivfflat (v $vops) WITH (lists = $lists)" ivfflat.probes 1 2 4 8 16 32
fi

echo
echo "### $label, $NQ queries, $(nproc) cores"
echo
echo "| index | build (s) | size after build | size after inserts | inserts/s ($INSERT_ROWS rows into the indexed table) |"
echo "|---|---|---|---|---|"
printf '%s\n' "${inserts[@]}"
echo
echo "| index | setting | recall@10 | QPS (1 client) | QPS (2 clients) |"
echo "|---|---|---|---|---|"
printf '%s\n' "${results[@]}"
