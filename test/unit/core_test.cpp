// Unit tests of src/core: kernels against a double-precision reference,
// SQ8 error bounds, k-means on known clusters, top-k selection.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "core/codes.hpp"
#include "core/distance.hpp"
#include "core/half.hpp"
#include "core/hnsw.hpp"
#include "core/kmeans.hpp"
#include "core/parallel.hpp"
#include "core/maintenance.hpp"
#include "core/routing.hpp"
#include "core/sq8.hpp"
#include "core/topk.hpp"

namespace {

using drift::Metric;

std::vector<float> random_vec(drift::Rng &r, size_t n, float lo = -1, float hi = 1) {
    std::vector<float> v(n);
    for (auto &x : v) x = lo + float(r.uniform()) * (hi - lo);
    return v;
}

// n rows of dim uniform values in [lo, hi), row-major; unit rows if `unit`.
std::vector<float> random_rows(drift::Rng &r, size_t n, size_t dim, float lo = -1, float hi = 1, bool unit = false) {
    std::vector<float> rows;
    for (size_t i = 0; i < n; ++i) {
        auto v = random_vec(r, dim, lo, hi);
        if (unit) drift::normalize(v.data(), dim);
        rows.insert(rows.end(), v.begin(), v.end());
    }
    return rows;
}

double ref_l2sq(const float *a, const float *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; ++i) s += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
    return s;
}

double ref_dot(const float *a, const float *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; ++i) s += double(a[i]) * b[i];
    return s;
}

// Every kernel set on this CPU, for every length class (tails included).
TEST(Kernels, AgreeWithDoubleReference) {
    const drift::Kernels *sets[8];
    size_t nsets = drift::available_kernels(sets, 8);
    ASSERT_GE(nsets, 1u);
    drift::Rng r{1};
    for (size_t n : {1, 3, 7, 8, 15, 16, 17, 31, 33, 64, 100, 128, 257, 768, 2000}) {
        auto a = random_vec(r, n), b = random_vec(r, n);
        std::vector<float> w = random_vec(r, n, 0, 2), q = random_vec(r, n, 0, 255);
        std::vector<uint8_t> code(n);
        for (auto &c : code) c = uint8_t(r.below(256));
        double l2 = ref_l2sq(a.data(), b.data(), n), dp = ref_dot(a.data(), b.data(), n);
        double sq8l2 = 0, sq8dot = 0;
        for (size_t i = 0; i < n; ++i) {
            sq8l2 += double(w[i]) * (q[i] - code[i]) * (q[i] - code[i]);
            sq8dot += double(q[i]) * code[i];
        }
        for (size_t s = 0; s < nsets; ++s) {
            SCOPED_TRACE(std::string(sets[s]->name) + " n=" + std::to_string(n));
            double tol = 1e-5 * n + 1e-6;
            EXPECT_NEAR(sets[s]->l2sq(a.data(), b.data(), n), l2, tol * std::max(1.0, l2));
            EXPECT_NEAR(sets[s]->dot(a.data(), b.data(), n), dp, tol * std::max(1.0, std::fabs(dp)));
            EXPECT_NEAR(sets[s]->sq8_l2(q.data(), w.data(), code.data(), n), sq8l2, tol * std::max(1.0, sq8l2));
            EXPECT_NEAR(sets[s]->sq8_dot(q.data(), code.data(), n), sq8dot, tol * std::max(1.0, sq8dot));
            auto c = random_vec(r, n);
            const float *four[4] = {a.data(), b.data(), w.data(), c.data()};
            float got[4];
            sets[s]->l2sq_x4(four, q.data(), n, got);
            for (size_t j = 0; j < 4; ++j) {
                double want = ref_l2sq(four[j], q.data(), n);
                EXPECT_NEAR(got[j], want, tol * std::max(1.0, want)) << "l2sq_x4 lane " << j;
            }
            float dots[8];
            sets[s]->dot_4x2(four, q.data(), c.data(), n, dots);
            for (size_t i = 0; i < 4; ++i)
                for (size_t j = 0; j < 2; ++j) {
                    double want = ref_dot(four[i], j == 0 ? q.data() : c.data(), n);
                    EXPECT_NEAR(dots[2 * i + j], want, tol * std::max(1.0, std::fabs(want))) << "dot_4x2 " << i << j;
                }
        }
    }
}

// sign_dot on every kernel set against a double reference, for every
// multiple of 8 up past the unrolled loops' widths.
TEST(Kernels, SignDotAgreesWithDoubleReference) {
    const drift::Kernels *sets[8];
    size_t nsets = drift::available_kernels(sets, 8);
    drift::Rng r{7};
    for (size_t n = 8; n <= 1032; n += (n < 80 ? 8 : 248)) {
        auto v = random_vec(r, n);
        std::vector<uint8_t> bits(n / 8);
        for (auto &b : bits) b = uint8_t(r.below(256));
        double want = 0;
        for (size_t i = 0; i < n; ++i) want += ((bits[i / 8] >> (i % 8)) & 1) ? double(v[i]) : -double(v[i]);
        for (size_t s = 0; s < nsets; ++s)
            EXPECT_NEAR(sets[s]->sign_dot(v.data(), bits.data(), n), want, 1e-5 * n) << sets[s]->name << " n=" << n;
    }
}

TEST(Kernels, BestIsChosenOnce) {
    const drift::Kernels *sets[8];
    size_t nsets = drift::available_kernels(sets, 8);
    EXPECT_EQ(&drift::kernels(), sets[nsets - 1]);
    EXPECT_EQ(&drift::kernels(), &drift::kernels());
}

TEST(Distance, OrderDistancePerMetric) {
    float a[3] = {1, 0, 0}, b[3] = {0, 1, 0};
    EXPECT_FLOAT_EQ(drift::order_distance(Metric::L2, a, b, 3), 2.0f);
    EXPECT_FLOAT_EQ(drift::order_distance(Metric::InnerProduct, a, a, 3), -1.0f);
    EXPECT_FLOAT_EQ(drift::order_distance(Metric::Cosine, a, b, 3), 1.0f);
    float z[3] = {0, 0, 0};
    EXPECT_FALSE(drift::normalize(z, 3));
    float v[2] = {3, 4};
    EXPECT_TRUE(drift::normalize(v, 2));
    EXPECT_FLOAT_EQ(v[0], 0.6f);
}

struct Fitted {
    std::vector<float> lo, scale;
    drift::Sq8 q() const { return drift::Sq8{lo.size(), lo.data(), scale.data()}; }
};

