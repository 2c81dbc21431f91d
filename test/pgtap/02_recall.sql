-- recall@10 against exact ground truth on real data (tables loaded by
-- scripts/test.sh from ../shared/data): SIFT10K (L2) and GloVe-50 (cosine),
-- at drift.probes = 10 with about sqrt(rows) lists (the defaults).
BEGIN;
SELECT plan(9);

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

SELECT * FROM finish();
ROLLBACK;
