#!/usr/bin/env bash
# The main job on a fresh machine: install dependencies, build and install
# drift, start a local PostgreSQL with drift loaded, load the SIFT10K demo
# vectors, create a drift index, and run nearest-neighbour queries, printing
# rows and recall@10 against exact search. The cluster is left running.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
make -s
make -s install
make -s tools
source scripts/cluster.sh

DIR=${DRIFT_DEMO_DIR:-/tmp/drift-demo}
PORT=${DRIFT_DEMO_PORT:-55439}
if [ -d "$DIR/data" ]; then cluster_stop "$DIR"; rm -rf "$DIR"; fi
mkdir -p "$DIR" && chmod 755 "$DIR"
[ "$(id -u)" = 0 ] && chown "$PG_USER" "$DIR"
cluster_start "$DIR" "$PORT"
dpsql -d postgres -c "CREATE DATABASE demo"
dpsql -d demo -c "CREATE EXTENSION drift"
SIFT=$DRIFT_DATA/siftsmall
load_vectors demo items fvecs "$SIFT/siftsmall_base.fvecs"
load_vectors demo queries fvecs "$SIFT/siftsmall_query.fvecs"
load_vectors demo truth ivecs "$SIFT/siftsmall_groundtruth.ivecs" 10

dpsql -d demo <<'SQL'
\timing on
CREATE INDEX items_embedding_idx ON items USING drift (v) WITH (lists = 100);
\timing off
SELECT dimension, metric, lists, live_entries, pages, size_bytes FROM drift_index_stats('items_embedding_idx');
\echo 'The 5 nearest neighbours of query 0:'
EXPLAIN (COSTS OFF) SELECT id FROM items ORDER BY v <-> (SELECT v FROM queries WHERE id = 0) LIMIT 5;
SELECT id, round((v <-> (SELECT v FROM queries WHERE id = 0))::numeric, 2) AS distance
  FROM items ORDER BY v <-> (SELECT v FROM queries WHERE id = 0) LIMIT 5;
\echo 'recall@10 over the 100 queries against exact search:'
SET drift.probes = 10;
SELECT round(avg(hits) / 10.0, 3) AS "recall@10 (probes=10)"
  FROM (SELECT (SELECT count(*) FROM unnest(ARRAY(SELECT i.id FROM items i ORDER BY i.v <-> q.v LIMIT 10)) g
                 WHERE g = ANY (t.ids)) AS hits
          FROM queries q JOIN truth t USING (id)) s;
SQL
echo
echo "drift demo is running: psql -h $DIR -p $PORT -U postgres demo"
echo "stop it with: runuser -u $PG_USER -- $PG_BIN/pg_ctl -D $DIR/data stop"
