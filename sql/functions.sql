-- Distance functions and operators on real[], and their input checks.
CREATE EXTENSION drift;

SELECT '{0,0}'::real[] <-> '{3,4}'::real[] AS l2;
SELECT '{1,2,3}'::real[] <#> '{4,5,6}'::real[] AS neg_ip;
SELECT drift_inner_product('{1,2,3}', '{4,5,6}') AS ip;
SELECT round(('{1,0}'::real[] <=> '{0,1}'::real[])::numeric, 6) AS cos_orthogonal;
SELECT round(('{1,1}'::real[] <=> '{2,2}'::real[])::numeric, 6) AS cos_parallel;
SELECT round(('{1,1}'::real[] <=> '{-1,-1}'::real[])::numeric, 6) AS cos_opposite;
SELECT '{0,0}'::real[] <=> '{1,1}'::real[] AS cos_zero_is_nan;
-- long vectors exercise the SIMD main loop and its scalar tail
SELECT round(((SELECT array_agg(i::real) FROM generate_series(1, 131) i)
          <-> (SELECT array_agg(0::real) FROM generate_series(1, 131) i))::numeric, 3) AS l2_131;
SELECT NULL::real[] <-> '{1}'::real[] AS null_is_null;

-- bad input
SELECT '{1,2}'::real[] <-> '{1,2,3}'::real[];
SELECT '{}'::real[] <-> '{}'::real[];
SELECT '{{1,2},{3,4}}'::real[] <-> '{{1,2},{3,4}}'::real[];
SELECT '{1,NULL}'::real[] <-> '{1,2}'::real[];
SELECT '{1,NaN}'::real[] <-> '{1,2}'::real[];
SELECT '{1,Infinity}'::real[] <#> '{1,2}'::real[];
SELECT '{-Infinity,1}'::real[] <=> '{1,2}'::real[];