Fitted fit(const std::vector<float> &data, size_t n, size_t dim, float clip) {
    Fitted f{std::vector<float>(dim), std::vector<float>(dim)};
    drift::sq8_fit(data.data(), n, dim, clip, f.lo.data(), f.scale.data());
    return f;
}

// Every finite half survives half -> float -> half; inf and NaN are refused.
TEST(Half, EveryHalfRoundTrips) {
    for (uint32_t h = 0; h < 0x10000; ++h) {
        float f = drift::half_to_float(uint16_t(h));
        uint16_t back = 0;
        bool finite = ((h >> 10) & 0x1f) != 0x1f;
        ASSERT_EQ(drift::float_to_half(f, &back), finite) << h;
        if (finite) {
            ASSERT_EQ(back, h) << h;
        } else {
            ASSERT_FALSE(std::isfinite(f)) << h;
        }
    }
}

// float -> half rounds to nearest even like the compiler's own _Float16, on
// every exponent from below the subnormals to past the largest half.
TEST(Half, RoundsLikeTheCompiler) {
    drift::Rng r{7};
    for (int i = 0; i < 400000; ++i) {
        float f = std::ldexp(float(r.uniform()) * 2.0f - 1.0f, int(r.uniform() * 46) - 28);
        uint16_t mine = 0;
        _Float16 ref = (_Float16) f;
        uint16_t ref_bits;
        std::memcpy(&ref_bits, &ref, 2);
        bool fits = std::isfinite(float(ref));
        ASSERT_EQ(drift::float_to_half(f, &mine), fits) << f;
        if (fits) {
            ASSERT_EQ(mine, ref_bits) << f;
        }
    }
    uint16_t h;
    EXPECT_TRUE(drift::float_to_half(drift::kHalfMax, &h));
    EXPECT_EQ(h, 0x7bff);
    EXPECT_FALSE(drift::float_to_half(65520.0f, &h));  // rounds to infinity
    EXPECT_FALSE(drift::float_to_half(-1e30f, &h));
    EXPECT_FALSE(drift::float_to_half(NAN, &h));
    EXPECT_TRUE(drift::float_to_half(-0.0f, &h));
    EXPECT_EQ(h, 0x8000);
    EXPECT_TRUE(drift::float_to_half(1e-9f, &h));  // below the smallest subnormal: zero
    EXPECT_EQ(h, 0);
}

// Every kernel set widens every half exactly as the scalar code does.
TEST(Half, KernelsWidenExactly) {
    std::vector<uint16_t> all(0x10000 + 5);
    for (size_t i = 0; i < all.size(); ++i) all[i] = uint16_t(i * 40503u);
    std::vector<float> want(all.size()), got(all.size());
    drift::halves_to_float_scalar(all.data(), want.data(), all.size());
    const drift::Kernels *sets[8];
    size_t n = drift::available_kernels(sets, 8);
    for (size_t k = 0; k < n; ++k)
        for (size_t len : {size_t(0), size_t(7), size_t(9), all.size()}) {
            std::fill(got.begin(), got.end(), 0.0f);
            sets[k]->halves_to_float(all.data(), got.data(), len);
            ASSERT_EQ(std::memcmp(got.data(), want.data(), len * sizeof(float)), 0) << sets[k]->name << " " << len;
        }
}

TEST(Sq8, RoundTripErrorIsHalfAStep) {
    drift::Rng r{2};
    size_t n = 2000, dim = 37;
    std::vector<float> data = random_rows(r, n, dim, -3, 5);
    Fitted f = fit(data, n, dim, 0.0f);
    std::vector<uint8_t> code(dim);
    std::vector<float> back(dim);
    for (size_t i = 0; i < n; ++i) {
        drift::sq8_encode(f.q(), &data[i * dim], code.data());
        drift::sq8_decode(f.q(), code.data(), back.data());
        for (size_t j = 0; j < dim; ++j) ASSERT_LE(std::fabs(back[j] - data[i * dim + j]), f.scale[j] * 0.5f + 1e-5f);
    }
}

TEST(Sq8, ClippingIgnoresOutliers) {
    size_t n = 1000;
    std::vector<float> data(n);
    for (size_t i = 0; i < n; ++i) data[i] = float(i % 100) / 100.0f;
    data[0] = 1e6f;  // one outlier must not stretch the range
    Fitted f = fit(data, n, 1, 1.0f);
    EXPECT_LT(f.lo[0] + 255 * f.scale[0], 1.5f);
    uint8_t c;
    drift::sq8_encode(f.q(), &data[0], &c);
    EXPECT_EQ(c, 255);  // clamped, not wrapped
    float neg = -50;
    drift::sq8_encode(f.q(), &neg, &c);
    EXPECT_EQ(c, 0);
}

TEST(Sq8, ConstantDimensionIsExact) {
    std::vector<float> data(50, 7.0f);
    Fitted f = fit(data, 50, 1, 1.0f);
    uint8_t c;
    float back;
    drift::sq8_encode(f.q(), &data[0], &c);
    drift::sq8_decode(f.q(), &c, &back);
    EXPECT_FLOAT_EQ(back, 7.0f);
}

TEST(Sq8, AsymmetricDistanceMatchesDecoded) {
    drift::Rng r{3};
    size_t n = 500, dim = 64;
    std::vector<float> data = random_rows(r, n, dim);
    Fitted f = fit(data, n, dim, 1.0f);
    auto query = random_vec(r, dim);
    std::vector<float> a(dim), b(dim), dec(dim);
    std::vector<uint8_t> code(dim);
    for (Metric m : {Metric::L2, Metric::InnerProduct, Metric::Cosine}) {
        drift::Sq8Query t{m, dim, a.data(), b.data(), 0, 0};
        drift::sq8_prepare(f.q(), m, query.data(), t);
        for (size_t i = 0; i < 20; ++i) {
            drift::sq8_encode(f.q(), &data[i * dim], code.data());
            drift::sq8_decode(f.q(), code.data(), dec.data());
            float want = drift::order_distance(m, query.data(), dec.data(), dim);
            EXPECT_NEAR(drift::sq8_distance(t, code.data()), want, 1e-3f * std::max(1.0f, std::fabs(want)));
        }
    }
}

