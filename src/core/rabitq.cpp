// RaBitQ codes: rotation, fitting, encoding and estimated distances.
#include "rabitq.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "distance.hpp"
#include "half.hpp"

namespace drift {

namespace {

// splitmix64: the rotation's sign flips, the same on every platform.
uint64_t next_random(uint64_t &state) {
    uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

// In-place normalized Walsh-Hadamard transform of p floats (p a power of two).
void hadamard(float *x, size_t p) {
    for (size_t h = 1; h < p; h *= 2)
        for (size_t i = 0; i < p; i += 2 * h)
            for (size_t j = i; j < i + h; ++j) {
                float a = x[j], b = x[j + h];
                x[j] = a + b;
                x[j + h] = a - b;
            }
    float s = 1.0f / std::sqrt(float(p));
    for (size_t j = 0; j < p; ++j) x[j] *= s;
}

}  // namespace

void rabitq_rotate(const float *x, size_t dim, float *out) {
    size_t padded = rabitq_padded(dim);
    if (out != x) std::memcpy(out, x, sizeof(float) * dim);
    std::fill(out + dim, out + padded, 0.0f);
    if (dim == 0) return;
    size_t p = 1;
    while (p * 2 <= dim) p *= 2;
    uint64_t state = 0x64726966ull * 0x100000001B3ull + dim;  // ("drif", and the width)
    for (int round = 0; round < 4; ++round) {
        for (size_t i = 0; i < dim; i += 64) {
            uint64_t signs = next_random(state);
            for (size_t j = i; j < std::min(dim, i + 64); ++j) {
                uint32_t bits;  // (flip the sign bit: no branch to mispredict)
                std::memcpy(&bits, &out[j], 4);
                bits ^= uint32_t((signs >> (j - i)) & 1) << 31;
                std::memcpy(&out[j], &bits, 4);
            }
        }
        hadamard(round % 2 == 0 ? out : out + dim - p, p);
    }
}

void rabitq_fit(const float *data, size_t n, size_t dim, float *mean, float *spread) {
    if (n == 0) throw Error("cannot fit a quantizer on no rows");
    std::vector<double> sum(dim, 0.0), sq(dim, 0.0);
    for (size_t i = 0; i < n; ++i)
        for (size_t j = 0; j < dim; ++j) sum[j] += data[i * dim + j];
    for (size_t j = 0; j < dim; ++j) mean[j] = float(sum[j] / double(n));
    for (size_t i = 0; i < n; ++i)
        for (size_t j = 0; j < dim; ++j) {
            double d = double(data[i * dim + j]) - mean[j];
            sq[j] += d * d;
        }
    for (size_t j = 0; j < dim; ++j) spread[j] = float(std::sqrt(sq[j] / double(n)));
}

void rabitq_centre(const float *c, size_t dim, uint16_t *halves, float *rc) {
    size_t padded = rabitq_padded(dim);
    rabitq_rotate(c, dim, rc);
    for (size_t j = 0; j < padded; ++j) {
        float_to_half(std::clamp(rc[j], -kHalfMax, kHalfMax), &halves[j]);
        rc[j] = half_to_float(halves[j]);
    }
}

void rabitq_encode(const float *rc, size_t dim, const float *x, uint8_t *code) {
    thread_local std::vector<float> u;
    size_t padded = rabitq_padded(dim);
    u.resize(padded);
    rabitq_rotate(x, dim, u.data());
    double r2 = 0.0, l1 = 0.0, cu = 0.0;
    uint8_t *bits = code + 4 * sizeof(float);
    std::memset(bits, 0, padded / 8);
    for (size_t j = 0; j < dim; ++j) {
        u[j] -= rc[j];
        r2 += double(u[j]) * u[j];
        l1 += std::fabs(double(u[j]));
        cu += double(rc[j]) * u[j];
        if (u[j] > 0.0f) bits[j / 8] |= uint8_t(1u << (j % 8));
    }
    float r = float(std::sqrt(r2)), inv_ip = 1.0f, factor = 0.0f;
    if (r > 0.0f) {
        // ip = <x, u / r> = sum |u_j| / (r sqrt(D)), at least 1 / sqrt(D).
        double ip = std::clamp(l1 / (std::sqrt(r2) * std::sqrt(double(dim))), 1.0 / std::sqrt(double(dim)), 1.0);
        inv_ip = float(1.0 / ip);
        factor = float(std::sqrt(std::max(0.0, 1.0 - ip * ip)) / ip);
    }
    float f[4] = {r, inv_ip, factor, float(cu)};
    std::memcpy(code, f, sizeof(f));
}

void rabitq_prepare(size_t dim, Metric m, const float *query, RabitqQuery &t) {
    t.metric = m;
    t.dim = dim;
    t.padded = rabitq_padded(dim);
    t.scale = dim > 0 ? float(1.0 / std::sqrt(double(dim))) : 0.0f;
    rabitq_rotate(query, dim, t.rq);
    std::fill(t.v, t.v + t.padded, 0.0f);
    t.vnorm2 = t.bias = t.err = 0.0f;
}

void rabitq_set_centre(RabitqQuery &t, const float *rc) {
    double n2 = 0.0, bias = 0.0;
    for (size_t j = 0; j < t.dim; ++j) {
        t.v[j] = t.rq[j] - rc[j];
        n2 += double(t.v[j]) * t.v[j];
        bias += double(t.rq[j]) * rc[j];
    }
    t.vnorm2 = float(n2);
    t.bias = float(bias);
    t.err = t.dim > 1 ? float(std::sqrt(n2) * kRabitqEpsilon / std::sqrt(double(t.dim - 1))) : 0.0f;
}

float rabitq_distance(const RabitqQuery &t, const uint8_t *code, float *lower) {
    float f[4];
    std::memcpy(f, code, sizeof(f));  // r, 1/ip, error factor, <c, u>
    float est = kernels().sign_dot(t.v, code + sizeof(f), t.padded) * t.scale * f[1];  // <v, u / r>
    float err = t.err * f[2];
    switch (t.metric) {
        case Metric::L2: {
            float d = t.vnorm2 + f[0] * f[0] - 2.0f * f[0] * est;
            *lower = std::max(d - 2.0f * f[0] * err, 0.0f);
            return std::max(d, 0.0f);
        }
        case Metric::InnerProduct: {
            float d = -(t.bias + f[3] + f[0] * est);
            *lower = d - f[0] * err;
            return d;
        }
        case Metric::Cosine: {
            float d = 1.0f - (t.bias + f[3] + f[0] * est);
            *lower = d - f[0] * err;
            return d;
        }
    }
    *lower = 0.0f;
    return 0.0f;
}

}  // namespace drift
