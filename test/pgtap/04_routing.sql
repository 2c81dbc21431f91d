-- Routing and the recall a scan delivers: drift.tau and drift.lambda change
-- the probe order, drift.target_recall probes per query until its estimate
-- reaches the target, drift_evaluate_recall measures a query's recall, and
-- drift.max_scan_tuples / drift.scan_mem_multiplier bound a filtered scan.
BEGIN;
SELECT plan(28);

SET LOCAL enable_seqscan = off;

-- Two clusters of 1,000 rows (A around the origin, B around (10, 0, ...)),
-- two buckets; then 500 rows of a third cluster S around (5, 8, 0, ...),
-- which a flush gives a bucket of their own (seeded: no centroid is near).
CREATE TABLE r (id int PRIMARY KEY, v real[]);
INSERT INTO r SELECT i, ARRAY[(CASE WHEN i <= 1000 THEN 0 ELSE 10 END) + (random() - 0.5)::real,
                              (random() - 0.5)::real, (random() - 0.5)::real, (random() - 0.5)::real]
  FROM generate_series(1, 2000) i;
CREATE INDEX r_idx ON r USING drift (v) WITH (lists = 2);
INSERT INTO r SELECT i, ARRAY[5 + (random() - 0.5)::real, 8 + (random() - 0.5)::real,
                              (random() - 0.5)::real, (random() - 0.5)::real]
  FROM generate_series(3001, 3500) i;
SELECT is((SELECT seeded_buckets FROM drift_maintain('r_idx')), 1, 'the far rows seed a bucket of their own');

-- drift.tau: the query's nearest bucket is S (500 members); with tau =
-- 2,000 it counts as a quarter dense (3 windows back), A and B as half (one
-- window back), so with one probe A or B answers instead.
SET LOCAL drift.probes = 1;
SELECT ok((SELECT id FROM r ORDER BY v <-> '{5,6.5,0,0}' LIMIT 1) > 3000, 'tau off: the nearest bucket (S) answers');
SET LOCAL drift.tau = 2000;
SELECT ok((SELECT id FROM r ORDER BY v <-> '{5,6.5,0,0}' LIMIT 1) <= 2000, 'tau = 2000: the sparse bucket goes back');
SET LOCAL drift.tau = 0;

-- drift.lambda: on A and B alone (no scan has hit a bucket yet, which
-- would heat it with drift preloaded), 500 rows flushed into B make it hot
-- (temperature 1/3); a query nearer A's centroid than B's is answered from
-- B with a large lambda.
CREATE TABLE h AS SELECT * FROM r WHERE id <= 2000;
CREATE INDEX h_idx ON h USING drift (v) WITH (lists = 2);
INSERT INTO h SELECT i, ARRAY[10 + (random() - 0.5)::real, (random() - 0.5)::real, (random() - 0.5)::real,
                              (random() - 0.5)::real]
  FROM generate_series(4001, 4500) i;
SELECT is((SELECT seeded_buckets FROM drift_maintain('h_idx')), 0, 'the rows near B flush into B');
SELECT cmp_ok((SELECT max(temperature) FROM drift_buckets('h_idx')), '>', 0.3::float8, 'B is hot');
SET LOCAL drift.lambda = 10;
SELECT ok((SELECT id FROM h ORDER BY v <-> '{4.5,0,0,0}' LIMIT 1) > 1000, 'lambda = 10: the hot bucket (B) answers');
SET LOCAL drift.lambda = 0;
SELECT ok((SELECT id FROM h ORDER BY v <-> '{4.5,0,0,0}' LIMIT 1) <= 1000, 'lambda = 0: the nearest bucket (A) answers');

-- drift_evaluate_recall against the ground truth of SIFT10K.
CREATE INDEX sift_idx ON sift_base USING drift (v);
SELECT ok((SELECT intrinsic_dimension BETWEEN 10 AND 20 FROM drift_index_stats('sift_idx')),
          'the build measures the rows'' intrinsic dimension (SIFT: about 15)');
CREATE TABLE sift_later (LIKE sift_base);
CREATE INDEX sift_later_idx ON sift_later USING drift (v);
INSERT INTO sift_later SELECT * FROM sift_base;
SELECT is((SELECT count(*) FROM drift_maintain('sift_later_idx')), 1::bigint, 'an index built empty trains at its first flush');
SELECT ok((SELECT trained AND intrinsic_dimension BETWEEN 10 AND 20 FROM drift_index_stats('sift_later_idx')),
          '... and measures the intrinsic dimension then');
SET LOCAL drift.probes = 4;
CREATE TEMP TABLE ev AS SELECT q.id, e.* FROM sift_query q, drift_evaluate_recall('sift_idx', q.v, 10) e;
SELECT cmp_ok(abs((SELECT avg(recall) FROM ev) - recall_at_10('sift_base', 'sift_query', 'sift_truth', '<->')), '<',
              0.005::float8, 'drift_evaluate_recall agrees with the ground truth');
SELECT is((SELECT (min(buckets_probed), max(buckets_probed), min(buckets)) FROM ev), (4, 4, 100),
          'it reports the buckets probed (drift.probes) of those there are');
SELECT ok((SELECT bool_and(estimated_recall IS NULL) FROM ev), 'no estimate without a target');