TEST(Sq8, LowerBoundHoldsForInRangeRows) {
    drift::Rng r{4};
    size_t n = 2000, dim = 48;
    std::vector<float> data = random_rows(r, n, dim);
    Fitted f = fit(data, n, dim, 0.0f);  // no clipping: every row is in range
    std::vector<float> a(dim), b(dim);
    std::vector<uint8_t> code(dim);
    for (Metric m : {Metric::L2, Metric::InnerProduct}) {
        auto query = random_vec(r, dim);
        drift::Sq8Query t{m, dim, a.data(), b.data(), 0, 0};
        drift::sq8_prepare(f.q(), m, query.data(), t);
        EXPECT_GT(t.err, 0.0f);
        size_t tight = 0;
        for (size_t i = 0; i < n; ++i) {
            drift::sq8_encode(f.q(), &data[i * dim], code.data());
            float approx = drift::sq8_distance(t, code.data());
            float exact = drift::order_distance(m, query.data(), &data[i * dim], dim);
            float lb = drift::sq8_lower_bound(t, approx);
            ASSERT_LE(lb, exact + 1e-4f * std::max(1.0f, std::fabs(exact)));
            tight += exact - lb < 0.2f * std::max(1.0f, std::fabs(exact));  // and is not vacuous
        }
        EXPECT_GT(tight, n / 2);
    }
}

TEST(Sq8, RejectsBadArguments) {
    float lo, scale, x = 1;
    EXPECT_THROW(drift::sq8_fit(&x, 0, 1, 1.0f, &lo, &scale), drift::Error);
    EXPECT_THROW(drift::sq8_fit(&x, 1, 1, 60.0f, &lo, &scale), drift::Error);
}

// Five well-separated blobs: k-means with k = 5 finds every centre.
// The rotation keeps lengths and inner products (it is orthogonal), is the
// same on every call, and spreads a unit axis over every coordinate.
TEST(RaBitQ, RotationIsOrthogonal) {
    drift::Rng r{11};
    for (size_t dim : {1, 3, 8, 50, 128, 768, 784, 1000}) {
        SCOPED_TRACE(dim);
        auto a = random_vec(r, dim), b = random_vec(r, dim);
        std::vector<float> ra(drift::rabitq_padded(dim)), rb(drift::rabitq_padded(dim)), again(ra.size());
        drift::rabitq_rotate(a.data(), dim, ra.data());
        drift::rabitq_rotate(b.data(), dim, rb.data());
        drift::rabitq_rotate(a.data(), dim, again.data());
        EXPECT_EQ(ra, again);
        EXPECT_NEAR(ref_dot(ra.data(), rb.data(), dim), ref_dot(a.data(), b.data(), dim), 1e-4 * dim);
        EXPECT_NEAR(ref_dot(ra.data(), ra.data(), dim), ref_dot(a.data(), a.data(), dim), 1e-4 * dim);
        for (size_t j = dim; j < ra.size(); ++j) EXPECT_EQ(ra[j], 0.0f);
        if (dim >= 50) {
            std::vector<float> axis(dim, 0.0f), out(ra.size());
            axis[dim - 1] = 1.0f;
            drift::rabitq_rotate(axis.data(), dim, out.data());
            size_t big = 0;
            for (size_t j = 0; j < dim; ++j) big += std::fabs(out[j]) > 0.1f / std::sqrt(float(dim));
            EXPECT_GT(big, dim * 3 / 4);  // spread out, not left on a few coordinates
        }
    }
}

// Rows around a moved centre, for each metric: the estimates rank the
// nearest row high, their error stays inside the bound for all but two
// pairs in 1,000 (kRabitqEpsilon), and the bound is not vacuous.
TEST(RaBitQ, EstimatesStayWithinTheirBound) {
    drift::Rng r{5};
    for (Metric m : {Metric::L2, Metric::InnerProduct, Metric::Cosine})
        for (size_t dim : {16, 128, 768}) {
            SCOPED_TRACE(std::to_string(int(m)) + " dim=" + std::to_string(dim));
            size_t n = 2000;
            auto rows = random_rows(r, n, dim, 2, 4, m == Metric::Cosine);
            std::vector<float> mean(dim), spread(dim), rc(drift::rabitq_padded(dim));
            std::vector<uint16_t> halves(rc.size());
            drift::rabitq_fit(rows.data(), n, dim, mean.data(), spread.data());
            drift::rabitq_centre(mean.data(), dim, halves.data(), rc.data());
            std::vector<uint8_t> codes(n * drift::rabitq_code_bytes(dim));
            for (size_t i = 0; i < n; ++i)
                drift::rabitq_encode(rc.data(), dim, &rows[i * dim], &codes[i * drift::rabitq_code_bytes(dim)]);
            size_t broken = 0, pairs = 0, found = 0;
            double abs_err = 0, slack = 0;
            for (int qi = 0; qi < 50; ++qi) {
                auto q = random_vec(r, dim, 2, 4);
                if (m == Metric::Cosine) drift::normalize(q.data(), dim);
                std::vector<float> mem(2 * drift::rabitq_padded(dim));
                drift::RabitqQuery t;
                t.rq = mem.data();
                t.v = mem.data() + drift::rabitq_padded(dim);
                drift::rabitq_prepare(dim, m, q.data(), t);
                drift::rabitq_set_centre(t, rc.data());
                std::vector<float> est(n);
                size_t best = 0;
                double best_d = HUGE_VAL;
                for (size_t i = 0; i < n; ++i) {
                    float lower;
                    est[i] = drift::rabitq_distance(t, &codes[i * drift::rabitq_code_bytes(dim)], &lower);
                    double exact = drift::order_distance(m, q.data(), &rows[i * dim], dim);
                    broken += lower > exact + 1e-4 * std::max(1.0, std::fabs(exact));
                    abs_err += std::fabs(est[i] - exact);
                    slack += exact - lower;
                    ++pairs;
                    if (exact < best_d) best_d = exact, best = i;
                }
                // The exact nearest row is among the best 10% by estimate.
                size_t ahead = 0;
                for (size_t i = 0; i < n; ++i) ahead += est[i] < est[best];
                found += ahead < n / 10;
            }
            EXPECT_LE(broken, pairs / 500) << "of " << pairs;  // (a bound with high probability)
            EXPECT_GE(found, 45u);
            EXPECT_LT(slack / pairs, 10 * abs_err / pairs + 1e-3);
        }
}

