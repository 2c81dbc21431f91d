-- recall@10 against exact ground truth on real data (tables loaded by
-- scripts/test.sh from ../shared/data): SIFT10K (L2), GloVe-50 (cosine)
-- and MNIST (784 dimensions, L2), at drift.probes = 10 with about
-- sqrt(rows) lists (the defaults), with each kind of code, and re-ranking
-- from the table.
BEGIN;
SELECT plan(22);

SET LOCAL enable_seqscan = off;
SET LOCAL drift.probes = 10;

CREATE INDEX sift_idx ON sift_base USING drift (v);
SELECT is((SELECT lists FROM drift_index_stats('sift_idx')), 100, 'SIFT10K: default lists is sqrt(rows)');
SELECT matches(search_plan('sift_base', 'sift_query', '<->'), 'Index Scan using sift_idx', 'SIFT10K: the index answers');
SELECT cmp_ok(recall_at_10('sift_base', 'sift_query', 'sift_truth', '<->'), '>=', 0.95::float8,
              'SIFT10K L2 recall@10 >= 0.95 at probes = 10');
SET LOCAL drift.probes = 100;
SELECT cmp_ok(recall_at_10('sift_base', 'sift_query', 'sift_truth', '<->'), '>=', 0.99::float8,
              'SIFT10K L2 recall@10 >= 0.99 with every bucket probed');
SET LOCAL drift.probes = 10;

CREATE INDEX glove_idx ON glove_base USING drift (v drift_cosine_ops);
SELECT matches(search_plan('glove_base', 'glove_query', '<=>'), 'Index Scan using glove_idx', 'GloVe-50: the index answers');
SELECT cmp_ok(recall_at_10('glove_base', 'glove_query', 'glove_truth', '<=>'), '>=', 0.95::float8,
              'GloVe-50 cosine recall@10 >= 0.95 at probes = 10');

-- RaBitQ codes (the default from 512 dimensions): the same thresholds.
DROP INDEX glove_idx;
CREATE INDEX sift_rq ON sift_base USING drift (v) WITH (codes = rabitq);
SELECT matches(search_plan('sift_base', 'sift_query', '<->'), 'Index Scan using sift_rq', 'SIFT10K, RaBitQ: the index answers');
SELECT cmp_ok(recall_at_10('sift_base', 'sift_query', 'sift_truth', '<->'), '>=', 0.95::float8,
              'SIFT10K L2 recall@10 >= 0.95 at probes = 10 with RaBitQ codes');
CREATE INDEX glove_rq ON glove_base USING drift (v drift_cosine_ops) WITH (codes = rabitq);
SELECT cmp_ok(recall_at_10('glove_base', 'glove_query', 'glove_truth', '<=>'), '>=', 0.95::float8,
              'GloVe-50 cosine recall@10 >= 0.95 at probes = 10 with RaBitQ codes');
CREATE INDEX mnist_idx ON mnist_base USING drift (v);
SELECT is((SELECT codes FROM drift_index_stats('mnist_idx')), 'rabitq', 'MNIST: 784 dimensions get RaBitQ codes by default');
SELECT matches(search_plan('mnist_base', 'mnist_query', '<->'), 'Index Scan using mnist_idx', 'MNIST: the index answers');
SELECT cmp_ok(recall_at_10('mnist_base', 'mnist_query', 'mnist_truth', '<->'), '>=', 0.97::float8,
              'MNIST L2 recall@10 >= 0.97 at probes = 10 with RaBitQ codes');
DROP INDEX mnist_idx;
CREATE INDEX mnist_sq ON mnist_base USING drift (v) WITH (codes = sq8);
SELECT cmp_ok(recall_at_10('mnist_base', 'mnist_query', 'mnist_truth', '<->'), '>=', 0.97::float8,
              'MNIST L2 recall@10 >= 0.97 at probes = 10 with SQ8 codes');
DROP INDEX sift_rq;

-- Rows inserted after the build land in their nearest buckets and are found:
-- build on the first half of SIFT10K, insert the second half.
DROP INDEX sift_idx;
CREATE TABLE sift_half (LIKE sift_base);
INSERT INTO sift_half SELECT * FROM sift_base WHERE id < 5000;
CREATE INDEX sift_half_idx ON sift_half USING drift (v) WITH (lists = 100);
INSERT INTO sift_half SELECT * FROM sift_base WHERE id >= 5000;
SELECT is((SELECT live_entries FROM drift_index_stats('sift_half_idx')), 10000::bigint, 'every inserted row is indexed');
SELECT matches(search_plan('sift_half', 'sift_query', '<->'), 'Index Scan using sift_half_idx', 'the half-built index answers');
SELECT cmp_ok(recall_at_10('sift_half', 'sift_query', 'sift_truth', '<->'), '>=', 0.95::float8,
              'SIFT10K recall@10 >= 0.95 after inserting half the rows');
CREATE TABLE sift_half_rq (LIKE sift_base);
INSERT INTO sift_half_rq SELECT * FROM sift_base WHERE id < 5000;
CREATE INDEX sift_half_rq_idx ON sift_half_rq USING drift (v) WITH (lists = 100, codes = rabitq);
INSERT INTO sift_half_rq SELECT * FROM sift_base WHERE id >= 5000;
SELECT cmp_ok(recall_at_10('sift_half_rq', 'sift_query', 'sift_truth', '<->'), '>=', 0.95::float8,
              'SIFT10K recall@10 >= 0.95 after inserting half the rows, RaBitQ codes');


-- Re-ranking from the table: the same thresholds, the index a fraction of
-- one that keeps the vectors.
CREATE INDEX mnist_heap ON mnist_base USING drift (v) WITH (rerank = heap);
DROP INDEX mnist_sq;
SELECT matches(search_plan('mnist_base', 'mnist_query', '<->'), 'Index Scan using mnist_heap', 'MNIST, heap re-rank: the index answers');
SELECT cmp_ok(recall_at_10('mnist_base', 'mnist_query', 'mnist_truth', '<->'), '>=', 0.97::float8,
              'MNIST L2 recall@10 >= 0.97 at probes = 10 re-ranking from the table');
CREATE INDEX glove_heap ON glove_base USING drift (v drift_cosine_ops) WITH (rerank = heap);
DROP INDEX glove_rq;
SELECT cmp_ok(recall_at_10('glove_base', 'glove_query', 'glove_truth', '<=>'), '>=', 0.95::float8,
              'GloVe-50 cosine recall@10 >= 0.95 at probes = 10 re-ranking from the table');
CREATE TABLE sift_half_heap (LIKE sift_base);
INSERT INTO sift_half_heap SELECT * FROM sift_base WHERE id < 5000;
CREATE INDEX sift_half_heap_idx ON sift_half_heap USING drift (v) WITH (lists = 100, rerank = heap);
INSERT INTO sift_half_heap SELECT * FROM sift_base WHERE id >= 5000;
SELECT is((SELECT flushed_rows FROM drift_maintain('sift_half_heap_idx')), 5000::bigint,
          'the inserted rows are flushed into buckets, vectors left in the table');
-- (The flush splits 20 buckets and seeds 15: 15 probes cover about the
-- share of the rows 10 did before; an index keeping the vectors measures
-- the same recall.)
SET LOCAL drift.probes = 15;
SELECT cmp_ok(recall_at_10('sift_half_heap', 'sift_query', 'sift_truth', '<->'), '>=', 0.95::float8,
              'SIFT10K recall@10 >= 0.95 after inserting half the rows, flushed, re-ranking from the table');

SELECT * FROM finish();
ROLLBACK;
