// SQ8 scalar quantizer: one byte per dimension, with a per-dimension range
// clipped at percentiles of a training sample.
#pragma once

#include "core.hpp"

namespace drift {

// A fitted quantizer; lo and scale point to dim floats each (caller memory).
struct Sq8 {
    size_t dim;
    const float *lo;
    const float *scale;
};

// Fits lo/scale per dimension from n sample rows: the range is the
// clip_pct-th to (100 - clip_pct)-th percentile of that dimension (the
// dimensions split over `threads` threads).
void sq8_fit(const float *data, size_t n, size_t dim, float clip_pct, float *lo, float *scale, unsigned threads = 1);

// Encodes x into code (dim bytes), clamping to the fitted range.
void sq8_encode(const Sq8 &q, const float *x, uint8_t *code);

// Decodes code into x (dim floats).
void sq8_decode(const Sq8 &q, const uint8_t *code, float *x);

// The per-query table for asymmetric distances against codes: for L2,
// a[j] = (q[j] - lo[j]) / scale[j] and b[j] = scale[j]^2; for inner
// products, a[j] = q[j] * scale[j] and the returned bias is sum q[j] lo[j].
struct Sq8Query {
    Metric metric;
    size_t dim;
    float *a;
    float *b;
    float bias;
    float err; /* L2: norm of the largest rounding errors; inner products: their largest effect */
};

// Fills the per-query table t (a and b point to dim floats each).
void sq8_prepare(const Sq8 &q, Metric m, const float *query, Sq8Query &t);

// Distance of the query to a code, in the metric's ordering units (as
// order_distance would give for the decoded vector).
float sq8_distance(const Sq8Query &t, const uint8_t *code);

// The smallest exact distance (ordering units) a vector whose code is at
// distance `approx` can have, when each of its coordinates lies within the
// quantizer's range (coded to within half a step): for L2 (squared), the
// error e of the decoded vector bounds it as (sqrt(approx) - |e|)^2; for
// inner products, |q . e|.
float sq8_lower_bound(const Sq8Query &t, float approx);

}  // namespace drift
