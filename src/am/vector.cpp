// The column types drift indexes: real[], and pgvector's vector and halfvec
// (read by their layout: drift never links pgvector). Validation, the
// operator class descriptors (support function 2) that choose a reader and a
// metric, and the SQL distance functions on real[].
#include "drift.h"

#include "../core/distance.hpp"
#include "../core/half.hpp"

extern "C" {
#include "access/tableam.h"
#include "catalog/pg_type.h"
#include "executor/tuptable.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/builtins.h"
#include "utils/float.h"
#include "utils/syscache.h"

PG_FUNCTION_INFO_V1(drift_l2_distance);
PG_FUNCTION_INFO_V1(drift_inner_product);
PG_FUNCTION_INFO_V1(drift_negative_inner_product);
PG_FUNCTION_INFO_V1(drift_cosine_distance);
Datum drift_inner_product(PG_FUNCTION_ARGS);
}

// Checks that n floats are finite (every reader refuses NaN and infinity).
static void check_finite(const float *v, int n) {
    // First with the SIMD kernel: sum (v - v)^2 is 0 for finite elements
    // and NaN as soon as one is NaN or infinite; then find the one to name.
    if (drift::kernels().l2sq(v, v, size_t(n)) == 0.0f) return;
    for (int i = 0; i < n; i++)
        if (!std::isfinite(v[i]))
            ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION),
                            errmsg("drift vector must not contain NaN or infinity (element %d is %s)", i + 1,
                                   std::isnan(v[i]) ? "NaN" : "infinite"),
                            errhint("Remove or replace non-finite values before storing the vector.")));
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
    check_finite(v, n);
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

// The header pgvector's vector and halfvec share: varlena length, dimension,
// a reserved word, then dim elements (float4 or IEEE half).
struct PgvectorHeader {
    int32 vl_len_;
    int16 dim;
    int16 unused;
};

// The elements of a pgvector datum of elem-byte elements, checked against its size.
static const char *pgvector_elems(Datum value, Size elem, const char *type, int *dim) {
    struct varlena *v = PG_DETOAST_DATUM(value);
    Size size = VARSIZE_ANY(v);
    const PgvectorHeader *h = (const PgvectorHeader *) v;
    if (size < sizeof(PgvectorHeader) || h->dim < 1 ||
        size < sizeof(PgvectorHeader) + elem * Size(h->dim))
        ereport(ERROR, (errcode(ERRCODE_DATA_CORRUPTED), errmsg("malformed %s value (%zu bytes)", type, size),
                        errhint("The value does not have pgvector's %s layout.", type)));
    *dim = h->dim;
    return (const char *) v + sizeof(PgvectorHeader);
}

// A real[] as floats.
static float *read_real(Datum value, int *dim) {
    const float *v = drift_array_floats(DatumGetArrayTypeP(value), dim);
    float *out = (float *) palloc(sizeof(float) * *dim);
    memcpy(out, v, sizeof(float) * *dim);
    return out;
}

// A pgvector vector as floats.
static float *read_vector(Datum value, int *dim) {
    const char *x = pgvector_elems(value, sizeof(float), "vector", dim);
    float *out = (float *) palloc(sizeof(float) * *dim);
    memcpy(out, x, sizeof(float) * *dim);
    check_finite(out, *dim);
    return out;
}

// A pgvector halfvec as floats (exact: every half is a float).
static float *read_halfvec(Datum value, int *dim) {
    // (a detoasted varlena is at least int-aligned, so the halves are too)
    const uint16 *x = (const uint16 *) pgvector_elems(value, sizeof(uint16), "halfvec", dim);
    float *out = (float *) palloc(sizeof(float) * *dim);
    drift::kernels().halves_to_float(x, out, *dim);
    check_finite(out, *dim);
    return out;
}

// Operator class support function 2 of every drift operator class: returns
// the class's DriftOpclass. Called by drift only (its argument is unused).
#define DRIFT_OPCLASS_SUPPORT(fn, type, metric, kind, reader)                  \
    extern "C" {                                                               \
    PG_FUNCTION_INFO_V1(fn);                                                   \
    Datum fn(PG_FUNCTION_ARGS);                                                \
    }                                                                          \
    Datum fn(PG_FUNCTION_ARGS) {                                               \
        static const DriftOpclass oc = {type, drift::Metric::metric, kind, reader}; \
        PG_RETURN_POINTER(&oc);                                                \
    }