// One dimension is coded exactly (the sign is all there is), and a centre
// rounds to halves the same way for codes and queries.
TEST(RaBitQ, OneDimensionIsExact) {
    float c = 0.5f, x = 3.0f, y = -2.0f, rc[8], mem[16], lower;
    uint16_t halves[8];
    uint8_t code[32];
    ASSERT_LE(drift::rabitq_code_bytes(1), sizeof(code));
    drift::rabitq_centre(&c, 1, halves, rc);
    drift::rabitq_encode(rc, 1, &x, code);
    drift::RabitqQuery t;
    t.rq = mem;
    t.v = mem + 8;
    for (Metric m : {Metric::L2, Metric::InnerProduct}) {
        drift::rabitq_prepare(1, m, &y, t);
        drift::rabitq_set_centre(t, rc);
        EXPECT_NEAR(drift::rabitq_distance(t, code, &lower), drift::order_distance(m, &y, &x, 1), 1e-4);
        EXPECT_NEAR(lower, drift::order_distance(m, &y, &x, 1), 1e-4);
    }
    // A centre beyond half range is clamped, not made infinite.
    float big[3] = {1e6f, -1e6f, 3.0f}, rbig[8];
    uint16_t hbig[8];
    drift::rabitq_centre(big, 3, hbig, rbig);
    for (float v : rbig) EXPECT_TRUE(std::isfinite(v));
}

// The index-wide quantizers: RaBitQ keeps the sample's mean and spread and
// never asks to be fitted again (codes are relative to each bucket's centre);
// SQ8 does when rows fall outside its ranges.
TEST(Codes, FitAndMisfit) {
    drift::Rng r{3};
    size_t n = 1000, dim = 32;
    auto rows = random_rows(r, n, dim, -1, 1);
    std::vector<float> q(2 * dim), s(2 * dim);
    drift::quantizer_fit(drift::CodeKind::RaBitQ, rows.data(), n, dim, 1.0f, q.data(), q.data() + dim);
    for (size_t j = 0; j < dim; ++j) EXPECT_NEAR(q[j], 0.0f, 0.1f);
    for (size_t j = 0; j < dim; ++j) EXPECT_NEAR(q[dim + j], 1.0f / std::sqrt(3.0f), 0.05f);
    drift::quantizer_fit(drift::CodeKind::Sq8, rows.data(), n, dim, 1.0f, s.data(), s.data() + dim);
    auto moved = random_rows(r, 100, dim, 3, 5);
    EXPECT_FALSE(drift::quantizer_misfits(drift::Quantizer{drift::CodeKind::RaBitQ, dim, q.data(), q.data() + dim}, moved.data(), 100));
    EXPECT_TRUE(drift::quantizer_misfits(drift::Quantizer{drift::CodeKind::Sq8, dim, s.data(), s.data() + dim}, moved.data(), 100));
    EXPECT_EQ(drift::code_bytes(drift::CodeKind::RaBitQ, 768), 16u + 96u);
    EXPECT_EQ(drift::code_bytes(drift::CodeKind::Sq8, 768), 768u);
    EXPECT_EQ(drift::default_code_kind(128), drift::CodeKind::Sq8);
    EXPECT_EQ(drift::default_code_kind(768), drift::CodeKind::RaBitQ);
    EXPECT_THROW(drift::quantizer_fit(drift::CodeKind::RaBitQ, rows.data(), 0, dim, 1.0f, q.data(), q.data() + dim),
                 drift::Error);
}

TEST(KMeans, FindsKnownClusters) {
    drift::Rng r{4};
    size_t dim = 16, per = 300, k = 5;
    std::vector<float> centres, data;
    for (size_t c = 0; c < k; ++c) {
        auto cc = random_vec(r, dim, -100, 100);
        centres.insert(centres.end(), cc.begin(), cc.end());
        for (size_t i = 0; i < per; ++i)
            for (size_t j = 0; j < dim; ++j) data.push_back(cc[j] + float(r.uniform() - 0.5));
    }
    std::vector<float> got(k * dim);
    drift::KMeansParams p{k, Metric::L2, 42, 25, {}};
    drift::kmeans(data.data(), k * per, dim, p, got.data());
    for (size_t c = 0; c < k; ++c) {
        float d;
        drift::nearest_centroid(got.data(), k, dim, &centres[c * dim], &d);
        EXPECT_LT(d, 0.1f * dim) << "centre " << c << " not found";
    }
}

TEST(KMeans, SameSeedSameCentroids) {
    drift::Rng r{5};
    size_t n = 1000, dim = 8, k = 10;
    std::vector<float> data = random_rows(r, n, dim);
    std::vector<float> a(k * dim), b(k * dim);
    drift::KMeansParams p{k, Metric::L2, 7, 10, {}};
    drift::kmeans(data.data(), n, dim, p, a.data());
    drift::kmeans(data.data(), n, dim, p, b.data());
    EXPECT_EQ(a, b);
}

// k = n with duplicate rows forces empty clusters; each is rescued.
TEST(KMeans, RescuesEmptyClusters) {
    size_t n = 12, dim = 2, k = 12;
    std::vector<float> data;
    for (size_t i = 0; i < n; ++i) {
        data.push_back(float(i % 3));
        data.push_back(float(i % 3));
    }
    std::vector<float> got(k * dim);
    drift::KMeansParams p{k, Metric::L2, 1, 10, {}};
    drift::KMeansResult res = drift::kmeans(data.data(), n, dim, p, got.data());
    EXPECT_GT(res.rescued, 0u);
    for (float x : got) EXPECT_TRUE(std::isfinite(x));
}

TEST(KMeans, CosineCentroidsAreUnit) {
    drift::Rng r{6};
    size_t n = 400, dim = 10, k = 4;
    std::vector<float> data = random_rows(r, n, dim, -1, 1, true);
    std::vector<float> got(k * dim);
    drift::KMeansParams p{k, Metric::Cosine, 1, 10, {}};
    drift::kmeans(data.data(), n, dim, p, got.data());
    for (size_t c = 0; c < k; ++c)
        EXPECT_NEAR(drift::kernels().dot(&got[c * dim], &got[c * dim], dim), 1.0f, 1e-4f);
}

// Expects nearest_centroids to give each of n rows the centroid and, within
// relative tolerance tol, the distance nearest_centroid gives it.
void expect_batched_matches_single(const std::vector<float> &data, const std::vector<float> &cents, size_t n,
                                   size_t k, size_t dim, float tol) {
    std::vector<uint32_t> assign(n);
    std::vector<float> dist(n);
    drift::nearest_centroids(data.data(), n, cents.data(), k, dim, assign.data(), dist.data());
    for (size_t i = 0; i < n; ++i) {
        float d;
        EXPECT_EQ(assign[i], drift::nearest_centroid(cents.data(), k, dim, &data[i * dim], &d)) << "row " << i;
        EXPECT_NEAR(dist[i], d, tol * std::max(1.0f, d)) << "row " << i;
    }
}

