-- The drift index: build, ordered scans, insert, delete + vacuum, options,
-- opclasses, unlogged tables, REINDEX, and every input error.
SET client_min_messages = notice;
CREATE TABLE items (id int PRIMARY KEY, category int, v real[]);
INSERT INTO items
  SELECT i, i % 10, ARRAY[sin(i), cos(i), sin(i * 0.7), cos(i * 1.3)]::real[]
  FROM generate_series(1, 3000) i;
CREATE INDEX items_v_idx ON items USING drift (v) WITH (lists = 20);
SELECT dimension, metric, lists, trained, live_entries, dead_entries, l0_entries,
       min_bucket_size > 0 AS buckets_filled, max_bucket_size < 3000 AS buckets_split
  FROM drift_index_stats('items_v_idx');

SELECT * FROM drift_verify('items_v_idx');

-- the planner uses the index for ORDER BY ... LIMIT, and only then
EXPLAIN (COSTS OFF) SELECT id FROM items ORDER BY v <-> '{0,1,0,1}' LIMIT 5;
EXPLAIN (COSTS OFF) SELECT id FROM items WHERE v = '{0,1,0,1}';
EXPLAIN (COSTS OFF) SELECT count(*) FROM items;

-- with every bucket probed the index returns exactly what a seq scan does
SET drift.probes = 20;
CREATE TEMP TABLE exact AS
  SELECT id, row_number() OVER (ORDER BY v <-> '{0.5,0.5,0.5,0.5}', id) AS rk
  FROM items ORDER BY v <-> '{0.5,0.5,0.5,0.5}', id LIMIT 10;
SELECT array_agg(id ORDER BY d, id) = (SELECT array_agg(id ORDER BY rk) FROM exact) AS same_as_exact
  FROM (SELECT id, v <-> '{0.5,0.5,0.5,0.5}' AS d FROM items ORDER BY v <-> '{0.5,0.5,0.5,0.5}' LIMIT 10) s;
-- rows come back in ascending exact distance
SELECT bool_and(d >= prev) AS ordered FROM (
  SELECT d, lag(d, 1, 0::float8) OVER () AS prev FROM (
    SELECT v <-> '{0.2,-0.3,0.9,0.1}' AS d FROM items ORDER BY v <-> '{0.2,-0.3,0.9,0.1}' LIMIT 50) s) t;
-- no LIMIT: the scan returns every row once
SELECT count(*), count(DISTINCT id) FROM (SELECT id FROM items ORDER BY v <-> '{1,0,0,0}') s;
RESET drift.probes;
-- a first batch of one candidate: later batches (each twice the last) give
-- the same rows as one large batch
SET drift.probes = 4;
SET drift.rerank = 1;
SET enable_seqscan = off;
CREATE TEMP TABLE small_batches AS SELECT id FROM items ORDER BY v <-> '{0.3,0.1,-0.2,0.5}' LIMIT 50;
SET drift.rerank = 100000;
SELECT count(*) AS same_rows FROM small_batches
  JOIN (SELECT id FROM items ORDER BY v <-> '{0.3,0.1,-0.2,0.5}' LIMIT 50) s USING (id);
RESET drift.probes; RESET drift.rerank; RESET enable_seqscan;

-- a filter that rejects most rows still gets its LIMIT (the scan keeps probing)
SET drift.probes = 1;
SET drift.rerank = 5;
SET enable_seqscan = off;
EXPLAIN (COSTS OFF) SELECT id FROM items WHERE category = 3 AND id % 7 = 0 ORDER BY v <-> '{0,1,0,1}' LIMIT 10;
-- (in strict order, rows of later batches nearer than one returned are skipped;
-- relaxed order returns them, so the LIMIT is reached)
SELECT bool_and(d >= prev) AS strict_ordered FROM (
  SELECT d, lag(d, 1, 0::float8) OVER () AS prev FROM (
    SELECT v <-> '{0,1,0,1}' AS d FROM items WHERE category = 3 AND id % 7 = 0 ORDER BY v <-> '{0,1,0,1}' LIMIT 10) s) t;
