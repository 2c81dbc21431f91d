// The kernels, written once, generic over the xsimd architecture. Each
// simd/kernels_<arch>.cpp includes this file and instantiates it with its own
// compiler flags; distance.cpp picks one at run time.
#pragma once

#include <xsimd/xsimd.hpp>

#include "../distance.hpp"
#include "../half.hpp"

#if defined(__SSE2__)
#include <immintrin.h>
#endif

namespace drift::simd {

// Loads of one step, as a batch (main loop) or one scalar (tail).
template <class B> struct Lane;

template <> struct Lane<float> {
    static float f32(const float *p) { return *p; }
    static float u8(const uint8_t *p) { return float(*p); }
    static float madd(float a, float b, float c) { return a * b + c; }
    static float sum(float v) { return v; }
};

template <class A> struct Lane<xsimd::batch<float, A>> {
    using B = xsimd::batch<float, A>;
    static B f32(const float *p) { return B::load_unaligned(p); }
    static B madd(B a, B b, B c) { return xsimd::fma(a, b, c); }
    static float sum(B v) { return xsimd::hadd(v); }
    // Widens B::size bytes to floats, with the instruction the ISA has.
    static B u8(const uint8_t *p) {
#if defined(__AVX512F__)
        if constexpr (B::size == 16)
            return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i *>(p))));
#endif
#if defined(__AVX2__)
        if constexpr (B::size == 8)
            return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i *>(p))));
#endif
#if defined(__SSE2__)
        if constexpr (B::size == 4) {
            int32_t w;
            __builtin_memcpy(&w, p, 4);
            __m128i x = _mm_cvtsi32_si128(w);
            __m128i z = _mm_setzero_si128();
            return _mm_cvtepi32_ps(_mm_unpacklo_epi16(_mm_unpacklo_epi8(x, z), z));
        }
#endif
        alignas(64) float tmp[B::size];
        for (size_t i = 0; i < B::size; ++i) tmp[i] = float(p[i]);
        return B::load_aligned(tmp);
    }
};

// Runs body over [0, n): four batch accumulators in the main loop (a
// multiply-add's latency is four cycles: fewer chains leave the units
// idle), then one batch, then scalars for the tail. body(acc, i, lane)
// returns the new acc.
// Always inlined: passed out of line, a body capturing three pointers goes
// through the stack and costs more than a 128-d kernel.
template <class A, class Body>
__attribute__((always_inline)) inline float reduce(size_t n, const Body &body) {
    using B = xsimd::batch<float, A>;
    constexpr size_t W = B::size;
    B acc0(0.0f), acc1(0.0f), acc2(0.0f), acc3(0.0f);
    size_t i = 0;
    for (; i + 4 * W <= n; i += 4 * W) {
        acc0 = body(acc0, i, Lane<B>{});
        acc1 = body(acc1, i + W, Lane<B>{});
        acc2 = body(acc2, i + 2 * W, Lane<B>{});
        acc3 = body(acc3, i + 3 * W, Lane<B>{});
    }
    for (; i + W <= n; i += W) acc0 = body(acc0, i, Lane<B>{});
    float s = Lane<B>::sum((acc0 + acc1) + (acc2 + acc3));
    for (; i < n; ++i) s = body(s, i, Lane<float>{});
    return s;
}

// Runs body over [0, n) with N accumulators at once (N outputs): batches in
// the main loop, scalars for the tail. body(acc, i, lane) updates acc[0..N).
template <class A, size_t N, class Body>
__attribute__((always_inline)) inline void reduce_n(size_t n, const Body &body, float *out) {
    using B = xsimd::batch<float, A>;
    constexpr size_t W = B::size;
    B acc[N];
    for (size_t j = 0; j < N; ++j) acc[j] = B(0.0f);
    size_t i = 0;
    for (; i + W <= n; i += W) body(acc, i, Lane<B>{});
    float s[N];
    for (size_t j = 0; j < N; ++j) s[j] = Lane<B>::sum(acc[j]);
    for (; i < n; ++i) body(s, i, Lane<float>{});
    for (size_t j = 0; j < N; ++j) out[j] = s[j];
}

template <class A>
float l2sq(const float *a, const float *b, size_t n) {
    return reduce<A>(n, [=](auto acc, size_t i, auto L) {
        auto d = L.f32(a + i) - L.f32(b + i);
        return L.madd(d, d, acc);
    });
}

template <class A>
float dot(const float *a, const float *b, size_t n) {
    return reduce<A>(n, [=](auto acc, size_t i, auto L) { return L.madd(L.f32(a + i), L.f32(b + i), acc); });
}

template <class A>
float sq8_l2(const float *q, const float *w, const uint8_t *code, size_t n) {
    return reduce<A>(n, [=](auto acc, size_t i, auto L) {
        auto d = L.f32(q + i) - L.u8(code + i);
        return L.madd(L.f32(w + i) * d, d, acc);
    });
}

template <class A>
float sq8_dot(const float *q, const uint8_t *code, size_t n) {
    return reduce<A>(n, [=](auto acc, size_t i, auto L) { return L.madd(L.f32(q + i), L.u8(code + i), acc); });
}

