// real[] arguments: validation, and the SQL distance functions.
#include "drift.h"

#include "../core/distance.hpp"

extern "C" {
#include "catalog/pg_type.h"
#include "utils/float.h"

PG_FUNCTION_INFO_V1(drift_l2_distance);
PG_FUNCTION_INFO_V1(drift_inner_product);
PG_FUNCTION_INFO_V1(drift_negative_inner_product);
PG_FUNCTION_INFO_V1(drift_cosine_distance);
Datum drift_inner_product(PG_FUNCTION_ARGS);
}

const float *drift_array_floats(ArrayType *a, int *dim) {
    if (ARR_ELEMTYPE(a) != FLOAT4OID)
        ereport(ERROR, (errcode(ERRCODE_DATATYPE_MISMATCH), errmsg("drift vectors must be real[]"),
                        errhint("Cast the array with ::real[].")));
    if (ARR_NDIM(a) == 0)
        ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION), errmsg("drift vector must not be empty"),
                        errhint("A vector needs at least one element.")));
    if (ARR_NDIM(a) != 1)
        ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION),
                        errmsg("drift vector must be a one-dimensional array, not %d-dimensional", ARR_NDIM(a)),
                        errhint("Flatten the array, e.g. store '{1,2,3,4}' instead of '{{1,2},{3,4}}'.")));
    if (array_contains_nulls(a))
        ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("drift vector must not contain NULL elements"),
                        errhint("Replace NULL elements with numbers, or store a NULL vector instead.")));
    int n = ARR_DIMS(a)[0];
    const float *v = (const float *) ARR_DATA_PTR(a);
    for (int i = 0; i < n; i++)
        if (!std::isfinite(v[i]))
            ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION),
                            errmsg("drift vector must not contain NaN or infinity (element %d is %s)", i + 1,
                                   std::isnan(v[i]) ? "NaN" : "infinite"),
                            errhint("Remove or replace non-finite values before storing the vector.")));
    *dim = n;
    return v;
}

// Both arguments of a distance function, checked to be of equal dimension.
static int distance_args(FunctionCallInfo fcinfo, const float **a, const float **b) {
    int da, db;
    *a = drift_array_floats(PG_GETARG_ARRAYTYPE_P(0), &da);
    *b = drift_array_floats(PG_GETARG_ARRAYTYPE_P(1), &db);
    if (da != db)
        ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION), errmsg("different vector dimensions %d and %d", da, db),
                        errhint("Both vectors of a distance must have the same number of elements.")));
    return da;
}

// L2 distance between two vectors.
Datum drift_l2_distance(PG_FUNCTION_ARGS) {
    return drift_guard("distance", [&]() -> Datum {
        const float *a, *b;
        int n = distance_args(fcinfo, &a, &b);
        PG_RETURN_FLOAT8(std::sqrt(double(drift::kernels().l2sq(a, b, n))));
    });
}

// Inner product of two vectors.
Datum drift_inner_product(PG_FUNCTION_ARGS) {
    return drift_guard("distance", [&]() -> Datum {
        const float *a, *b;
        int n = distance_args(fcinfo, &a, &b);
        PG_RETURN_FLOAT8(double(drift::kernels().dot(a, b, n)));
    });
}

// Negative inner product (smaller is more similar), for <#>.
Datum drift_negative_inner_product(PG_FUNCTION_ARGS) {
    return drift_guard("distance", [&]() -> Datum {
        const float *a, *b;
        int n = distance_args(fcinfo, &a, &b);
        PG_RETURN_FLOAT8(-double(drift::kernels().dot(a, b, n)));
    });
}

// Cosine distance 1 - cos(a, b); NaN when either vector is zero.
Datum drift_cosine_distance(PG_FUNCTION_ARGS) {
    return drift_guard("distance", [&]() -> Datum {
        const float *a, *b;
        int n = distance_args(fcinfo, &a, &b);
        const drift::Kernels &k = drift::kernels();
        double na = k.dot(a, a, n), nb = k.dot(b, b, n);
        if (na == 0 || nb == 0) PG_RETURN_FLOAT8(get_float8_nan());
        double c = double(k.dot(a, b, n)) / std::sqrt(na * nb);
        PG_RETURN_FLOAT8(1.0 - Max(-1.0, Min(1.0, c)));
    });
}

float *drift_index_vector(Relation index, Datum value, uint32 expected_dim, drift::Metric metric, uint32 *dim) {
    ArrayType *a = DatumGetArrayTypeP(value);
    int n;
    const float *v = drift_array_floats(a, &n);
    if (uint32(n) > drift::kMaxDim)
        ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
                        errmsg("vector has %d dimensions, more than the %u a drift index supports", n, drift::kMaxDim),
                        errhint("Reduce the dimension (e.g. with PCA) before indexing.")));
    if (expected_dim != 0 && uint32(n) != expected_dim)
        ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION),
                        errmsg("vector has %d dimensions, but index \"%s\" has %u", n, RelationGetRelationName(index),
                               expected_dim),
                        errhint("Every vector in a drift index must have the same dimension.")));
    float *out = (float *) palloc(sizeof(float) * n);
    memcpy(out, v, sizeof(float) * n);
    if (metric == drift::Metric::Cosine) drift::normalize(out, n);
    *dim = uint32(n);
    return out;
}
