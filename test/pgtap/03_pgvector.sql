-- drift on pgvector's columns: recall@10 against exact ground truth on the
-- same real data as 02_recall.sql, read as vector and halfvec. A vector
-- index must answer exactly as the real[] index on the same floats; a
-- halfvec index (half-precision storage) within a hair of it.
BEGIN;
SELECT plan(14);
CREATE EXTENSION vector;
CREATE EXTENSION drift_vector;

-- Every query's result ids through the index, in order, as one text.
CREATE FUNCTION answers(base text, queries text, op text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE r text;
BEGIN
  EXECUTE format($q$
    SELECT string_agg(ARRAY(SELECT b.id FROM %I b ORDER BY b.v %s q.v LIMIT 10)::text, ';' ORDER BY q.id)
      FROM %I q$q$, base, op, queries) INTO r;
  RETURN r;
END $$;

SET LOCAL enable_seqscan = off;
SET LOCAL drift.probes = 10;

CREATE TABLE sift_vec AS SELECT id, v::vector(128) AS v FROM sift_base;
CREATE TABLE sift_vec_query AS SELECT id, v::vector(128) AS v FROM sift_query;
CREATE TABLE sift_half AS SELECT id, v::halfvec(128) AS v FROM sift_base;
CREATE TABLE sift_half_query AS SELECT id, v::halfvec(128) AS v FROM sift_query;
CREATE INDEX sift_idx ON sift_base USING drift (v);
CREATE INDEX sift_vec_idx ON sift_vec USING drift (v);
CREATE INDEX sift_half_idx ON sift_half USING drift (v);

SELECT matches(search_plan('sift_vec', 'sift_vec_query', '<->'), 'Index Scan using sift_vec_idx',
               'SIFT10K vector: the drift index answers pgvector''s <->');
SELECT cmp_ok(recall_at_10('sift_vec', 'sift_vec_query', 'sift_truth', '<->'), '>=', 0.95::float8,
              'SIFT10K vector L2 recall@10 >= 0.95 at probes = 10');
SELECT is(answers('sift_vec', 'sift_vec_query', '<->'), answers('sift_base', 'sift_query', '<->'),
          'SIFT10K: the vector index answers every query exactly as the real[] index');
SELECT matches(search_plan('sift_half', 'sift_half_query', '<->'), 'Index Scan using sift_half_idx',
               'SIFT10K halfvec: the drift index answers');
SELECT is((SELECT pg_relation_size('sift_half_idx') < pg_relation_size('sift_vec_idx')), true,
          'SIFT10K halfvec: the half-precision index is smaller than the vector index');
SELECT cmp_ok(recall_at_10('sift_half', 'sift_half_query', 'sift_truth', '<->'), '>=',
              recall_at_10('sift_vec', 'sift_vec_query', 'sift_truth', '<->') - 0.005,
              'SIFT10K halfvec recall@10 within 0.005 of vector''s');

CREATE TABLE glove_vec AS SELECT id, v::vector(50) AS v FROM glove_base;
CREATE TABLE glove_vec_query AS SELECT id, v::vector(50) AS v FROM glove_query;
CREATE TABLE glove_half AS SELECT id, v::halfvec(50) AS v FROM glove_base;
CREATE TABLE glove_half_query AS SELECT id, v::halfvec(50) AS v FROM glove_query;
CREATE INDEX glove_idx ON glove_base USING drift (v drift_cosine_ops);
CREATE INDEX glove_vec_idx ON glove_vec USING drift (v drift_vector_cosine_ops);
CREATE INDEX glove_half_idx ON glove_half USING drift (v drift_halfvec_cosine_ops);
SELECT matches(search_plan('glove_vec', 'glove_vec_query', '<=>'), 'Index Scan using glove_vec_idx',
               'GloVe-50 vector: the drift index answers pgvector''s <=>');
SELECT cmp_ok(recall_at_10('glove_vec', 'glove_vec_query', 'glove_truth', '<=>'), '>=', 0.95::float8,
              'GloVe-50 vector cosine recall@10 >= 0.95 at probes = 10');
SELECT is(answers('glove_vec', 'glove_vec_query', '<=>'), answers('glove_base', 'glove_query', '<=>'),
          'GloVe-50: the vector index answers every query exactly as the real[] index');
SELECT cmp_ok(recall_at_10('glove_half', 'glove_half_query', 'glove_truth', '<=>'), '>=', 0.94::float8,
              'GloVe-50 halfvec cosine recall@10 >= 0.94 (its queries are rounded to half precision too)');

-- Inner product: the top 10 by pgvector's <#> through the index, on SIFT
-- (unnormalized, so <#> orders differently from <->), against exact search.
CREATE INDEX sift_vec_ip_idx ON sift_vec USING drift (v drift_vector_ip_ops);
DROP INDEX sift_vec_idx;
SELECT matches(search_plan('sift_vec', 'sift_vec_query', '<#>'), 'Index Scan using sift_vec_ip_idx',
               'SIFT10K vector: the drift index answers pgvector''s <#>');
CREATE TABLE sift_ip_truth AS
  SELECT q.id, ARRAY(SELECT b.id FROM sift_base b ORDER BY drift_negative_inner_product(b.v, q.v), b.id LIMIT 10) AS ids
    FROM sift_query q;
SET LOCAL drift.probes = 30;
SELECT cmp_ok(recall_at_10('sift_vec', 'sift_vec_query', 'sift_ip_truth', '<#>'), '>=', 0.9::float8,
              'SIFT10K vector inner-product recall@10 >= 0.9 at probes = 30');

-- Each operator class orders by its own metric.
CREATE TABLE kinds (id int, v vector(4), h halfvec(4));
INSERT INTO kinds SELECT i, ARRAY[sin(i), cos(i), i % 3, 1]::vector, ARRAY[sin(i), cos(i), i % 3, 1]::halfvec
  FROM generate_series(1, 50) i;
CREATE INDEX kinds_v_l2 ON kinds USING drift (v drift_vector_l2_ops);
CREATE INDEX kinds_v_ip ON kinds USING drift (v drift_vector_ip_ops);
CREATE INDEX kinds_v_cos ON kinds USING drift (v drift_vector_cosine_ops);
CREATE INDEX kinds_h_l2 ON kinds USING drift (h drift_halfvec_l2_ops);
CREATE INDEX kinds_h_ip ON kinds USING drift (h drift_halfvec_ip_ops);
CREATE INDEX kinds_h_cos ON kinds USING drift (h drift_halfvec_cosine_ops);
SELECT is((SELECT string_agg(relname || ':' || (drift_index_stats(oid)).metric, ',' ORDER BY relname)
             FROM pg_class WHERE relname LIKE 'kinds\_%'),
          'kinds_h_cos:cosine,kinds_h_ip:inner_product,kinds_h_l2:l2,kinds_v_cos:cosine,kinds_v_ip:inner_product,kinds_v_l2:l2',
          'each vector and halfvec operator class has its metric');

-- Bad input: a clear error, and nothing indexed.
CREATE TABLE loose (id int, v vector);
INSERT INTO loose VALUES (1, '[1,2,3]');
CREATE INDEX loose_idx ON loose USING drift (v);
SELECT throws_ok($$INSERT INTO loose VALUES (2, '[1,2]')$$, '22000',
                 'vector has 2 dimensions, but index "loose_idx" has 3', 'a vector of the wrong dimension is refused');

SELECT * FROM finish();
ROLLBACK;
