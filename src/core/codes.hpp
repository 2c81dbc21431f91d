// Code kinds: what a bucket keeps of each row for the scan's first pass.
// One interface over SQ8 (sq8.hpp) and RaBitQ (rabitq.hpp) codes, so the
// access method fits, encodes and scores codes without knowing their kind.
#pragma once

#include "rabitq.hpp"
#include "sq8.hpp"

namespace drift {

// The values are stored in the metapage.
enum class CodeKind : uint16_t { Sq8 = 0, RaBitQ = 1 };

// What codes are made with: SQ8's lo and scale (dim floats each, caller
// memory), or for RaBitQ the rotated centre of the bucket being coded in a
// (rabitq_padded(dim) floats; b unused).
struct Quantizer {
    CodeKind kind;
    size_t dim;
    const float *a;
    const float *b;
};

// The code kind an index of width dim gets unless its codes option names
// one (docs/usage.md gives the measurements behind it).
CodeKind default_code_kind(size_t dim);

// Bytes of one code.
inline size_t code_bytes(CodeKind kind, size_t dim) {
    return kind == CodeKind::RaBitQ ? rabitq_code_bytes(dim) : dim;
}

// Fits the index-wide quantizer of `kind` to n sample rows into a and b
// (dim floats each; for RaBitQ the rows' mean and spread, see rabitq_fit);
// clip_pct is SQ8's (see sq8_fit).
inline void quantizer_fit(CodeKind kind, const float *data, size_t n, size_t dim, float clip_pct, float *a, float *b,
                          unsigned threads = 1) {
    if (kind == CodeKind::RaBitQ)
        rabitq_fit(data, n, dim, a, b);
    else
        sq8_fit(data, n, dim, clip_pct, a, b, threads);
}

// Encodes x into code (code_bytes(q.kind, q.dim) bytes).
inline void encode(const Quantizer &q, const float *x, uint8_t *code) {
    if (q.kind == CodeKind::RaBitQ)
        rabitq_encode(q.a, q.dim, x, code);
    else
        sq8_encode(Sq8{q.dim, q.a, q.b}, x, code);
}

// True if enough of the n rows lie where the index-wide quantizer codes
// them poorly that it should be fitted again: for SQ8, rows_out_of_range in
// maintenance.hpp; never for RaBitQ, whose codes are relative to each
// bucket's centre.
bool quantizer_misfits(const Quantizer &q, const float *rows, size_t n);

// A per-query table for one quantizer.
struct CodeQuery {
    CodeKind kind;
    Sq8Query sq8;
    RabitqQuery rabitq;
};

// Floats of memory code_prepare needs for dim dimensions.
inline size_t code_query_floats(CodeKind kind, size_t dim) {
    return 2 * (kind == CodeKind::RaBitQ ? rabitq_padded(dim) : dim);
}

// Fills t for query under quantizer q (for RaBitQ only its kind and dim
// count: code_set_centre gives each bucket's centre); mem holds
// code_query_floats floats.
void code_prepare(const Quantizer &q, Metric m, const float *query, CodeQuery &t, float *mem);

// Points a RaBitQ table at the bucket whose rotated centre is rc (for SQ8, nothing).
inline void code_set_centre(CodeQuery &t, const float *rc) {
    if (t.kind == CodeKind::RaBitQ) rabitq_set_centre(t.rabitq, rc);
}

// The estimated distance of the query to a code (the metric's ordering
// units), and in *lower the smallest the exact one can be.
inline float code_distance(const CodeQuery &t, const uint8_t *code, float *lower) {
    if (t.kind == CodeKind::RaBitQ) return rabitq_distance(t.rabitq, code, lower);
    float d = sq8_distance(t.sq8, code);
    *lower = sq8_lower_bound(t.sq8, d);
    return d;
}

}  // namespace drift
