-- drift 0.2 -> 0.3: the recall a drift index delivers: drift_evaluate_recall
-- for one query, and drift_index_stats shows the janitor's sampled recall
-- and the rows' intrinsic dimension the recall estimate uses.

\echo Use "ALTER EXTENSION drift UPDATE TO '0.3'" to load this file. \quit

DROP FUNCTION drift_index_stats(regclass);
CREATE FUNCTION drift_index_stats(index regclass,
    OUT dimension int, OUT metric text, OUT lists int, OUT trained bool,
    OUT live_entries bigint, OUT dead_entries bigint, OUT l0_entries bigint, OUT l0_pages bigint,
    OUT pages bigint, OUT size_bytes bigint,
    OUT min_bucket_size bigint, OUT avg_bucket_size float8, OUT max_bucket_size bigint,
    OUT flushes bigint, OUT flushed_rows bigint, OUT splits bigint, OUT merges bigint,
    OUT compactions bigint, OUT stolen_rows bigint, OUT retired_chains int,
    OUT last_maintenance timestamptz, OUT quantizers_fitted int, OUT l0_in_graph bigint,
    OUT sampled_recall float8, OUT recall_samples bigint, OUT intrinsic_dimension float8)
    AS 'MODULE_PATHNAME' LANGUAGE C STRICT;
COMMENT ON FUNCTION drift_index_stats(regclass) IS 'what a drift index holds, what maintenance has done, and the recall the janitor measured on sampled scans';

CREATE FUNCTION drift_evaluate_recall(index regclass, query anyelement, k int DEFAULT 10,
    OUT recall float8, OUT buckets_probed int, OUT buckets int, OUT candidates bigint, OUT estimated_recall float8)
    AS 'MODULE_PATHNAME' LANGUAGE C;
COMMENT ON FUNCTION drift_evaluate_recall(regclass, anyelement, int) IS 'recall@k of one query through a drift index with the current settings, against the exact answer over the index''s rows, with the buckets probed and the scan''s own estimate';
