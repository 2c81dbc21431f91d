// Run-time choice of the distance kernels and the scalar fallback.
#include "distance.hpp"

#include <cmath>

#include "half.hpp"

#if defined(__x86_64__)
#include <cpuid.h>

#include <xsimd/config/xsimd_cpuid.hpp>
#endif

namespace drift {

namespace simd {
#if defined(__x86_64__)
Kernels kernels_sse2();
Kernels kernels_avx2();
Kernels kernels_avx512();
#endif
}  // namespace simd

namespace {

// Plain loops, for CPUs without a SIMD set and as the reference of last resort.
float scalar_l2sq(const float *a, const float *b, size_t n) {
    float s = 0;
    for (size_t i = 0; i < n; ++i) s += (a[i] - b[i]) * (a[i] - b[i]);
    return s;
}
float scalar_dot(const float *a, const float *b, size_t n) {
    float s = 0;
    for (size_t i = 0; i < n; ++i) s += a[i] * b[i];
    return s;
}
float scalar_sq8_l2(const float *q, const float *w, const uint8_t *c, size_t n) {
    float s = 0;
    for (size_t i = 0; i < n; ++i) s += w[i] * (q[i] - c[i]) * (q[i] - c[i]);
    return s;
}
float scalar_sq8_dot(const float *q, const uint8_t *c, size_t n) {
    float s = 0;
    for (size_t i = 0; i < n; ++i) s += q[i] * c[i];
    return s;
}
void scalar_l2sq_x4(const float *const *q, const float *c, size_t n, float *out) {
    for (size_t j = 0; j < 4; ++j) out[j] = scalar_l2sq(q[j], c, n);
}

float scalar_sign_dot(const float *v, const uint8_t *bits, size_t n) {
    float s = 0;
    for (size_t i = 0; i < n; ++i) s += ((bits[i / 8] >> (i % 8)) & 1) ? v[i] : -v[i];
    return s;
}

void scalar_dot_4x2(const float *const *x, const float *c0, const float *c1, size_t n, float *out) {
    for (size_t i = 0; i < 4; ++i) {
        out[2 * i] = scalar_dot(x[i], c0, n);
        out[2 * i + 1] = scalar_dot(x[i], c1, n);
    }
}

// All kernel sets this CPU supports, best last.
struct Registry {
    Kernels sets[4];
    size_t n = 0;
    Registry() {
        sets[n++] = Kernels{"scalar",       scalar_l2sq,    scalar_dot,     scalar_sq8_l2, scalar_sq8_dot,
                            scalar_l2sq_x4, scalar_dot_4x2, halves_to_float_scalar, scalar_sign_dot};
#if defined(__x86_64__)
        auto cpu = xsimd::available_architectures();
        unsigned a, b, c, d;
        bool f16c = __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C);  // (the AVX2 and AVX-512 sets use it)
        if (cpu.sse2) sets[n++] = simd::kernels_sse2();
        if (cpu.avx2 && cpu.fma3_avx2 && f16c) sets[n++] = simd::kernels_avx2();
        if (cpu.avx512bw && f16c) sets[n++] = simd::kernels_avx512();
#endif
    }
};

const Registry &registry() {
    static const Registry r;
    return r;
}

}  // namespace

const Kernels &kernels() {
    static const Kernels &best = registry().sets[registry().n - 1];
    return best;
}

size_t available_kernels(const Kernels **out, size_t max) {
    const Registry &r = registry();
    size_t n = 0;
    for (; n < r.n && n < max; ++n) out[n] = &r.sets[n];
    return n;
}

bool normalize(float *v, size_t n) {
    float norm = std::sqrt(kernels().dot(v, v, n));
    if (!(norm > 0.0f)) return false;
    for (size_t i = 0; i < n; ++i) v[i] /= norm;
    return true;
}

}  // namespace drift
