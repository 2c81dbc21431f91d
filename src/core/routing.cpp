// Routing scores and the recall estimate (docs/routing.md).
#include "routing.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <unordered_map>
#include <vector>

#include "distance.hpp"

namespace drift {

float bucket_heat(float temperature, float hit_share) {
    float arrivals = std::min(std::max(temperature, 0.0f), 1.0f);
    float hits = std::min(std::max(hit_share, 0.0f), 1.0f);
    return 0.5f * (arrivals + hits);
}

float bucket_density(uint32_t members, float tau) {
    if (!(tau > 0)) return 1.0f;
    return std::min(1.0f, float(std::max<uint32_t>(members, 1)) / tau);
}

float routing_score(float dist, float window, float heat, float density, float lambda) {
    return dist + window * ((1.0f / density - 1.0f) - lambda * heat);
}

// Continued fraction of the incomplete beta function (modified Lentz).
static double beta_fraction(double a, double b, double x) {
    const double tiny = 1e-300;
    double c = 1, d = 1 - (a + b) * x / (a + 1);
    if (std::fabs(d) < tiny) d = tiny;
    d = 1 / d;
    double h = d;
    for (int m = 1; m <= 500; m++) {
        double aa = m * (b - m) * x / ((a - 1 + 2 * m) * (a + 2 * m));
        d = 1 + aa * d;
        if (std::fabs(d) < tiny) d = tiny;
        c = 1 + aa / c;
        if (std::fabs(c) < tiny) c = tiny;
        d = 1 / d;
        h *= d * c;
        aa = -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 1 + 2 * m));
        d = 1 + aa * d;
        if (std::fabs(d) < tiny) d = tiny;
        c = 1 + aa / c;
        if (std::fabs(c) < tiny) c = tiny;
        d = 1 / d;
        double step = d * c;
        h *= step;
        if (std::fabs(step - 1) < 1e-12) break;
    }
    return h;
}

// The regularized incomplete beta function I_x(a, b).
static double incomplete_beta(double a, double b, double x) {
    if (x <= 0) return 0;
    if (x >= 1) return 1;
    double front = std::exp(std::lgamma(a + b) - std::lgamma(a) - std::lgamma(b) + a * std::log(x) + b * std::log1p(-x));
    if (x < (a + 1) / (a + b + 2)) return front * beta_fraction(a, b, x) / a;
    return 1 - front * beta_fraction(b, a, 1 - x) / b;
}

double cap_fraction(double t, double dim) {
    if (!(t < 1)) return 0;
    if (t <= 0) return 0.5;
    return 0.5 * incomplete_beta((dim + 1) / 2, 0.5, 1 - t * t);
}

const float *cap_table(double dim) {
    static std::unordered_map<int, std::array<float, kCapSteps + 1>> tables;
    int d = std::max(1, int(std::lround(dim)));
    auto it = tables.find(d);
    if (it == tables.end()) {
        std::array<float, kCapSteps + 1> tab;
        for (int i = 0; i <= kCapSteps; i++) tab[i] = float(cap_fraction(double(i) / kCapSteps, d));
        it = tables.emplace(d, tab).first;
    }
    return it->second.data();
}

double cap_from_table(const float *table, double t) {
    if (!(t < 1)) return 0;
    if (t <= 0) return 0.5;
    double x = t * kCapSteps;
    int i = std::min(kCapSteps - 1, int(x));
    double f = x - i;
    return table[i] * (1 - f) + table[i + 1] * f;
}

double local_dimension(const float *d, size_t n, double max_dim) {
    if (n < 3 || !(d[n - 1] > 0)) return max_dim;
    double sum = 0;
    size_t used = 0;
    for (size_t i = 0; i + 1 < n; i++) {
        if (!(d[i] > 0)) continue;  // a duplicate of the query tells nothing about the spread
        sum += std::log(double(d[n - 1]) / d[i]);
        used++;
    }
    if (used < 2 || !(sum > 0)) return max_dim;
    return std::min(max_dim, std::max(1.0, double(used) / sum));
}

double sample_dimension(const float *rows, size_t n, size_t dim) {
    const size_t k = 20, pool = std::min<size_t>(n, 2000);
    if (pool < k + 2) return 0;
    const size_t points = std::min<size_t>(pool, 200);
    const Kernels &kern = kernels();
    std::vector<float> d(pool), lids;
    for (size_t p = 0; p < points; p++) {
        const float *x = rows + (p * n / points) * dim;
        size_t m = 0;
        for (size_t i = 0; i < pool; i++) {
            float dd = kern.l2sq(x, rows + (i * n / pool) * dim, dim);
            if (dd > 0) d[m++] = std::sqrt(dd);
        }
        if (m < k) continue;
        std::partial_sort(d.begin(), d.begin() + k, d.begin() + m);
        lids.push_back(float(local_dimension(d.data(), k, double(dim))));
    }
    if (lids.empty()) return 0;
    std::nth_element(lids.begin(), lids.begin() + lids.size() / 2, lids.end());
    return lids[lids.size() / 2];
}

double effective_dimension(double lid, double ambient) { return std::min(ambient, kDimensionScale * lid); }

void RecallEstimate::add(double gap, bool probed) {
    if (!(radius_ > 0) || !(gap < radius_)) return;
    double f = cap_from_table(table_, std::max(gap, 0.0) / radius_);
    sum_ += f;
    if (probed) probed_ += f;
}

double RecallEstimate::value() const { return ((own_probed_ ? 1 : 0) + probed_) / (1 + sum_); }

}  // namespace drift