// The batched assignment gives what one-at-a-time assignment gives.
TEST(KMeans, BatchedNearestMatchesSingle) {
    drift::Rng r{9};
    size_t n = 103, dim = 37, k = 17;
    std::vector<float> data = random_rows(r, n, dim), cents = random_rows(r, k, dim);
    expect_batched_matches_single(data, cents, n, k, dim, 1e-4f);
}

// Rows with a large common offset (every coordinate near 1000) keep their
// nearest centroid: the expansion |x|^2 + |c|^2 - 2x.c works on the rows
// moved to the centroids' mean, not on |x| near 27,700.
TEST(KMeans, OffsetDataKeepsItsNearest) {
    drift::Rng r{12};
    size_t n = 203, dim = 768, k = 9;
    std::vector<float> data = random_rows(r, n, dim), cents = random_rows(r, k, dim);
    for (auto &x : data) x = 1000.0f + x;
    for (auto &x : cents) x = 1000.0f + x;
    expect_batched_matches_single(data, cents, n, k, dim, 1e-3f);
}

// Lloyd's fixed point, which the skipped rows (Hamerly's bounds) must not
// cut short: each returned centroid is the mean of the rows nearest to it,
// on data without clear clusters, where rows keep moving for a while.
TEST(KMeans, EndsAtAFixedPoint) {
    drift::Rng r{13};
    size_t n = 3000, dim = 8, k = 30;
    std::vector<float> data = random_rows(r, n, dim), got(k * dim);
    drift::KMeansParams p{k, Metric::L2, 3, 200, {}};
    drift::KMeansResult res = drift::kmeans(data.data(), n, dim, p, got.data());
    EXPECT_GT(res.iterations, 3);
    std::vector<uint32_t> assign(n);
    std::vector<float> dist(n);
    drift::nearest_centroids(data.data(), n, got.data(), k, dim, assign.data(), dist.data());
    std::vector<double> mean(k * dim, 0.0);
    std::vector<size_t> count(k, 0);
    for (size_t i = 0; i < n; ++i) {
        count[assign[i]]++;
        for (size_t j = 0; j < dim; ++j) mean[assign[i] * dim + j] += data[i * dim + j];
    }
    double worst = 0;
    for (size_t c = 0; c < k; ++c)
        for (size_t j = 0; j < dim && count[c] > 0; ++j)
            worst = std::max(worst, std::fabs(mean[c * dim + j] / double(count[c]) - got[c * dim + j]));
    // (training stops once under 0.1% of rows move: 3 rows here)
    EXPECT_LT(worst, 0.02) << "a centroid is not the mean of its rows";
}

// Threads split the rows, nothing else: the same assignment, the same
// centroids, as on one thread.
TEST(KMeans, ThreadsChangeNothing) {
    drift::Rng r{11};
    size_t n = 4003, dim = 96, k = 40;
    std::vector<float> data = random_rows(r, n, dim), cents = random_rows(r, k, dim);
    std::vector<uint32_t> a1(n), a3(n);
    std::vector<float> d1(n), d3(n);
    drift::nearest_centroids(data.data(), n, cents.data(), k, dim, a1.data(), d1.data(), 1);
    drift::nearest_centroids(data.data(), n, cents.data(), k, dim, a3.data(), d3.data(), 3);
    EXPECT_EQ(a1, a3);
    EXPECT_EQ(d1, d3);
    std::vector<float> c1(k * dim), c3(k * dim);
    drift::KMeansParams p{k, Metric::L2, 5, 10, {}};
    drift::kmeans(data.data(), n, dim, p, c1.data());
    p.threads = 3;
    drift::kmeans(data.data(), n, dim, p, c3.data());
    EXPECT_EQ(c1, c3);
}

// parallel_for covers the range once, in aligned parts, and passes on a
// part's exception after every part is done.
TEST(Parallel, CoversTheRangeAndRethrows) {
    for (size_t n : {0, 1, 5, 1000, 1001}) {
        std::vector<int> hits(n);
        drift::parallel_for(n, 4, 4, [&](size_t b, size_t e) {
            EXPECT_EQ(b % 4, 0u);
            for (size_t i = b; i < e; ++i) hits[i]++;
        });
        for (size_t i = 0; i < n; ++i) ASSERT_EQ(hits[i], 1) << "n=" << n << " i=" << i;
    }
    std::vector<int> done(4);
    EXPECT_THROW(drift::parallel_for(400, 4, 1,
                                     [&](size_t b, size_t) {
                                         done[b / 100] = 1;
                                         if (b == 100) throw drift::Error("part 1");
                                     }),
                 drift::Error);
    EXPECT_EQ(done, std::vector<int>({1, 1, 1, 1}));
}

// A pending interrupt stops training with Cancelled, before any iteration.
TEST(KMeans, StopsWhenInterrupted) {
    drift::Rng r{10};
    std::vector<float> data = random_rows(r, 500, 8), got(10 * 8);
    int polls = 0;
    drift::KMeansParams p{10, Metric::L2, 1, 10, {}};
    p.interrupt.arg = &polls;
    p.interrupt.pending = [](void *arg) { return ++*static_cast<int *>(arg) >= 1; };
    EXPECT_THROW(drift::kmeans(data.data(), 500, 8, p, got.data()), drift::Cancelled);
    EXPECT_EQ(polls, 1);
}

TEST(KMeans, RejectsTooManyClusters) {
    float x[2] = {0, 1}, c[6];
    drift::KMeansParams p{3, Metric::L2, 1, 10, {}};
    EXPECT_THROW(drift::kmeans(x, 2, 1, p, c), drift::Error);
}

TEST(TopK, SelectsTheSmallestInOrder) {
    drift::Rng r{8};
    std::vector<drift::Candidate> all(1000);
    for (size_t i = 0; i < all.size(); ++i) all[i] = drift::Candidate{float(r.uniform()), i};
    auto sorted = all;
    std::sort(sorted.begin(), sorted.end());
    for (size_t k : {0, 1, 10, 999, 1000, 5000}) {
        auto v = all;
        size_t got = drift::select_smallest(v.data(), v.size(), k);
        ASSERT_EQ(got, std::min(k, v.size()));
        for (size_t i = 0; i < got; ++i) EXPECT_EQ(v[i].id, sorted[i].id);
    }
}

TEST(TopK, TiesBreakByPayload) {
    drift::Candidate v[3] = {{1.0f, 9}, {1.0f, 2}, {0.5f, 7}};
    drift::select_smallest(v, 3, 2);
    EXPECT_EQ(v[0].id, 7u);
    EXPECT_EQ(v[1].id, 2u);
}

}  // namespace