SET drift.strict_order = off;
SELECT count(*) AS filtered FROM (SELECT id FROM items WHERE category = 3 AND id % 7 = 0 ORDER BY v <-> '{0,1,0,1}' LIMIT 10) s;
SET drift.max_probes = 1;
SELECT count(*) < 10 AS stops_at_max_probes FROM (SELECT id FROM items WHERE category = 3 AND id % 7 = 0 ORDER BY v <-> '{0,1,0,1}' LIMIT 10) s;
RESET drift.probes; RESET drift.rerank; RESET drift.max_probes; RESET drift.strict_order; RESET enable_seqscan;

-- inserts go to their nearest bucket and are found at once
INSERT INTO items VALUES (100001, 1, '{9,9,9,9}'), (100002, 2, '{-9,-9,-9,-9}');
SELECT id FROM items ORDER BY v <-> '{9,9,9,9.1}' LIMIT 1;
SELECT id FROM items ORDER BY v <-> '{-9,-9,-9,-9}' LIMIT 1;
-- NULL vectors are stored in the table but not indexed
INSERT INTO items VALUES (100003, 3, NULL);
SELECT live_entries FROM drift_index_stats('items_v_idx');
-- UPDATE and COPY go through the index too
UPDATE items SET v = '{7,7,7,7}' WHERE id = 100002;
SELECT id FROM items ORDER BY v <-> '{7,7,7,7}' LIMIT 1;
COPY items FROM STDIN;
100004	4	{5,-5,5,-5}
\.
SELECT id FROM items ORDER BY v <-> '{5,-5,5,-5}' LIMIT 1;

-- DELETE + VACUUM remove entries; VACUUM's maintenance compacts the emptied buckets
DELETE FROM items WHERE id > 1500 AND id <= 3000;
VACUUM items;
SELECT live_entries, dead_entries FROM drift_index_stats('items_v_idx');
SELECT count(*) FROM (SELECT id FROM items ORDER BY v <-> '{0,0,0,0}') s;
INSERT INTO items
  SELECT i, i % 10, ARRAY[sin(i), cos(i), sin(i * 0.7), cos(i * 1.3)]::real[]
  FROM generate_series(1501, 3000) i;
SELECT l0_entries FROM drift_index_stats('items_v_idx');
-- the next VACUUM flushes L0 and frees the chains compaction replaced, and
-- the same churn again reuses those pages instead of growing the index
VACUUM items;
SELECT l0_entries, pages AS pages_before FROM drift_index_stats('items_v_idx') \gset
DELETE FROM items WHERE id > 1500 AND id <= 3000;
VACUUM items;
INSERT INTO items
  SELECT i, i % 10, ARRAY[sin(i), cos(i), sin(i * 0.7), cos(i * 1.3)]::real[]
  FROM generate_series(1501, 3000) i;
VACUUM items;
SELECT pages <= :pages_before AS pages_reused, live_entries FROM drift_index_stats('items_v_idx');
SELECT * FROM drift_verify('items_v_idx');

-- bad input on insert and on query
INSERT INTO items VALUES (200001, 0, '{1,2,3}');
INSERT INTO items VALUES (200002, 0, '{1,2,NaN,4}');
INSERT INTO items VALUES (200003, 0, '{}');
INSERT INTO items VALUES (200004, 0, '{{1,2},{3,4}}');
INSERT INTO items VALUES (200005, 0, '{1,NULL,3,4}');
SELECT id FROM items ORDER BY v <-> '{1,2}' LIMIT 1;
SELECT id FROM items ORDER BY v <-> '{1,2,3,Infinity}' LIMIT 1;
SELECT count(*) FROM items WHERE id > 200000;