-- drift.target_recall: a minimum of one probe, up to every bucket.
SET LOCAL drift.probes = 1;
SET LOCAL drift.target_recall = 0.95;
DROP TABLE ev;
CREATE TEMP TABLE ev AS SELECT q.id, e.* FROM sift_query q, drift_evaluate_recall('sift_idx', q.v, 10) e;
SELECT cmp_ok((SELECT avg(recall) FROM ev), '>=', 0.94::float8, 'SIFT10K: target 0.95 gives recall@10 >= 0.94');
SELECT cmp_ok((SELECT avg(recall) FROM ev), '<=', 0.98::float8, '... and <= 0.98');
SELECT cmp_ok((SELECT max(buckets_probed) - min(buckets_probed) FROM ev), '>', 4, 'each query probes what it needs');
SELECT ok((SELECT bool_and(estimated_recall >= 0.95 OR buckets_probed = buckets) FROM ev),
          'a query stops when its estimate reaches the target');
SET LOCAL drift.target_recall = 0.99;
SELECT cmp_ok((SELECT avg(buckets_probed) FROM sift_query q, drift_evaluate_recall('sift_idx', q.v, 10)), '>',
              (SELECT avg(buckets_probed) FROM ev), 'a higher target probes more');
CREATE INDEX sift_ip_idx ON sift_base USING drift (v drift_ip_ops);
SET LOCAL drift.probes = 3;
SELECT is((SELECT (max(buckets_probed), bool_and(estimated_recall IS NULL))
             FROM sift_query q, drift_evaluate_recall('sift_ip_idx', q.v, 10)), (3, true),
          'an inner-product index ignores the target: drift.probes buckets');
DROP INDEX sift_ip_idx;
SET LOCAL drift.probes = 1;
SET LOCAL drift.target_recall = 0.95;
SET LOCAL drift.target_k = 50;
SELECT cmp_ok((SELECT avg(buckets_probed) FROM sift_query q, drift_evaluate_recall('sift_idx', q.v, 10)), '>',
              (SELECT avg(buckets_probed) FROM ev), 'the target for 50 rows probes more than for 10 (drift.target_k)');
SET LOCAL drift.target_k = 10;
SET LOCAL drift.max_probes = 3;
SELECT cmp_ok((SELECT max(buckets_probed) FROM sift_query q, drift_evaluate_recall('sift_idx', q.v, 10)), '<=', 3,
              'drift.max_probes bounds a target');
RESET drift.max_probes;

CREATE INDEX glove_idx ON glove_base USING drift (v drift_cosine_ops);
SET LOCAL drift.target_recall = 0.95;
SELECT cmp_ok((SELECT avg(recall) FROM glove_query q, drift_evaluate_recall('glove_idx', q.v, 10)), '>=', 0.94::float8,
              'GloVe-50 (cosine): target 0.95 gives recall@10 >= 0.94');
SET LOCAL drift.target_recall = 0;

-- A selective filter on SIFT10K (10 matching rows): the scan probes bucket
-- after bucket until it has them, unless a bound stops it first (rows out
-- of order are let through, so that every matching row counts).
SET LOCAL drift.strict_order = off;
SELECT is((SELECT count(*) FROM (SELECT id FROM sift_base WHERE id % 1000 = 0
                                  ORDER BY v <-> (SELECT v FROM sift_query WHERE id = 0) LIMIT 10) s), 10::bigint,
          'a filtered scan reads on until it has its rows');
SET LOCAL drift.target_recall = 0.95;
SELECT is((SELECT count(*) FROM (SELECT id FROM sift_base WHERE id % 1000 = 0
                                  ORDER BY v <-> (SELECT v FROM sift_query WHERE id = 0) LIMIT 10) s), 10::bigint,
          'so does one with a target recall');
SET LOCAL drift.target_recall = 0;
SET LOCAL drift.max_scan_tuples = 0;
SELECT is((SELECT count(*) FROM (SELECT id FROM sift_base ORDER BY v <-> (SELECT v FROM sift_query WHERE id = 0) LIMIT 10) s),
          10::bigint, 'the first round is never cut short');
SET LOCAL drift.max_scan_tuples = 300;
SELECT cmp_ok((SELECT count(*) FROM (SELECT id FROM sift_base WHERE id % 1000 = 0
                                      ORDER BY v <-> (SELECT v FROM sift_query WHERE id = 0) LIMIT 10) s), '<', 10::bigint,
              'drift.max_scan_tuples stops it');
SET LOCAL drift.max_scan_tuples = -1;
SET LOCAL work_mem = '64kB';
SELECT cmp_ok((SELECT count(*) FROM (SELECT id FROM sift_base WHERE id % 1000 = 0
                                      ORDER BY v <-> (SELECT v FROM sift_query WHERE id = 0) LIMIT 10) s), '<', 10::bigint,
              'so does its memory limit (work_mem x drift.scan_mem_multiplier)');
SET LOCAL drift.scan_mem_multiplier = 1000;
SELECT is((SELECT count(*) FROM (SELECT id FROM sift_base WHERE id % 1000 = 0
                                  ORDER BY v <-> (SELECT v FROM sift_query WHERE id = 0) LIMIT 10) s), 10::bigint,
          'a larger multiplier lets it finish');

SELECT * FROM finish();
ROLLBACK;