// Maintenance planning: needs, urgency order, running means, temperature.
TEST(Maintenance, NeedsAndUrgency) {
    drift::MaintenanceLimits lim{1000, 80, 0.3f};
    EXPECT_EQ(drift::bucket_need({500, 0, 0}, lim, true).work, drift::Work::None);
    drift::Need split = drift::bucket_need({2000, 0, 0}, lim, true);
    EXPECT_EQ(split.work, drift::Work::Split);
    EXPECT_DOUBLE_EQ(split.urgency, 2.0);
    // A hot bucket splits before an equally large cold one.
    EXPECT_GT(drift::bucket_need({2000, 0, 1.0f}, lim, true).urgency, split.urgency);
    drift::Need compact = drift::bucket_need({300, 300, 0}, lim, true);
    EXPECT_EQ(compact.work, drift::Work::Compact);
    EXPECT_GE(compact.urgency, 1.0);
    drift::Need merge = drift::bucket_need({20, 0, 0}, lim, true);
    EXPECT_EQ(merge.work, drift::Work::Merge);
    EXPECT_LE(merge.urgency, 1.0);
    EXPECT_EQ(drift::bucket_need({20, 0, 0}, lim, false).work, drift::Work::None);  // the last bucket stays
    EXPECT_EQ(drift::bucket_need({0, 0, 0}, lim, true).work, drift::Work::Merge);
}

TEST(Maintenance, HeldBackOnlySplitsFarPastTheLimit) {
    drift::MaintenanceLimits lim{1000, 80, 0.2f};
    drift::BucketHealth big{1999, 0, 0}, huge{2000, 0, 0}, dead{500, 500, 0}, small{10, 0, 0};
    EXPECT_EQ(drift::held_back_need(drift::bucket_need(big, lim, true), big, lim).work, drift::Work::None);
    EXPECT_EQ(drift::held_back_need(drift::bucket_need(huge, lim, true), huge, lim).work, drift::Work::Split);
    EXPECT_EQ(drift::held_back_need(drift::bucket_need(dead, lim, true), dead, lim).work, drift::Work::None);
    EXPECT_EQ(drift::held_back_need(drift::bucket_need(small, lim, true), small, lim).work, drift::Work::None);
}

TEST(Maintenance, RequantizeWhenRowsSaturate) {
    std::vector<float> lo = {0, 0}, scale = {1.0f / 255, 1.0f / 255};  // range [0, 1] per dimension
    std::vector<float> rows(2 * 1000, 0.5f);
    EXPECT_FALSE(drift::rows_out_of_range(lo.data(), scale.data(), rows.data(), 1000, 2));
    for (size_t i = 0; i < 49; i++) rows[2 * i + 1] = 1.6f;  // beyond half the range past the top
    EXPECT_FALSE(drift::rows_out_of_range(lo.data(), scale.data(), rows.data(), 1000, 2));  // 49 < 50
    rows[2 * 49] = -0.6f;
    EXPECT_FALSE(drift::rows_out_of_range(lo.data(), scale.data(), rows.data(), 1000, 2));  // 50, but not over 5%
    EXPECT_TRUE(drift::rows_out_of_range(lo.data(), scale.data(), rows.data(), 900, 2));   // 50 of 900 > 5%
    rows[2 * 49] = -0.4f;  // within half a range: codes clip a little, ranks survive
    EXPECT_FALSE(drift::rows_out_of_range(lo.data(), scale.data(), rows.data(), 900, 2));
}

TEST(Maintenance, SeedingAndStealingRules) {
    EXPECT_TRUE(drift::row_is_far(4.01f, 2.0f));
    EXPECT_FALSE(drift::row_is_far(4.0f, 2.0f));
    EXPECT_EQ(drift::seed_buckets(49, 100), 0u);   // under half a bucket
    EXPECT_EQ(drift::seed_buckets(50, 100), 1u);
    EXPECT_EQ(drift::seed_buckets(350, 100), 3u);
    EXPECT_EQ(drift::seed_buckets(15, 4), 0u);     // at least 16 rows
    EXPECT_EQ(drift::seed_buckets(100000, 100), 64u);
    float own[2] = {0, 0}, c0[2] = {4, 0}, c1[2] = {0, 4};
    float near_own[2] = {1, 0}, near_c0[2] = {3, 0}, near_c1[2] = {0.5f, 3}, tie[2] = {2, 2};
    EXPECT_EQ(drift::steal_target(near_own, own, c0, c1, 2), -1);
    EXPECT_EQ(drift::steal_target(near_c0, own, c0, c1, 2), 0);
    EXPECT_EQ(drift::steal_target(near_c1, own, c0, c1, 2), 1);
    EXPECT_EQ(drift::steal_target(tie, own, c0, c1, 2), -1);  // no nearer than its own: stays
    float data[6] = {0, 0, 3, 4, 1, 1};
    uint32_t idx[3] = {0, 1, 2};
    EXPECT_FLOAT_EQ(drift::radius_of(data, idx, 3, 2, own), 5.0f);
    EXPECT_FLOAT_EQ(drift::radius_of(data, idx, 0, 2, own), 0.0f);
}

TEST(Maintenance, RunningMeanAndTemperature) {
    float mean[2] = {1, 1};
    float sum[2] = {6, 0};  // two rows: (3, 0) and (3, 0)
    float moved = drift::absorb_into_mean(mean, 2, sum, 2, 2);
    EXPECT_FLOAT_EQ(mean[0], 2.0f);
    EXPECT_FLOAT_EQ(mean[1], 0.5f);
    EXPECT_NEAR(moved, std::sqrt(1.25f), 1e-6);
    EXPECT_FLOAT_EQ(drift::absorb_into_mean(mean, 4, sum, 0, 2), 0.0f);
    float data[6] = {0, 0, 2, 4, 10, 10};
    uint32_t idx[2] = {0, 1};
    float out[2];
    drift::mean_of(data, idx, 2, 2, out);
    EXPECT_FLOAT_EQ(out[0], 1.0f);
    EXPECT_FLOAT_EQ(out[1], 2.0f);
    EXPECT_FLOAT_EQ(drift::next_temperature(1.0f, 50, 100), 1.0f);
    EXPECT_FLOAT_EQ(drift::next_temperature(1.0f, 0, 100), 0.5f);
}

