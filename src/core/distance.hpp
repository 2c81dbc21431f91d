// Distance kernels on float vectors and on SQ8 codes, dispatched once to the
// best SIMD implementation the CPU supports.
#pragma once

#include "core.hpp"

namespace drift {

// One set of kernels compiled for one instruction set.
struct Kernels {
    const char *name;
    // Squared L2 distance of two float vectors.
    float (*l2sq)(const float *a, const float *b, size_t n);
    // Inner product of two float vectors.
    float (*dot)(const float *a, const float *b, size_t n);
    // Weighted squared L2 between a query in code space and an SQ8 code:
    // sum_j w[j] * (q[j] - code[j])^2.
    float (*sq8_l2)(const float *q, const float *w, const uint8_t *code, size_t n);
    // Inner product of a scaled query and an SQ8 code: sum_j q[j] * code[j].
    float (*sq8_dot)(const float *q, const uint8_t *code, size_t n);
    // Squared L2 distances of four vectors q[0..3] to one vector c, into out[0..3].
    void (*l2sq_x4)(const float *const *q, const float *c, size_t n, float *out);
    // Inner products of four vectors x[0..3] with two vectors c0, c1: out[2i + j] = x[i] . c_j.
    void (*dot_4x2)(const float *const *x, const float *c0, const float *c1, size_t n, float *out);
    // Widens n IEEE half-precision values to floats.
    void (*halves_to_float)(const uint16_t *h, float *out, size_t n);
    // Sum of v[i] where bit i of bits (bit i % 8 of byte i / 8) is set,
    // minus v[i] where it is not; n a multiple of 8.
    float (*sign_dot)(const float *v, const uint8_t *bits, size_t n);
};

// The kernels chosen for this CPU (chosen on first use; call once at load).
const Kernels &kernels();

// Every kernel set this CPU can run, best last (for tests and benchmarks).
size_t available_kernels(const Kernels **out, size_t max);

// Distance of two float vectors as the index orders them: squared L2,
// negative inner product, or cosine distance of unit vectors (1 - dot).
inline float order_distance(Metric m, const float *a, const float *b, size_t n) {
    const Kernels &k = kernels();
    switch (m) {
        case Metric::L2: return k.l2sq(a, b, n);
        case Metric::InnerProduct: return -k.dot(a, b, n);
        case Metric::Cosine: return 1.0f - k.dot(a, b, n);
    }
    return 0.0f;
}

// Scales v to unit length in place; returns false (and leaves v) if its norm is 0.
bool normalize(float *v, size_t n);

}  // namespace drift
