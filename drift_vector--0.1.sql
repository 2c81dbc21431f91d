-- drift_vector 0.1: drift operator classes for pgvector's vector and halfvec,
-- ordering by pgvector's own operators, so queries do not change. drift reads
-- both types by their layout (support function 2); it never calls pgvector.

\echo Use "CREATE EXTENSION drift_vector" to load this file. \quit

CREATE FUNCTION drift_vector_l2_support(internal) RETURNS internal AS 'MODULE_PATHNAME' LANGUAGE C;
CREATE FUNCTION drift_vector_ip_support(internal) RETURNS internal AS 'MODULE_PATHNAME' LANGUAGE C;
CREATE FUNCTION drift_vector_cosine_support(internal) RETURNS internal AS 'MODULE_PATHNAME' LANGUAGE C;
CREATE FUNCTION drift_halfvec_l2_support(internal) RETURNS internal AS 'MODULE_PATHNAME' LANGUAGE C;
CREATE FUNCTION drift_halfvec_ip_support(internal) RETURNS internal AS 'MODULE_PATHNAME' LANGUAGE C;
CREATE FUNCTION drift_halfvec_cosine_support(internal) RETURNS internal AS 'MODULE_PATHNAME' LANGUAGE C;

CREATE OPERATOR CLASS drift_vector_l2_ops DEFAULT FOR TYPE vector USING drift AS
    OPERATOR 1 <-> (vector, vector) FOR ORDER BY float_ops,
    FUNCTION 1 l2_distance(vector, vector),
    FUNCTION 2 drift_vector_l2_support(internal);
CREATE OPERATOR CLASS drift_vector_ip_ops FOR TYPE vector USING drift AS
    OPERATOR 1 <#> (vector, vector) FOR ORDER BY float_ops,
    FUNCTION 1 vector_negative_inner_product(vector, vector),
    FUNCTION 2 drift_vector_ip_support(internal);
CREATE OPERATOR CLASS drift_vector_cosine_ops FOR TYPE vector USING drift AS
    OPERATOR 1 <=> (vector, vector) FOR ORDER BY float_ops,
    FUNCTION 1 cosine_distance(vector, vector),
    FUNCTION 2 drift_vector_cosine_support(internal);

-- halfvec indexes store full vectors and centroids in half precision (up to
-- 4,000 dimensions) unless built WITH (precision = single).
CREATE OPERATOR CLASS drift_halfvec_l2_ops DEFAULT FOR TYPE halfvec USING drift AS
    OPERATOR 1 <-> (halfvec, halfvec) FOR ORDER BY float_ops,
    FUNCTION 1 l2_distance(halfvec, halfvec),
    FUNCTION 2 drift_halfvec_l2_support(internal);
CREATE OPERATOR CLASS drift_halfvec_ip_ops FOR TYPE halfvec USING drift AS
    OPERATOR 1 <#> (halfvec, halfvec) FOR ORDER BY float_ops,
    FUNCTION 1 halfvec_negative_inner_product(halfvec, halfvec),
    FUNCTION 2 drift_halfvec_ip_support(internal);
CREATE OPERATOR CLASS drift_halfvec_cosine_ops FOR TYPE halfvec USING drift AS
    OPERATOR 1 <=> (halfvec, halfvec) FOR ORDER BY float_ops,
    FUNCTION 1 cosine_distance(halfvec, halfvec),
    FUNCTION 2 drift_halfvec_cosine_support(internal);
