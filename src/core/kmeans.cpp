// k-means training: k-means++ seeding, Lloyd iterations, empty-cluster rescue.
#include "kmeans.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "distance.hpp"

namespace drift {

size_t nearest_centroid(const float *centroids, size_t k, size_t dim, const float *x, float *dist) {
    const Kernels &kn = kernels();
    size_t best = 0;
    float bestd = kn.l2sq(x, centroids, dim);
    for (size_t c = 1; c < k; ++c) {
        float d = kn.l2sq(x, centroids + c * dim, dim);
        if (d < bestd) {
            bestd = d;
            best = c;
        }
    }
    if (dist) *dist = bestd;
    return best;
}

void nearest_centroids(const float *data, size_t n, const float *centroids, size_t k, size_t dim, uint32_t *assign,
                       float *dist) {
    const Kernels &kn = kernels();
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const float *q[4] = {data + i * dim, data + (i + 1) * dim, data + (i + 2) * dim, data + (i + 3) * dim};
        float best[4], d[4];
        uint32_t arg[4] = {0, 0, 0, 0};
        kn.l2sq_x4(q, centroids, dim, best);
        for (size_t c = 1; c < k; ++c) {
            kn.l2sq_x4(q, centroids + c * dim, dim, d);
            for (size_t j = 0; j < 4; ++j)
                if (d[j] < best[j]) {
                    best[j] = d[j];
                    arg[j] = uint32_t(c);
                }
        }
        for (size_t j = 0; j < 4; ++j) {
            assign[i + j] = arg[j];
            dist[i + j] = best[j];
        }
    }
    for (; i < n; ++i) assign[i] = uint32_t(nearest_centroid(centroids, k, dim, data + i * dim, &dist[i]));
}

namespace {

// k-means++ seeding on the first m rows of a shuffled order.
void seed_plus_plus(const float *data, const std::vector<size_t> &order, size_t m, size_t dim, size_t k, Rng &rng,
                    const Interrupt &interrupt, float *centroids) {
    const Kernels &kn = kernels();
    std::vector<float> d2(m);
    size_t first = order[rng.below(m)];
    std::memcpy(centroids, data + first * dim, dim * sizeof(float));
    double total = 0;
    for (size_t i = 0; i < m; ++i) {
        d2[i] = kn.l2sq(data + order[i] * dim, centroids, dim);
        total += d2[i];
    }
    for (size_t c = 1; c < k; ++c) {
        if (c % 64 == 0) interrupt.check();
        size_t pick = 0;
        if (total > 0) {
            double r = rng.uniform() * total, acc = 0;
            for (pick = 0; pick + 1 < m; ++pick) {
                acc += d2[pick];
                if (acc > r) break;
            }
        } else {
            pick = rng.below(m);
        }
        float *cent = centroids + c * dim;
        std::memcpy(cent, data + order[pick] * dim, dim * sizeof(float));
        total = 0;
        for (size_t i = 0; i < m; ++i) {
            d2[i] = std::min(d2[i], kn.l2sq(data + order[i] * dim, cent, dim));
            total += d2[i];
        }
    }
}

}  // namespace

KMeansResult kmeans(const float *data, size_t n, size_t dim, const KMeansParams &p, float *centroids) {
    if (p.k == 0 || p.k > n) throw Error("k-means needs 1 <= k <= number of rows");
    const size_t k = p.k;
    Rng rng{p.seed};
    KMeansResult res{0, 0};

    // Seed on a bounded random subset: k-means++ costs O(m k dim).
    std::vector<size_t> order(n);
    for (size_t i = 0; i < n; ++i) order[i] = i;
    for (size_t i = n - 1; i > 0; --i) std::swap(order[i], order[rng.below(i + 1)]);
    size_t m = std::min(n, std::max<size_t>(16 * k, 4096));
    seed_plus_plus(data, order, m, dim, k, rng, p.interrupt, centroids);

    std::vector<uint32_t> assign(n, UINT32_MAX), prev(n);
    std::vector<float> dist(n);
    std::vector<double> sums(k * dim);
    std::vector<size_t> counts(k);
    for (int it = 0; it < p.max_iterations; ++it) {
        p.interrupt.check();
        prev.swap(assign);
        nearest_centroids(data, n, centroids, k, dim, assign.data(), dist.data());
        size_t changed = 0;
        for (size_t i = 0; i < n; ++i) changed += assign[i] != prev[i];
        // Rescue empty clusters: take the farthest point of the largest one.
        std::fill(counts.begin(), counts.end(), 0);
        for (size_t i = 0; i < n; ++i) counts[assign[i]]++;
        for (size_t c = 0; c < k; ++c) {
            if (counts[c] != 0) continue;
            size_t big = size_t(std::max_element(counts.begin(), counts.end()) - counts.begin());
            size_t far = SIZE_MAX;
            for (size_t i = 0; i < n; ++i)
                if (assign[i] == big && (far == SIZE_MAX || dist[i] > dist[far])) far = i;
            assign[far] = uint32_t(c);
            dist[far] = 0;
            counts[big]--;
            counts[c] = 1;
            res.rescued++;
            changed++;
        }
        // Update: each centroid becomes the mean of its members.
        std::fill(sums.begin(), sums.end(), 0.0);
        for (size_t i = 0; i < n; ++i) {
            double *s = &sums[assign[i] * dim];
            const float *x = data + i * dim;
            for (size_t j = 0; j < dim; ++j) s[j] += x[j];
        }
        for (size_t c = 0; c < k; ++c) {
            float *cent = centroids + c * dim;
            for (size_t j = 0; j < dim; ++j) cent[j] = float(sums[c * dim + j] / double(counts[c]));
            if (p.metric == Metric::Cosine) normalize(cent, dim);
        }
        res.iterations = it + 1;
        if (changed * 1000 <= n) break;
    }
    return res;
}

uint32_t choose_lists(int32_t option, double rows, uint64_t limit) {
    double want = option > 0 ? double(option) : std::max(1.0, std::round(std::sqrt(rows)));
    return uint32_t(std::max(1.0, std::min(want, double(limit))));
}

}  // namespace drift