-- options: unknown, out of range, frozen at build
CREATE INDEX ON items USING drift (v) WITH (nlist = 10);
CREATE INDEX ON items USING drift (v) WITH (lists = -1);
CREATE INDEX ON items USING drift (v) WITH (lists = 100000);
CREATE INDEX ON items USING drift (v) WITH (clip_percentile = 50);
-- the opclass must match the column type
CREATE TABLE ints (a int[]);
CREATE INDEX ON ints USING drift (a);
CREATE INDEX ON ints USING drift (a drift_l2_ops);
-- the dimension limit
CREATE TABLE wide (v real[]);
INSERT INTO wide SELECT array_agg(1::real) FROM generate_series(1, 2001);
CREATE INDEX ON wide USING drift (v);
-- half precision storage takes up to 4000 dimensions, and refuses values
-- half floats cannot hold
CREATE INDEX wide_half ON wide USING drift (v) WITH (precision = half);
SELECT dimension, live_entries FROM drift_index_stats('wide_half');
INSERT INTO wide SELECT array_agg(70000::real) FROM generate_series(1, 2001);
INSERT INTO wide SELECT array_agg(1::real) FROM generate_series(1, 4001);
CREATE INDEX ON wide USING drift (v) WITH (precision = double);
DROP TABLE wide;
-- a build with hundreds of directory pages (two 1000-d centroids per page)
CREATE TABLE wide2 (id int, v real[]);
INSERT INTO wide2 SELECT i, (SELECT array_agg(sin(i * j)::real) FROM generate_series(1, 1000) j) FROM generate_series(1, 600) i;
CREATE INDEX wide2_idx ON wide2 USING drift (v) WITH (lists = 500);
SELECT dimension, lists, live_entries FROM drift_index_stats('wide2_idx');
SELECT count(*) AS problems FROM drift_verify('wide2_idx');
DROP TABLE wide2;
-- one column only
CREATE INDEX ON items USING drift (v, v);

-- inner product and cosine operator classes
CREATE INDEX items_ip_idx ON items USING drift (v drift_ip_ops) WITH (lists = 10);
CREATE INDEX items_cos_idx ON items USING drift (v drift_cosine_ops) WITH (lists = 10);
SELECT metric FROM drift_index_stats('items_ip_idx');
SELECT metric FROM drift_index_stats('items_cos_idx');
DROP INDEX items_v_idx;
SET drift.probes = 10;
EXPLAIN (COSTS OFF) SELECT id FROM items ORDER BY v <#> '{1,1,1,1}' LIMIT 3;
SELECT id FROM items ORDER BY v <#> '{1,1,1,1}' LIMIT 3;
EXPLAIN (COSTS OFF) SELECT id FROM items ORDER BY v <=> '{-1,-1,-1,-1}' LIMIT 3;
SELECT (SELECT array_agg(id) FROM (SELECT id FROM items ORDER BY v <=> '{-1,-1,-1,-1}' LIMIT 5) a) =
       (SELECT array_agg(id) FROM (SELECT id FROM items ORDER BY (v <=> '{-1,-1,-1,-1}') + 0 LIMIT 5) b) AS cosine_exact;
RESET drift.probes;

-- an index built on no rows: rows go to L0 and are searched exactly
CREATE TABLE fresh (id int, v real[]);
CREATE INDEX fresh_idx ON fresh USING drift (v);
SELECT dimension, trained, live_entries FROM drift_index_stats('fresh_idx');
SELECT id FROM fresh ORDER BY v <-> '{1,2,3}' LIMIT 1;
INSERT INTO fresh SELECT i, ARRAY[i, i, i]::real[] FROM generate_series(1, 500) i;
INSERT INTO fresh VALUES (0, '{1,2}');
SELECT dimension, trained, l0_entries FROM drift_index_stats('fresh_idx');
SELECT id FROM fresh ORDER BY v <-> '{250.2,250.2,250.2}' LIMIT 3;
DELETE FROM fresh WHERE id <= 250;
VACUUM fresh;
SELECT l0_entries FROM drift_index_stats('fresh_idx');
SELECT * FROM drift_verify('fresh_idx');
-- REINDEX trains it; REINDEX CONCURRENTLY too
REINDEX INDEX fresh_idx;
SELECT dimension, trained, live_entries, l0_entries FROM drift_index_stats('fresh_idx');
REINDEX INDEX CONCURRENTLY fresh_idx;
SELECT trained, live_entries FROM drift_index_stats('fresh_idx');
SELECT id FROM fresh ORDER BY v <-> '{300,300,300}' LIMIT 3;
CREATE INDEX CONCURRENTLY fresh_idx2 ON fresh USING drift (v);
SELECT live_entries FROM drift_index_stats('fresh_idx2');

