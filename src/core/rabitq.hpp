// RaBitQ-style binary codes: one bit per dimension of the row's offset from
// its bucket's centre, after a fixed random rotation, with the numbers that
// turn the bits into an unbiased estimate of the row's distance to any
// query and a bound on that estimate's error (Gao and Long, "RaBitQ",
// SIGMOD 2024).
//
// Everything happens in the rotated space (R: rabitq_rotate()): a bucket's
// centre is kept rotated, rc = R c, and a row o is coded as u = R o - rc,
// r = |u|, bits b_i = [u_i > 0]. With x = (2b - 1) / sqrt(D), the code keeps
// ip = <x, u / r> (at least 1/sqrt(D)). For the query's offset v = R q - rc,
// <x, v> / ip estimates <u / r, v>, and with high probability the error is
// at most |v| sqrt(1 - ip^2) / ip * eps / sqrt(D - 1).
#pragma once

#include "core.hpp"

namespace drift {

// The bound's eps, in standard deviations of the estimate's error (which
// is about normal): of 100,000 pairs in each of test/unit/core_test.cpp's
// cases, up to 121 broke it (at 4: up to 23; at 5: none). A scan re-ranks
// until no candidate's bound is below its rows (src/am/scan.cpp), so a
// larger eps costs re-ranking and a smaller one order: on SIFT, GloVe and
// MNIST recall was the same from 2 to 4.
constexpr float kRabitqEpsilon = 3.0f;

// Floats a rotated vector takes: dim rounded up to a multiple of 8 (the
// code's bit bytes; the padding is zero).
inline size_t rabitq_padded(size_t dim) { return (dim + 7) / 8 * 8; }

// Bytes of one code: r, 1/ip, the error factor sqrt(1 - ip^2) / ip and
// <rc, u> as floats, then rabitq_padded(dim) / 8 bytes of bits (bit i of
// byte i / 8).
inline size_t rabitq_code_bytes(size_t dim) { return 4 * sizeof(float) + rabitq_padded(dim) / 8; }

// The rotation R: four rounds of seeded random sign flips, each followed
// by a normalized Walsh-Hadamard transform of the first (even rounds) or
// the last (odd rounds) 2^k coordinates, 2^k the largest power of two not
// above dim. Orthogonal, fixed for each dim, O(dim log dim). Writes
// rabitq_padded(dim) floats to out (zeros past dim); x and out may alias.
void rabitq_rotate(const float *x, size_t dim, float *out);

// Fits the mean and each dimension's spread (standard deviation) of n
// sample rows: what an index of RaBitQ codes keeps as its quantizer (its
// codes are made against each bucket's own centre).
void rabitq_fit(const float *data, size_t n, size_t dim, float *mean, float *spread);

// A bucket's rotated centre from its centroid c (dim floats): R c, each
// coordinate clamped to the half-precision range and rounded to a half, in
// halves (what pages keep) and as floats (rc); rabitq_padded(dim) of each.
// Any point serves as a centre, so the rounding costs nothing as long as
// codes and queries use the same one.
void rabitq_centre(const float *c, size_t dim, uint16_t *halves, float *rc);

// Codes x against the rotated centre rc into code (rabitq_code_bytes(dim) bytes).
void rabitq_encode(const float *rc, size_t dim, const float *x, uint8_t *code);

// The per-query table: the rotated query rq = R q (prepared once), and for
// the bucket being scanned v = rq - rc and for inner products and cosine
// bias = <rq, rc> = <q, c> (then <q, o> = <q, c> + <rc, u> + <v, u>, and
// only the last term is estimated: its error grows with |q - c|, not |q|).
struct RabitqQuery {
    Metric metric;
    size_t dim, padded;
    float *rq;           /* padded floats (caller memory) */
    float *v;            /* padded floats (caller memory) */
    float vnorm2;        /* |v|^2 */
    float bias;
    float scale;         /* 1 / sqrt(dim) */
    float err;           /* |v| eps / sqrt(dim - 1) (0 for dim 1: the code is exact) */
};

// Rotates query (dim floats) into t.rq; t.rq and t.v must point to
// rabitq_padded(dim) floats each. Then rabitq_set_centre before scoring.
void rabitq_prepare(size_t dim, Metric m, const float *query, RabitqQuery &t);

// Points t at the bucket whose rotated centre is rc.
void rabitq_set_centre(RabitqQuery &t, const float *rc);

// The estimated distance of the query to a code, in the metric's ordering
// units, and in *lower the smallest the exact distance can be (with high
// probability: see kRabitqEpsilon).
float rabitq_distance(const RabitqQuery &t, const uint8_t *code, float *lower);

}  // namespace drift