DRIFT_OPCLASS_SUPPORT(drift_real_l2_support, "real[]", L2, DRIFT_VEC_FLOAT4, read_real)
DRIFT_OPCLASS_SUPPORT(drift_real_ip_support, "real[]", InnerProduct, DRIFT_VEC_FLOAT4, read_real)
DRIFT_OPCLASS_SUPPORT(drift_real_cosine_support, "real[]", Cosine, DRIFT_VEC_FLOAT4, read_real)
DRIFT_OPCLASS_SUPPORT(drift_vector_l2_support, "vector", L2, DRIFT_VEC_FLOAT4, read_vector)
DRIFT_OPCLASS_SUPPORT(drift_vector_ip_support, "vector", InnerProduct, DRIFT_VEC_FLOAT4, read_vector)
DRIFT_OPCLASS_SUPPORT(drift_vector_cosine_support, "vector", Cosine, DRIFT_VEC_FLOAT4, read_vector)
DRIFT_OPCLASS_SUPPORT(drift_halfvec_l2_support, "halfvec", L2, DRIFT_VEC_HALF, read_halfvec)
DRIFT_OPCLASS_SUPPORT(drift_halfvec_ip_support, "halfvec", InnerProduct, DRIFT_VEC_HALF, read_halfvec)
DRIFT_OPCLASS_SUPPORT(drift_halfvec_cosine_support, "halfvec", Cosine, DRIFT_VEC_HALF, read_halfvec)

const DriftOpclass *drift_opclass_of(FmgrInfo *support) {
    return (const DriftOpclass *) DatumGetPointer(FunctionCall1(support, PointerGetDatum(NULL)));
}

const char *drift_opclass_type_problem(const DriftOpclass *oc, Oid type) {
    HeapTuple tup = SearchSysCache1(TYPEOID, ObjectIdGetDatum(type));
    if (!HeapTupleIsValid(tup)) elog(ERROR, "cache lookup failed for type %u", type);
    bool same = type == FLOAT4ARRAYOID ? strcmp(oc->type, "real[]") == 0
                                       : strcmp(NameStr(((Form_pg_type) GETSTRUCT(tup))->typname), oc->type) == 0;
    ReleaseSysCache(tup);
    return same ? NULL
                : psprintf("drift support function 2 reads %s, but the operator class is for type %s", oc->type,
                           format_type_be(type));
}

const DriftOpclass *drift_index_opclass(Relation index) {
    if (!OidIsValid(index_getprocid(index, 1, DRIFT_SUPPORT_OPCLASS)))
        ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                        errmsg("the operator class of index \"%s\" lacks drift's support function %d",
                               RelationGetRelationName(index), DRIFT_SUPPORT_OPCLASS),
                        errhint("Run ALTER EXTENSION drift UPDATE (and ALTER EXTENSION drift_vector UPDATE).")));
    return drift_opclass_of(index_getprocinfo(index, 1, DRIFT_SUPPORT_OPCLASS));
}

float *drift_index_vector(Relation index, Datum value, uint32 expected_dim, drift::Metric metric, uint16 kind,
                          bool stored, uint32 *dim) {
    int n;
    float *v = drift_index_opclass(index)->read(value, &n);
    if (uint32(n) > drift_max_dim(kind))
        ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
                        errmsg("vector has %d dimensions, more than the %u a drift index %s supports", n,
                               drift_max_dim(kind), kind == DRIFT_VEC_HALF ? "of half precision" : "of single precision"),
                        errhint(kind == DRIFT_VEC_HALF ? "Reduce the dimension (e.g. with PCA) before indexing."
                                                       : "Index with WITH (precision = half) for up to 4000 dimensions, "
                                                         "or reduce the dimension.")));
    if (expected_dim != 0 && uint32(n) != expected_dim)
        ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION),
                        errmsg("vector has %d dimensions, but index \"%s\" has %u", n, RelationGetRelationName(index),
                               expected_dim),
                        errhint("Every vector in a drift index must have the same dimension.")));
    if (metric == drift::Metric::Cosine) drift::normalize(v, n);
    if (stored && kind == DRIFT_VEC_HALF)
        for (int i = 0; i < n; i++) {
            if (!drift::fits_half(v[i]))
                ereport(ERROR, (errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
                                errmsg("element %d (%g) is out of range for index \"%s\", which stores half precision",
                                       i + 1, double(v[i]), RelationGetRelationName(index)),
                                errhint("Half precision holds magnitudes up to 65504: scale the vectors, or index "
                                        "them with precision = single.")));
        }
    *dim = uint32(n);
    return v;
}

