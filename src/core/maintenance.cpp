// Bucket needs, urgency, running means, temperature, and the rules for
// requantizing, seeding and stealing.
#include "maintenance.hpp"

#include <algorithm>
#include <cmath>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "distance.hpp"

namespace drift {

Need bucket_need(const BucketHealth &b, const MaintenanceLimits &lim, bool can_merge) {
    Need best{Work::None, 0};
    if (lim.max_size > 0 && b.nlive > lim.max_size) {
        double u = double(b.nlive) / lim.max_size * (1.0 + std::max(0.0f, b.temperature));
        if (u > best.urgency) best = {Work::Split, u};
    }
    uint64_t total = uint64_t(b.nlive) + b.ndead;
    if (lim.dead_ratio > 0 && total > 0) {
        double share = double(b.ndead) / double(total);
        if (share >= lim.dead_ratio) {
            double u = share / lim.dead_ratio;
            if (u > best.urgency) best = {Work::Compact, u};
        }
    }
    if (can_merge && b.nlive < lim.min_size) {
        double u = 1.0 - double(b.nlive) / lim.min_size;
        if (u > best.urgency || best.work == Work::None) best = {Work::Merge, std::max(u, 1e-9)};
    }
    return best;
}

Need held_back_need(const Need &need, const BucketHealth &b, const MaintenanceLimits &lim) {
    if (need.work == Work::Split && uint64_t(b.nlive) >= 2 * uint64_t(lim.max_size)) return need;
    return {Work::None, 0};
}

float next_temperature(float temperature, uint32_t added, uint32_t nlive) {
    return 0.5f * temperature + float(added) / float(std::max<uint32_t>(nlive, 1));
}

float absorb_into_mean(float *mean, uint32_t count, const float *sum, uint32_t n, size_t dim) {
    if (n == 0) return 0;
    double moved = 0;
    double total = double(count) + n;
    for (size_t j = 0; j < dim; j++) {
        double m = (double(mean[j]) * count + sum[j]) / total;
        moved += (m - mean[j]) * (m - mean[j]);
        mean[j] = float(m);
    }
    return float(std::sqrt(moved));
}

void mean_of(const float *data, const uint32_t *idx, size_t n, size_t dim, float *out) {
    if (n == 0) return;
    std::vector<double> acc(dim, 0.0);
    for (size_t i = 0; i < n; i++) {
        const float *v = data + size_t(idx[i]) * dim;
        for (size_t j = 0; j < dim; j++) acc[j] += v[j];
    }
    for (size_t j = 0; j < dim; j++) out[j] = float(acc[j] / double(n));
}

bool rows_out_of_range(const float *lo, const float *scale, const float *rows, size_t n, size_t dim) {
    size_t far = 0;
    for (size_t i = 0; i < n; i++) {
        const float *v = rows + i * dim;
        for (size_t j = 0; j < dim; j++) {
            float r = 255.0f * scale[j], l = lo[j] - 0.5f * r, h = lo[j] + 1.5f * r;
            if (v[j] < l - 1e-6f || v[j] > h + 1e-6f) {
                far++;
                break;
            }
        }
    }
    return far >= 50 && far * 20 > n;
}

uint32_t seed_buckets(uint32_t nfar, uint32_t target_bucket) {
    if (nfar < std::max(target_bucket / 2, 16u)) return 0;
    return std::max(1u, std::min(nfar / std::max(target_bucket, 16u), 64u));
}

int steal_target(const float *v, const float *own, const float *c0, const float *c1, size_t dim) {
    float d = order_distance(Metric::L2, v, own, dim);
    float d0 = order_distance(Metric::L2, v, c0, dim);
    float d1 = order_distance(Metric::L2, v, c1, dim);
    if (!(std::min(d0, d1) < d)) return -1;
    return d0 <= d1 ? 0 : 1;
}

float radius_of(const float *data, const uint32_t *idx, size_t n, size_t dim, const float *c) {
    float r = 0;
    for (size_t i = 0; i < n; i++) r = std::max(r, order_distance(Metric::L2, data + size_t(idx[i]) * dim, c, dim));
    return std::sqrt(r);
}

ShrinkPlan shrink_plan(const PageUse *use, const uint32_t *chain, uint32_t npages, uint32_t min_gain) {
    uint32_t free_total = 0;
    std::unordered_map<uint32_t, uint32_t> size;  // pages per movable chain
    for (uint32_t i = 0; i < npages; i++) {
        if (use[i] == PageUse::Free) free_total++;
        if (use[i] == PageUse::Movable) size[chain[i]]++;
    }
    std::unordered_set<uint32_t> moved;
    ShrinkPlan best{npages, 0};
    uint32_t need = 0, free_above = 0;
    for (uint32_t c = npages; c-- > 1;) {
        if (use[c] == PageUse::Fixed) break;
        if (use[c] == PageUse::Free) free_above++;
        if (use[c] == PageUse::Movable && moved.insert(chain[c]).second) need += size[chain[c]];
        if (need <= free_total - free_above && npages - c >= min_gain) best = {c, need};
    }
    return best;
}

}  // namespace drift
