-- drift 0.1: distance functions and operators on real[], the drift index
-- access method and its operator classes, and introspection.

\echo Use "CREATE EXTENSION drift" to load this file. \quit

CREATE FUNCTION drift_l2_distance(real[], real[]) RETURNS float8
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION drift_inner_product(real[], real[]) RETURNS float8
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION drift_negative_inner_product(real[], real[]) RETURNS float8
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION drift_cosine_distance(real[], real[]) RETURNS float8
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE OPERATOR <-> (LEFTARG = real[], RIGHTARG = real[], FUNCTION = drift_l2_distance, COMMUTATOR = '<->');
CREATE OPERATOR <#> (LEFTARG = real[], RIGHTARG = real[], FUNCTION = drift_negative_inner_product, COMMUTATOR = '<#>');
CREATE OPERATOR <=> (LEFTARG = real[], RIGHTARG = real[], FUNCTION = drift_cosine_distance, COMMUTATOR = '<=>');

CREATE FUNCTION drift_handler(internal) RETURNS index_am_handler
    AS 'MODULE_PATHNAME' LANGUAGE C;
CREATE ACCESS METHOD drift TYPE INDEX HANDLER drift_handler;
COMMENT ON ACCESS METHOD drift IS 'drift: quantized buckets that adapt as data drifts';

CREATE OPERATOR CLASS drift_l2_ops DEFAULT FOR TYPE real[] USING drift AS
    OPERATOR 1 <-> (real[], real[]) FOR ORDER BY float_ops,
    FUNCTION 1 drift_l2_distance(real[], real[]);
CREATE OPERATOR CLASS drift_ip_ops FOR TYPE real[] USING drift AS
    OPERATOR 1 <#> (real[], real[]) FOR ORDER BY float_ops,
    FUNCTION 1 drift_negative_inner_product(real[], real[]);
CREATE OPERATOR CLASS drift_cosine_ops FOR TYPE real[] USING drift AS
    OPERATOR 1 <=> (real[], real[]) FOR ORDER BY float_ops,
    FUNCTION 1 drift_cosine_distance(real[], real[]);

CREATE FUNCTION drift_index_stats(index regclass,
    OUT dimension int, OUT metric text, OUT lists int, OUT trained bool,
    OUT live_entries bigint, OUT dead_entries bigint, OUT l0_entries bigint, OUT l0_pages bigint,
    OUT pages bigint, OUT size_bytes bigint,
    OUT min_bucket_size bigint, OUT avg_bucket_size float8, OUT max_bucket_size bigint,
    OUT flushes bigint, OUT flushed_rows bigint, OUT splits bigint, OUT merges bigint,
    OUT compactions bigint, OUT stolen_rows bigint, OUT retired_chains int,
    OUT last_maintenance timestamptz, OUT quantizers_fitted int, OUT l0_in_graph bigint)
    AS 'MODULE_PATHNAME' LANGUAGE C STRICT;
COMMENT ON FUNCTION drift_index_stats(regclass) IS 'what a drift index holds and what maintenance has done';

CREATE FUNCTION drift_buckets(index regclass,
    OUT bucket int, OUT entries bigint, OUT dead bigint, OUT free_slots bigint, OUT pages bigint,
    OUT temperature float8, OUT radius float8, OUT moved float8) RETURNS SETOF record
    AS 'MODULE_PATHNAME' LANGUAGE C STRICT;
COMMENT ON FUNCTION drift_buckets(regclass) IS 'one row per bucket of a drift index: size, dead entries, temperature, radius, distance its centroid has moved since build';

CREATE FUNCTION drift_maintain(index regclass,
    OUT flushed_rows bigint, OUT splits int, OUT merges int, OUT compactions int,
    OUT stolen_rows bigint, OUT released_chains int, OUT requantized bool, OUT seeded_buckets int)
    AS 'MODULE_PATHNAME' LANGUAGE C STRICT;
COMMENT ON FUNCTION drift_maintain(regclass) IS 'one maintenance pass over a drift index: flush L0 (seeding buckets for rows no bucket reaches), split, merge, compact, free retired pages';

CREATE FUNCTION drift_verify(index regclass, OUT blkno bigint, OUT problem text) RETURNS SETOF record
    AS 'MODULE_PATHNAME' LANGUAGE C STRICT;
COMMENT ON FUNCTION drift_verify(regclass) IS 'structural check of a drift index: one row per problem, none when healthy';