void drift_heap_reader_begin(DriftHeapReader *r, Relation index, Relation heap, Snapshot snapshot,
                             const DriftMetaPageData *meta) {
    r->index = index;
    r->heap = heap;
    r->registered = NULL;
    if (snapshot == NULL) {
        // Every row not yet dead to all; out-of-line values are read under
        // the oldest snapshot held, so one is registered if none is (the
        // janitor runs without; a parallel VACUUM worker has its leader's).
        if (GetOldestSnapshot() == NULL) r->registered = RegisterSnapshot(GetLatestSnapshot());
        InitNonVacuumableSnapshot(r->nonvacuumable, GlobalVisTestFor(heap));
        snapshot = &r->nonvacuumable;
    }
    r->snapshot = snapshot;
    r->fetch = table_index_fetch_begin(heap);
    r->slot = table_slot_create(heap, NULL);
    r->attno = index->rd_index->indkey.values[0];  // (the build refused an expression)
    r->nblocks = RelationGetNumberOfBlocks(heap);
    r->tmp = AllocSetContextCreate(CurrentMemoryContext, "drift heap row", ALLOCSET_DEFAULT_SIZES);
    r->dim = meta->dim;
    r->kind = meta->vec_kind;
    r->metric = drift::Metric(meta->metric);
}

const float *drift_heap_vector(DriftHeapReader *r, ItemPointer tid) {
    MemoryContextReset(r->tmp);
    // (A TID past the table's end cannot be live: VACUUM truncates only
    // pages whose rows every index has dropped, under a lock this reader's
    // caller conflicts with.)
    if (ItemPointerGetBlockNumber(tid) >= r->nblocks || r->attno <= 0) return NULL;
    ItemPointerData t = *tid;  // (the fetch moves it along a HOT chain)
    bool call_again = false, all_dead = false, isnull;
    if (!table_index_fetch_tuple(r->fetch, &t, r->snapshot, r->slot, &call_again, &all_dead)) return NULL;
    if (call_again) {
        // Not an MVCC snapshot: every version of the HOT chain a snapshot may
        // still see comes in turn. The index holds the last one's value
        // (older ones differ only if the column was updated before the
        // index was built), so that one is read.
        ItemPointerData last = t;
        while (call_again && table_index_fetch_tuple(r->fetch, &t, r->snapshot, r->slot, &call_again, &all_dead))
            last = t;
        if (!table_tuple_fetch_row_version(r->heap, &last, r->snapshot, r->slot)) return NULL;
    }
    Datum value = slot_getattr(r->slot, r->attno, &isnull);
    if (isnull)  // (rows with NULL are not indexed, and an update of the column is a new TID)
        ereport(ERROR, (errcode(ERRCODE_DATA_CORRUPTED),
                        errmsg("drift index \"%s\" holds row (%u,%u) of table \"%s\", whose column is NULL",
                               RelationGetRelationName(r->index), ItemPointerGetBlockNumber(tid),
                               ItemPointerGetOffsetNumber(tid), RelationGetRelationName(r->heap)),
                        errhint("REINDEX the index.")));
    MemoryContext old = MemoryContextSwitchTo(r->tmp);
    uint32 dim;
    const float *v = drift_index_vector(r->index, value, r->dim, r->metric, r->kind, false, &dim);
    MemoryContextSwitchTo(old);
    ExecClearTuple(r->slot);
    return v;
}

void drift_heap_reader_end(DriftHeapReader *r) {
    ExecDropSingleTupleTableSlot(r->slot);
    table_index_fetch_end(r->fetch);
    MemoryContextDelete(r->tmp);
    if (r->registered != NULL) UnregisterSnapshot(r->registered);
}
