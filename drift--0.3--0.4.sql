-- drift 0.3 -> 0.4: drift_index_stats shows the kind of code the index's
-- buckets keep (the codes option, or the kind chosen from the width).
-- The 0.4 library writes page format 4: REINDEX every drift index built
-- by an earlier version (until then it reports format version 3).

\echo Use "ALTER EXTENSION drift UPDATE TO '0.4'" to load this file. \quit

DROP FUNCTION drift_index_stats(regclass);
CREATE FUNCTION drift_index_stats(index regclass,
    OUT dimension int, OUT metric text, OUT lists int, OUT trained bool,
    OUT live_entries bigint, OUT dead_entries bigint, OUT l0_entries bigint, OUT l0_pages bigint,
    OUT pages bigint, OUT size_bytes bigint,
    OUT min_bucket_size bigint, OUT avg_bucket_size float8, OUT max_bucket_size bigint,
    OUT flushes bigint, OUT flushed_rows bigint, OUT splits bigint, OUT merges bigint,
    OUT compactions bigint, OUT stolen_rows bigint, OUT retired_chains int,
    OUT last_maintenance timestamptz, OUT quantizers_fitted int, OUT l0_in_graph bigint,
    OUT sampled_recall float8, OUT recall_samples bigint, OUT intrinsic_dimension float8,
    OUT codes text)
    AS 'MODULE_PATHNAME' LANGUAGE C STRICT;
COMMENT ON FUNCTION drift_index_stats(regclass) IS 'what a drift index holds, what maintenance has done, the recall the janitor measured on sampled scans, and the kind of its codes';
