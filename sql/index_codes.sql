-- What buckets keep: the codes option and its default from the width;
-- RaBitQ indexes (each metric) answer exactly with every bucket probed,
-- after build, inserts, maintenance (flush, split, seeding buckets for rows
-- far from every bucket) and VACUUM, and drift_verify finds them sound;
-- then indexes that keep no vectors and re-rank from the table.
SET client_min_messages = notice;
CREATE FUNCTION vec(i int, d int, shift real DEFAULT 0) RETURNS real[] LANGUAGE sql IMMUTABLE AS
  $$ SELECT array_agg((sin(i * 0.37 + j * 1.7 + (i % 11) * j) + shift)::real ORDER BY j) FROM generate_series(1, d) j $$;
-- The ids of the k rows nearest q through the index (every bucket probed), and by exact search.
CREATE FUNCTION through_index(tbl text, op text, q real[], k int) RETURNS int[] LANGUAGE plpgsql AS $$
DECLARE r int[];
BEGIN
  SET LOCAL enable_seqscan = off; SET LOCAL drift.probes = 32768;
  EXECUTE format('SELECT array_agg(id) FROM (SELECT id FROM %I ORDER BY v %s $1 LIMIT $2) s', tbl, op) INTO r USING q, k;
  RETURN r;
END $$;
CREATE FUNCTION exact(tbl text, op text, q real[], k int) RETURNS int[] LANGUAGE plpgsql AS $$
DECLARE r int[];
BEGIN
  SET LOCAL enable_indexscan = off; SET LOCAL enable_bitmapscan = off;
  EXECUTE format('SELECT array_agg(id) FROM (SELECT id FROM %I ORDER BY v %s $1 LIMIT $2) s', tbl, op) INTO r USING q, k;
  RETURN r;
END $$;
-- How many of 20 queries the index answers exactly.
CREATE FUNCTION exact_answers(tbl text, op text, d int, shift real DEFAULT 0) RETURNS bigint LANGUAGE sql AS $$
  SELECT count(*) FROM generate_series(1, 20) q
   WHERE through_index(tbl, op, vec(q * 131, d, ((q % 2) * shift)::real), 10)
       = exact(tbl, op, vec(q * 131, d, ((q % 2) * shift)::real), 10) $$;

CREATE TABLE c (id int PRIMARY KEY, v real[]);
INSERT INTO c SELECT i, vec(i, 24) FROM generate_series(1, 3000) i;
CREATE INDEX c_idx ON c USING drift (v) WITH (codes = rabitq, lists = 8, max_bucket_size = 600);
SELECT dimension, lists, codes FROM drift_index_stats('c_idx');
SELECT count(*) AS exact_answers FROM generate_series(1, 20) q
 WHERE through_index('c', '<->', vec(q * 131, 24), 10) = exact('c', '<->', vec(q * 131, 24), 10);
-- Inserts go to L0, a maintenance pass flushes and splits them into buckets.
INSERT INTO c SELECT i, vec(i, 24) FROM generate_series(3001, 6000) i;
SELECT flushed_rows, splits > 0 AS split FROM drift_maintain('c_idx');
SELECT count(*) AS exact_answers FROM generate_series(1, 20) q
 WHERE through_index('c', '<->', vec(q * 131, 24), 10) = exact('c', '<->', vec(q * 131, 24), 10);
-- Rows far from every bucket get buckets of their own, each chain coded
-- against its own centre: no index-wide quantizer is fitted again.
INSERT INTO c SELECT i, vec(i, 24, 20) FROM generate_series(6001, 7000) i;
SELECT requantized, seeded_buckets > 0 AS seeded FROM drift_maintain('c_idx');
SELECT quantizers_fitted FROM drift_index_stats('c_idx');
SELECT count(*) AS exact_answers FROM generate_series(1, 20) q
 WHERE through_index('c', '<->', vec(q * 131, 24, (q % 2) * 20), 10) = exact('c', '<->', vec(q * 131, 24, (q % 2) * 20), 10);
DELETE FROM c WHERE id % 3 = 0;
VACUUM c;
SELECT count(*) AS exact_answers FROM generate_series(1, 20) q
 WHERE through_index('c', '<->', vec(q * 131, 24), 10) = exact('c', '<->', vec(q * 131, 24), 10);
SELECT count(*) AS problems FROM drift_verify('c_idx');