template <class A>
void l2sq_x4(const float *const *q, const float *c, size_t n, float *out) {
    const float *q0 = q[0], *q1 = q[1], *q2 = q[2], *q3 = q[3];
    reduce_n<A, 4>(
        n,
        [=](auto *acc, size_t i, auto L) {
            auto cv = L.f32(c + i);
            auto d0 = L.f32(q0 + i) - cv, d1 = L.f32(q1 + i) - cv, d2 = L.f32(q2 + i) - cv, d3 = L.f32(q3 + i) - cv;
            acc[0] = L.madd(d0, d0, acc[0]);
            acc[1] = L.madd(d1, d1, acc[1]);
            acc[2] = L.madd(d2, d2, acc[2]);
            acc[3] = L.madd(d3, d3, acc[3]);
        },
        out);
}

// Inner products of four rows x[0..3] with two vectors c0, c1: out[2i + j]
// = x[i] . c_j. Eight sums side by side, each step's loads shared: the
// multiply-adds, not the loads, set the pace.
template <class A>
void dot_4x2(const float *const *x, const float *c0, const float *c1, size_t n, float *out) {
    const float *x0 = x[0], *x1 = x[1], *x2 = x[2], *x3 = x[3];
    reduce_n<A, 8>(
        n,
        [=](auto *acc, size_t i, auto L) {
            auto a = L.f32(c0 + i), b = L.f32(c1 + i);
            auto r0 = L.f32(x0 + i), r1 = L.f32(x1 + i), r2 = L.f32(x2 + i), r3 = L.f32(x3 + i);
            acc[0] = L.madd(r0, a, acc[0]);
            acc[1] = L.madd(r0, b, acc[1]);
            acc[2] = L.madd(r1, a, acc[2]);
            acc[3] = L.madd(r1, b, acc[3]);
            acc[4] = L.madd(r2, a, acc[4]);
            acc[5] = L.madd(r2, b, acc[5]);
            acc[6] = L.madd(r3, a, acc[6]);
            acc[7] = L.madd(r3, b, acc[7]);
        },
        out);
}

// The signs of each byte's eight bits as floats: +1 for a set bit, -1 for a clear one.
struct SignTable {
    alignas(64) float v[256][8];
    constexpr SignTable() : v() {
        for (int b = 0; b < 256; ++b)
            for (int i = 0; i < 8; ++i) v[b][i] = ((b >> i) & 1) ? 1.0f : -1.0f;
    }
};
inline constexpr SignTable kSigns{};

// sum_i (bit i set ? v[i] : -v[i]), n a multiple of 8: each byte of bits
// picks its eight signs from a table (AVX-512: a mask blend of two bytes).
template <class A>
float sign_dot(const float *v, const uint8_t *bits, size_t n) {
    using B = xsimd::batch<float, A>;
    constexpr size_t W = B::size;
    size_t i = 0;
    float s = 0.0f;
#if defined(__AVX512F__)
    if constexpr (W == 16) {
        const __m512 zero = _mm512_set1_ps(0.0f);  // (GCC 12 warns on _mm512_setzero_ps)
        __m512 acc0 = zero, acc1 = zero;
        for (; i + 32 <= n; i += 32) {
            uint16_t m0, m1;
            __builtin_memcpy(&m0, bits + i / 8, 2);
            __builtin_memcpy(&m1, bits + i / 8 + 2, 2);
            __m512 x0 = _mm512_loadu_ps(v + i), x1 = _mm512_loadu_ps(v + i + 16);
            acc0 = _mm512_add_ps(acc0, _mm512_mask_blend_ps(m0, _mm512_sub_ps(zero, x0), x0));
            acc1 = _mm512_add_ps(acc1, _mm512_mask_blend_ps(m1, _mm512_sub_ps(zero, x1), x1));
        }
        s = xsimd::hadd(B(_mm512_add_ps(acc0, acc1)));
    }
#endif
    if constexpr (W <= 8) {
        B acc0(0.0f), acc1(0.0f);
        for (; i + 16 <= n; i += 16) {
            const float *s0 = kSigns.v[bits[i / 8]], *s1 = kSigns.v[bits[i / 8 + 1]];
            for (size_t h = 0; h < 8; h += W) {
                acc0 = xsimd::fma(B::load_unaligned(v + i + h), B::load_aligned(s0 + h), acc0);
                acc1 = xsimd::fma(B::load_unaligned(v + i + 8 + h), B::load_aligned(s1 + h), acc1);
            }
        }
        s = xsimd::hadd(acc0 + acc1);
    }
    for (; i < n; i += 8) {
        const float *sg = kSigns.v[bits[i / 8]];
        for (size_t h = 0; h < 8; ++h) s += v[i + h] * sg[h];
    }
    return s;
}

// Half to float with F16C, 8 at a time, where the ISA file is built with it.
inline void halves_to_float(const uint16_t *h, float *out, size_t n) {
    size_t i = 0;
#if defined(__F16C__)
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(out + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i *>(h + i))));
#endif
    halves_to_float_scalar(h + i, out + i, n - i);
}

// The kernel set of architecture A.
template <class A>
Kernels make_kernels(const char *name) {
    return Kernels{name, &l2sq<A>, &dot<A>, &sq8_l2<A>, &sq8_dot<A>, &l2sq_x4<A>, &dot_4x2<A>, &halves_to_float, &sign_dot<A>};
}

}  // namespace drift::simd