TEST(Maintenance, ShrinkPlanMovesTailChainsIntoFreePages) {
    using U = drift::PageUse;
    const U F = U::Free, W = U::Waiting, M = U::Movable, X = U::Fixed;
    // block 0 is the metapage; chain 7 has pages 5 and 9, chain 8 page 8
    std::vector<U> use = {X, F, F, M, F, M, W, F, M, M};
    std::vector<uint32_t> chain = {0, 0, 0, 6, 0, 7, 0, 0, 8, 7};
    drift::ShrinkPlan p = drift::shrink_plan(use.data(), chain.data(), 10, 1);
    // cut 5: chains 7 (2 pages) and 8 (1) fit the reusable pages 1, 2 and 4;
    // cut 4 would leave 2 of them, and cut 3 would move chain 6 as well
    EXPECT_EQ(p.cut, 5u);
    EXPECT_EQ(p.moved_pages, 3u);
    EXPECT_EQ(drift::shrink_plan(use.data(), chain.data(), 10, 6).cut, 10u);  // 5 pages won: below min_gain
    use[7] = X;  // a fixed page: nothing at or below it can go
    p = drift::shrink_plan(use.data(), chain.data(), 10, 1);
    EXPECT_EQ(p.cut, 8u);
    EXPECT_EQ(p.moved_pages, 3u);
    use[1] = use[2] = use[4] = W;  // no reusable page: nothing moves, a free tail still goes
    use[8] = W;
    use[9] = F;
    p = drift::shrink_plan(use.data(), chain.data(), 10, 1);
    EXPECT_EQ(p.cut, 8u);
    EXPECT_EQ(p.moved_pages, 0u);
}

// Recall@10 of an HNSW graph against brute force on clustered rows.
double hnsw_recall(Metric metric, uint32_t m, uint32_t ef) {
    drift::Rng r{42};
    const uint32_t n = 3000, dim = 24, nq = 50, k = 10;
    std::vector<float> rows;
    for (uint32_t i = 0; i < n; ++i) {
        auto v = random_vec(r, dim, -0.3f, 0.3f);
        v[i % dim] += 3.0f;  // dim clusters
        if (metric == Metric::Cosine) drift::normalize(v.data(), dim);
        rows.insert(rows.end(), v.begin(), v.end());
    }
    std::vector<char> mem(drift::hnsw_bytes(dim, n, m));
    drift::hnsw_init(mem.data(), dim, n, m, metric, 7);
    for (uint32_t i = 0; i < n; ++i) EXPECT_TRUE(drift::hnsw_add(mem.data(), &rows[size_t(i) * dim], 64));
    EXPECT_FALSE(drift::hnsw_add(mem.data(), rows.data(), 64));  // full
    size_t hits = 0;
    for (uint32_t qi = 0; qi < nq; ++qi) {
        const float *q = &rows[size_t(r.below(n)) * dim];
        std::vector<drift::Candidate> exact(n);
        for (uint32_t i = 0; i < n; ++i) exact[i] = {drift::order_distance(metric, q, &rows[size_t(i) * dim], dim), i};
        drift::select_smallest(exact.data(), n, k);
        drift::Candidate got[k];
        size_t ng = drift::hnsw_search(mem.data(), q, ef, k, got);
        EXPECT_EQ(ng, k);
        for (size_t i = 0; i < ng; ++i) {
            EXPECT_FLOAT_EQ(got[i].dist, drift::order_distance(metric, q, &rows[size_t(got[i].id) * dim], dim));
            if (i > 0) {
                EXPECT_LE(got[i - 1].dist, got[i].dist);
            }
            for (size_t j = 0; j < k; ++j) hits += got[i].id == exact[j].id;
        }
    }
    return double(hits) / (nq * k);
}

TEST(Hnsw, RecallAgainstBruteForce) {
    EXPECT_GE(hnsw_recall(Metric::L2, 16, 64), 0.95);
    EXPECT_GE(hnsw_recall(Metric::Cosine, 16, 64), 0.95);
    EXPECT_GE(hnsw_recall(Metric::L2, 4, 200), 0.9);
}

TEST(Hnsw, EmptyAndTinyGraphs) {
    std::vector<char> mem(drift::hnsw_bytes(2, 3, 4));
    drift::hnsw_init(mem.data(), 2, 3, 4, Metric::L2, 1);
    float q[2] = {0, 0};
    drift::Candidate out[5];
    EXPECT_EQ(drift::hnsw_search(mem.data(), q, 10, 5, out), 0u);
    float a[2] = {1, 0}, b[2] = {0, 2};
    ASSERT_TRUE(drift::hnsw_add(mem.data(), a, 8));
    ASSERT_TRUE(drift::hnsw_add(mem.data(), b, 8));
    ASSERT_EQ(drift::hnsw_search(mem.data(), q, 1, 5, out), 2u);
    EXPECT_EQ(out[0].id, 0u);
    EXPECT_FLOAT_EQ(out[1].dist, 4.0f);
    EXPECT_THROW(drift::hnsw_init(mem.data(), 0, 3, 4, Metric::L2, 1), drift::Error);
}

TEST(KMeans, ChooseLists) {
    EXPECT_EQ(drift::choose_lists(0, 10000, 100000), 100u);  // about sqrt(rows)
    EXPECT_EQ(drift::choose_lists(40, 10000, 100000), 40u);  // the option
    EXPECT_EQ(drift::choose_lists(40, 10000, 16), 16u);      // no more than k-means sees
    EXPECT_EQ(drift::choose_lists(0, 0, 0), 1u);
}

TEST(Routing, CapFractionMatchesClosedForms) {
    for (double t : {0.0, 0.1, 0.37, 0.5, 0.8, 0.99}) {
        EXPECT_NEAR(drift::cap_fraction(t, 1), (1 - t) / 2, 1e-9) << t;
        EXPECT_NEAR(drift::cap_fraction(t, 2), (std::acos(t) - t * std::sqrt(1 - t * t)) / M_PI, 1e-9) << t;
        EXPECT_NEAR(drift::cap_fraction(t, 3), (1 - t) * (1 - t) * (2 + t) / 4, 1e-9) << t;
    }
    EXPECT_EQ(drift::cap_fraction(1.0, 10), 0);
    EXPECT_EQ(drift::cap_fraction(2.0, 10), 0);
    // Higher dimensions: the ball's volume gathers at its equator.
    EXPECT_LT(drift::cap_fraction(0.3, 128), 1e-2);
    EXPECT_GT(drift::cap_fraction(0.3, 8), 0.15);
    EXPECT_NEAR(drift::cap_fraction(0.05, 4000), 0.5 * std::erfc(0.05 * std::sqrt(4000.0) / std::sqrt(2.0)), 2e-3);
}