-- Inner product and cosine.
CREATE TABLE ci (id int PRIMARY KEY, v real[]);
INSERT INTO ci SELECT i, vec(i, 40, 0.5) FROM generate_series(1, 2000) i;
CREATE INDEX ci_ip ON ci USING drift (v drift_ip_ops) WITH (codes = rabitq);
SELECT count(*) AS exact_answers FROM generate_series(1, 20) q
 WHERE through_index('ci', '<#>', vec(q * 71, 40), 10) = exact('ci', '<#>', vec(q * 71, 40), 10);
DROP INDEX ci_ip;
CREATE INDEX ci_cos ON ci USING drift (v drift_cosine_ops) WITH (codes = rabitq);
SELECT count(*) AS exact_answers FROM generate_series(1, 20) q
 WHERE through_index('ci', '<=>', vec(q * 71, 40), 10) = exact('ci', '<=>', vec(q * 71, 40), 10);

-- The default follows the width: SQ8 below 512 dimensions, RaBitQ from
-- 512; an index built on no rows fixes its kind with its dimension.
CREATE TABLE wide (id int PRIMARY KEY, v real[]);
INSERT INTO wide SELECT i, vec(i, 600) FROM generate_series(1, 300) i;
CREATE INDEX wide_idx ON wide USING drift (v);
SELECT dimension, codes FROM drift_index_stats('wide_idx');
SELECT count(*) AS exact_answers FROM generate_series(1, 5) q
 WHERE through_index('wide', '<->', vec(q * 53, 600), 5) = exact('wide', '<->', vec(q * 53, 600), 5);
CREATE INDEX narrow_idx ON c USING drift (v);
SELECT dimension, codes FROM drift_index_stats('narrow_idx');
CREATE TABLE later (id int, v real[]);
CREATE INDEX later_idx ON later USING drift (v) WITH (codes = sq8);
SELECT dimension, codes FROM drift_index_stats('later_idx');
INSERT INTO later VALUES (1, vec(1, 700));
SELECT dimension, codes FROM drift_index_stats('later_idx');

-- A chain's first page keeps its RaBitQ centre (two bytes a dimension):
-- RaBitQ takes up to 3,736 dimensions, wider indexes default to SQ8.
CREATE TABLE huge (id int, v real[]);
INSERT INTO huge VALUES (1, vec(1, 3800)), (2, vec(2, 3800));
CREATE INDEX huge_rq ON huge USING drift (v) WITH (codes = rabitq, precision = half);
CREATE INDEX huge_idx ON huge USING drift (v) WITH (precision = half);
SELECT dimension, codes FROM drift_index_stats('huge_idx');
DROP TABLE huge;
-- At the limit a chain's first page holds the centre and one code.
CREATE TABLE edge (id int PRIMARY KEY, v real[]);
INSERT INTO edge SELECT i, vec(i, 3736) FROM generate_series(1, 6) i;
CREATE INDEX edge_idx ON edge USING drift (v) WITH (codes = rabitq, precision = half, lists = 1);
INSERT INTO edge SELECT i, vec(i, 3736) FROM generate_series(7, 12) i;
SELECT flushed_rows FROM drift_maintain('edge_idx');
SELECT dimension, codes, live_entries FROM drift_index_stats('edge_idx');
SELECT through_index('edge', '<->', vec(5, 3736, 0.1), 12) = exact('edge', '<->', vec(5, 3736, 0.1), 12) AS exact_answer;
SELECT count(*) AS problems FROM drift_verify('edge_idx');
DROP TABLE edge;

