// SQ8 quantizer: fitting, encoding and asymmetric distances.
#include "sq8.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

#include "distance.hpp"
#include "parallel.hpp"

namespace drift {

void sq8_fit(const float *data, size_t n, size_t dim, float clip_pct, float *lo, float *scale, unsigned threads) {
    if (n == 0) throw Error("cannot fit a quantizer on no rows");
    if (!(clip_pct >= 0.0f && clip_pct < 50.0f)) throw Error("clip percentile must be in [0, 50)");
    size_t lo_rank = size_t(std::floor(double(clip_pct) / 100.0 * double(n - 1)));
    size_t hi_rank = size_t(std::ceil((1.0 - double(clip_pct) / 100.0) * double(n - 1)));
    // Columns are gathered 16 at a time (a cache line of each row), then
    // each is partitioned at its two ranks.
    const size_t block = 16;
    parallel_for(dim, double(n) * double(dim) < 1e6 ? 1 : threads, block, [&](size_t b, size_t e) {
        std::vector<float> cols(std::min(block, e - b) * n);
        for (size_t j0 = b; j0 < e; j0 += block) {
            size_t w = std::min(block, e - j0);
            for (size_t i = 0; i < n; ++i)
                for (size_t t = 0; t < w; ++t) cols[t * n + i] = data[i * dim + j0 + t];
            for (size_t t = 0; t < w; ++t) {
                float *col = &cols[t * n];
                std::nth_element(col, col + lo_rank, col + n);
                float l = col[lo_rank];
                std::nth_element(col, col + hi_rank, col + n);
                float h = col[hi_rank];
                lo[j0 + t] = l;
                scale[j0 + t] = h > l ? (h - l) / 255.0f : 1.0f;
            }
        }
    });
}

void sq8_encode(const Sq8 &q, const float *x, uint8_t *code) {
    for (size_t j = 0; j < q.dim; ++j) {
        float c = std::nearbyint((x[j] - q.lo[j]) / q.scale[j]);
        code[j] = uint8_t(std::clamp(c, 0.0f, 255.0f));
    }
}

void sq8_decode(const Sq8 &q, const uint8_t *code, float *x) {
    for (size_t j = 0; j < q.dim; ++j) x[j] = q.lo[j] + float(code[j]) * q.scale[j];
}

void sq8_prepare(const Sq8 &q, Metric m, const float *query, Sq8Query &t) {
    t.metric = m;
    t.dim = q.dim;
    t.bias = 0.0f;
    double err = 0.0;
    for (size_t j = 0; j < q.dim; ++j) {
        double half = 0.5 * double(q.scale[j]);
        if (m == Metric::L2) {
            t.a[j] = (query[j] - q.lo[j]) / q.scale[j];
            t.b[j] = q.scale[j] * q.scale[j];
            err += half * half;
        } else {
            t.a[j] = query[j] * q.scale[j];
            t.b[j] = 0.0f;
            t.bias += query[j] * q.lo[j];
            err += std::fabs(double(query[j])) * half;
        }
    }
    // (float rounding of the kernels' sums is far below a quantization step)
    t.err = float(m == Metric::L2 ? std::sqrt(err) : err);
}

float sq8_lower_bound(const Sq8Query &t, float approx) {
    if (t.metric != Metric::L2) return approx - t.err;
    float r = std::sqrt(std::max(approx, 0.0f)) - t.err;
    return r > 0.0f ? r * r : 0.0f;
}

float sq8_distance(const Sq8Query &t, const uint8_t *code) {
    const Kernels &k = kernels();
    switch (t.metric) {
        case Metric::L2: return k.sq8_l2(t.a, t.b, code, t.dim);
        case Metric::InnerProduct: return -(t.bias + k.sq8_dot(t.a, code, t.dim));
        case Metric::Cosine: return 1.0f - (t.bias + k.sq8_dot(t.a, code, t.dim));
    }
    return 0.0f;
}

}  // namespace drift