TEST(Routing, LocalDimensionOfUniformData) {
    drift::Rng r{42};
    for (size_t dim : {2, 4, 8}) {
        std::vector<float> rows = random_rows(r, 20000, dim);
        double sum = 0;
        const int queries = 50;
        for (int qi = 0; qi < queries; qi++) {
            std::vector<float> q = random_vec(r, dim, -0.5f, 0.5f);
            std::vector<float> d;
            for (size_t i = 0; i < 20000; i++) d.push_back(std::sqrt(drift::order_distance(Metric::L2, q.data(), &rows[i * dim], dim)));
            std::partial_sort(d.begin(), d.begin() + 32, d.end());
            sum += drift::local_dimension(d.data(), 32, 1000);
        }
        EXPECT_NEAR(sum / queries, double(dim), 0.25 * dim) << dim;
    }
    float same[4] = {1, 1, 1, 1};
    EXPECT_EQ(drift::local_dimension(same, 4, 77), 77);
    EXPECT_EQ(drift::local_dimension(same, 2, 77), 77);
}

// The recall estimate of probing the m nearest cells of a Voronoi partition
// follows the recall those cells give, on uniform data.
TEST(Routing, EstimatedRecallFollowsActualRecall) {
    drift::Rng r{7};
    const size_t dim = 6, n = 20000, cells = 64, k = 10;
    std::vector<float> rows = random_rows(r, n, dim), cent = random_rows(r, cells, dim);
    std::vector<uint32_t> cell(n);
    for (size_t i = 0; i < n; i++) {
        float best = INFINITY;
        for (uint32_t c = 0; c < cells; c++) {
            float d = drift::order_distance(Metric::L2, &rows[i * dim], &cent[c * dim], dim);
            if (d < best) best = d, cell[i] = c;
        }
    }
    for (size_t m : {1, 2, 4}) {
        double est = 0, actual = 0;
        const int queries = 100;
        for (int qi = 0; qi < queries; qi++) {
            std::vector<float> q = random_vec(r, dim, -0.8f, 0.8f);
            std::vector<drift::Candidate> order(cells);
            for (uint32_t c = 0; c < cells; c++) order[c] = {drift::order_distance(Metric::L2, q.data(), &cent[c * dim], dim), c};
            std::sort(order.begin(), order.end());
            std::vector<bool> probed(cells, false);
            for (size_t i = 0; i < m; i++) probed[order[i].id] = true;
            std::vector<std::pair<float, bool>> all, found;
            for (size_t i = 0; i < n; i++) {
                float d = std::sqrt(drift::order_distance(Metric::L2, q.data(), &rows[i * dim], dim));
                all.push_back({d, probed[cell[i]]});
                if (probed[cell[i]]) found.push_back({d, true});
            }
            std::partial_sort(all.begin(), all.begin() + k, all.end());
            std::partial_sort(found.begin(), found.begin() + 32, found.end());
            for (size_t i = 0; i < k; i++) actual += all[i].second;
            std::vector<float> fd;
            for (size_t i = 0; i < 32; i++) fd.push_back(found[i].first);
            double radius = fd[k - 1], ldim = drift::effective_dimension(drift::local_dimension(fd.data(), fd.size(), dim), dim);
            const float *c0 = &cent[order[0].id * dim];
            drift::RecallEstimate e(radius, ldim);
            e.add_own(true);
            for (uint32_t c = 1; c < cells; c++) {
                const float *cc = &cent[order[c].id * dim];
                e.add((order[c].dist - order[0].dist) / (2 * std::sqrt(drift::order_distance(Metric::L2, cc, c0, dim))),
                      c < m);
            }
            est += e.value();
        }
        est /= queries;
        actual /= queries * k;
        EXPECT_NEAR(est, actual, 0.1) << m << " cells";
    }
}

TEST(Routing, ScoresAndTerms) {
    // lambda 0 and tau off: plain centroid distance.
    EXPECT_EQ(drift::routing_score(3.5f, 2, drift::bucket_heat(0.9f, 1), drift::bucket_density(5, 0), 0), 3.5f);
    // A hot bucket comes forward by lambda windows at most; a sparse one goes back.
    EXPECT_FLOAT_EQ(drift::routing_score(3, 2, drift::bucket_heat(5, 1), 1, 0.5f), 2);
    EXPECT_FLOAT_EQ(drift::routing_score(3, 2, 0, drift::bucket_density(16, 64), 0), 9);
    EXPECT_EQ(drift::bucket_density(1000, 64), 1);
    EXPECT_FLOAT_EQ(drift::bucket_density(0, 64), 1.0f / 64);
    EXPECT_FLOAT_EQ(drift::bucket_heat(0.5f, 0), 0.25f);
    EXPECT_EQ(drift::bucket_heat(-1, -1), 0);
}

TEST(Routing, EffectiveDimension) {
    EXPECT_EQ(drift::effective_dimension(14, 128), 14 * drift::kDimensionScale);
    EXPECT_EQ(drift::effective_dimension(6, 6), 6);
    EXPECT_EQ(drift::effective_dimension(100, 128), 128);
}

TEST(Routing, CapFractionTableFollowsTheFunction) {
    for (double d : {1.0, 3.0, 14.0, 56.0, 500.0, 4000.0})
        for (double t = 0; t < 1.05; t += 0.01)
            EXPECT_NEAR(drift::cap_from_table(drift::cap_table(d), t), drift::cap_fraction(t, std::round(d)), 0.01) << d << " " << t;
    EXPECT_EQ(drift::cap_from_table(drift::cap_table(20), 1.0), 0);
    EXPECT_EQ(drift::cap_from_table(drift::cap_table(20), 0.0), 0.5);
    EXPECT_EQ(drift::cap_table(20.2), drift::cap_table(19.8));
}

TEST(Routing, SampleDimensionOfUniformData) {
    drift::Rng r{11};
    for (size_t dim : {3, 6, 10}) {
        std::vector<float> rows = random_rows(r, 4000, dim);
        EXPECT_NEAR(drift::sample_dimension(rows.data(), 4000, dim), double(dim), 0.25 * dim) << dim;
    }
    // Rows on a 2-d plane inside 32 dimensions.
    std::vector<float> plane(3000 * 32, 0.0f);
    for (size_t i = 0; i < 3000; i++) {
        float a = float(r.uniform()), b = float(r.uniform());
        for (size_t j = 0; j < 32; j++) plane[i * 32 + j] = a * float(j % 3) + b * float(j % 5);
    }
    EXPECT_NEAR(drift::sample_dimension(plane.data(), 3000, 32), 2.0, 0.5);
    EXPECT_EQ(drift::sample_dimension(plane.data(), 10, 32), 0);
}