-- A kind drift does not know.
CREATE INDEX bad_idx ON c USING drift (v) WITH (codes = pq);
-- Re-ranking from the table (rerank = heap): the index keeps codes only and
-- reads exact vectors from the table's column under the scan's snapshot.
-- It answers exactly with every bucket probed after build, deletes,
-- updates, rolled-back inserts, maintenance (flush, split, seeding,
-- compaction) and VACUUM, for each code kind and metric, up to 4,000
-- dimensions.
CREATE TABLE h (id int PRIMARY KEY, v real[]);
INSERT INTO h SELECT i, vec(i, 24) FROM generate_series(1, 3000) i;
CREATE INDEX h_full ON h USING drift (v) WITH (lists = 8);
CREATE INDEX h_idx ON h USING drift (v) WITH (rerank = heap, lists = 8, max_bucket_size = 600);
-- Codes only: a fraction of an index with the vectors.
SELECT pg_relation_size('h_idx') * 3 < pg_relation_size('h_full') AS smaller;
DROP INDEX h_full;
SELECT dimension, lists, codes, live_entries FROM drift_index_stats('h_idx');
SELECT exact_answers('h', '<->', 24);
-- Rows deleted (seen by the deleting transaction, then committed), and
-- updated: the index answers from the versions each snapshot sees.
BEGIN;
DELETE FROM h WHERE id % 5 = 0;
SELECT exact_answers('h', '<->', 24) AS deleting;
ROLLBACK;
DELETE FROM h WHERE id % 7 = 0;
UPDATE h SET v = vec(id + 7000, 24) WHERE id % 11 = 0;
SELECT exact_answers('h', '<->', 24) AS after_delete_update;
-- Rows of a rolled-back transaction are flushed and split like any other
-- (maintenance reads every version the table holds) until VACUUM removes them.
BEGIN;
INSERT INTO h SELECT i, vec(i, 24) FROM generate_series(3001, 4000) i;
ROLLBACK;
INSERT INTO h SELECT i, vec(i, 24) FROM generate_series(4001, 7000) i;
SELECT flushed_rows, splits > 0 AS split FROM drift_maintain('h_idx');
SELECT exact_answers('h', '<->', 24) AS after_split;
-- Rows far from every bucket get buckets of their own.
INSERT INTO h SELECT i, vec(i, 24, 20) FROM generate_series(7001, 8000) i;
SELECT seeded_buckets > 0 AS seeded FROM drift_maintain('h_idx');
SELECT exact_answers('h', '<->', 24, 20) AS after_seeding;
-- VACUUM drops the dead rows; maintenance rewrites the emptied buckets from the table.
VACUUM h;
SELECT live_entries = (SELECT count(*) FROM h) AS entries_match_rows FROM drift_index_stats('h_idx');
SELECT compactions + merges AS rewrites FROM drift_index_stats('h_idx') \gset
DELETE FROM h WHERE id > 7000 AND id % 10 <> 0;
VACUUM h;
SELECT FROM drift_maintain('h_idx');
SELECT compactions + merges > :rewrites AS rewritten FROM drift_index_stats('h_idx');
SELECT exact_answers('h', '<->', 24, 20) AS after_merge;
SELECT live_entries = (SELECT count(*) FROM h) AS entries_match_rows FROM drift_index_stats('h_idx');
SELECT count(*) AS problems FROM drift_verify('h_idx');

-- RaBitQ codes, inner product and cosine (the table's vectors normalized as the index's).
CREATE TABLE hi (id int PRIMARY KEY, v real[]);
INSERT INTO hi SELECT i, vec(i, 40, 0.5) FROM generate_series(1, 2000) i;
CREATE INDEX hi_rq ON hi USING drift (v) WITH (rerank = heap, codes = rabitq);
SELECT exact_answers('hi', '<->', 40) AS rabitq;
DROP INDEX hi_rq;
CREATE INDEX hi_ip ON hi USING drift (v drift_ip_ops) WITH (rerank = heap);
SELECT exact_answers('hi', '<#>', 40) AS inner_product;
DROP INDEX hi_ip;
CREATE INDEX hi_cos ON hi USING drift (v drift_cosine_ops) WITH (rerank = heap, codes = rabitq);
SELECT exact_answers('hi', '<=>', 40) AS cosine;

-- 4,000 dimensions: L0 keeps rows until a flush, at half precision.
CREATE TABLE hw (id int PRIMARY KEY, v real[]);
INSERT INTO hw SELECT i, vec(i, 4000) FROM generate_series(1, 40) i;
CREATE INDEX hw_single ON hw USING drift (v) WITH (rerank = heap);
CREATE INDEX hw_idx ON hw USING drift (v) WITH (rerank = heap, precision = half, lists = 2);
INSERT INTO hw SELECT i, vec(i, 4000) FROM generate_series(41, 60) i;
SELECT flushed_rows FROM drift_maintain('hw_idx');
SELECT dimension, codes, live_entries FROM drift_index_stats('hw_idx');
SELECT through_index('hw', '<->', vec(5, 4000, 0.1), 10) = exact('hw', '<->', vec(5, 4000, 0.1), 10) AS exact_answer;
SELECT count(*) AS problems FROM drift_verify('hw_idx');

-- An expression has no column to re-rank from; an unknown source.
CREATE INDEX h_expr ON h USING drift ((v[1:12])) WITH (rerank = heap);
CREATE INDEX h_bad ON h USING drift (v) WITH (rerank = disk);
DROP TABLE c, ci, wide, later, h, hi, hw;
DROP FUNCTION vec, through_index, exact, exact_answers;