-- unlogged tables (their index has an init fork)
CREATE UNLOGGED TABLE scratch (id int, v real[]);
INSERT INTO scratch SELECT i, ARRAY[i, i * 2]::real[] FROM generate_series(1, 200) i;
CREATE INDEX scratch_idx ON scratch USING drift (v);
SET enable_seqscan = off;
EXPLAIN (COSTS OFF) SELECT id FROM scratch ORDER BY v <-> '{50.2,100.3}' LIMIT 2;
SELECT id FROM scratch ORDER BY v <-> '{50.2,100.3}' LIMIT 2;
RESET enable_seqscan;
SELECT count(*) > 0 AS has_init_fork FROM pg_ls_dir('base/' || (SELECT oid FROM pg_database WHERE datname = current_database()))
  f WHERE f = (SELECT relfilenode::text || '_init' FROM pg_class WHERE relname = 'scratch_idx');

SELECT * FROM drift_verify('scratch_idx');

-- drift_index_stats and drift_verify only take drift indexes
SELECT * FROM drift_index_stats('items');
SELECT * FROM drift_verify('items_pkey');
SELECT * FROM drift_index_stats('items_pkey');

-- drift_evaluate_recall: one query's recall against the exact answer
-- over the index's rows (every row is found with every bucket probed)
SET drift.probes = 1000;
SELECT recall, buckets_probed = buckets AS all_probed, estimated_recall
  FROM drift_evaluate_recall('scratch_idx', '{50.2,100.3}'::real[], 5);
RESET drift.probes;
SELECT recall FROM drift_evaluate_recall('scratch_idx', NULL::real[]);
-- bad input: another type, another dimension, k out of range, not a drift index
SELECT * FROM drift_evaluate_recall('scratch_idx', '{50,100}'::int[]);
SELECT * FROM drift_evaluate_recall('scratch_idx', '{1,2,3}'::real[]);
SELECT * FROM drift_evaluate_recall('scratch_idx', '{1,NaN}'::real[]);
SELECT * FROM drift_evaluate_recall('scratch_idx', '{1,2}'::real[], 0);
SELECT * FROM drift_evaluate_recall('items_pkey', '{1,2}'::real[]);
-- settings: the recall target and the routing terms are bounded, the
-- sampling rate is for superusers
SET drift.target_recall = 1.5;
SET drift.lambda = -1;
SET drift.tau = -1;
SET drift.max_scan_tuples = -2;
SET drift.scan_mem_multiplier = 0.5;

-- a build keeps the rows of its first pass when they fit a quarter of
-- maintenance_work_mem, else reads the table again: both give one index
CREATE TABLE two_pass AS
  SELECT i AS id, ARRAY(SELECT ((i * 7919 + j * 104729) % 1000) / 100.0 FROM generate_series(1, 32) j)::real[] AS v
  FROM generate_series(1, 3000) i;
SET maintenance_work_mem = '64MB';
CREATE INDEX two_pass_kept ON two_pass USING drift (v);
SET maintenance_work_mem = '1MB';
CREATE INDEX two_pass_read ON two_pass USING drift (v);
RESET maintenance_work_mem;
SELECT a.lists = b.lists AS same_lists, a.live_entries = b.live_entries AS same_rows,
       a.min_bucket_size = b.min_bucket_size AND a.max_bucket_size = b.max_bucket_size AS same_buckets
  FROM drift_index_stats('two_pass_kept') a, drift_index_stats('two_pass_read') b;
SELECT * FROM drift_verify('two_pass_read');
DROP TABLE two_pass;
