-- drift 0.1 -> 0.2: every operator class gains support function 2, which
-- names its column type's reader and its metric (indexes keep their pages).

\echo Use "ALTER EXTENSION drift UPDATE TO '0.2'" to load this file. \quit

CREATE FUNCTION drift_real_l2_support(internal) RETURNS internal AS 'MODULE_PATHNAME' LANGUAGE C;
CREATE FUNCTION drift_real_ip_support(internal) RETURNS internal AS 'MODULE_PATHNAME' LANGUAGE C;
CREATE FUNCTION drift_real_cosine_support(internal) RETURNS internal AS 'MODULE_PATHNAME' LANGUAGE C;

ALTER OPERATOR FAMILY drift_l2_ops USING drift ADD FUNCTION 2 (real[], real[]) drift_real_l2_support(internal);
ALTER OPERATOR FAMILY drift_ip_ops USING drift ADD FUNCTION 2 (real[], real[]) drift_real_ip_support(internal);
ALTER OPERATOR FAMILY drift_cosine_ops USING drift ADD FUNCTION 2 (real[], real[]) drift_real_cosine_support(internal);
