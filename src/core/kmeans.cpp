// k-means training: k-means++ seeding, Lloyd iterations, empty-cluster rescue.
#include "kmeans.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "distance.hpp"
#include "parallel.hpp"

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

namespace {

// nearest_centroids on one thread, for rows [0, n) of data, against
// centroids already moved by -mu (mu: dim floats) with their squared norms
// in cnorm; with second non-null, also the squared distance of each row's
// second-nearest centroid (infinity if k = 1). By |x|^2 + |c|^2 - 2 x.c on
// the rows moved by -mu as well, four rows against two centroids at a time
// (one multiply-add per element, against a subtract and a multiply-add for
// |x - c|^2), in blocks of rows and of centroids small enough to stay in
// cache together (the centroids of a large index do not fit). (The
// expansion loses to rounding about |x| |c| 2^-24 of a distance; moving
// everything to the centroids' mean keeps |x| and |c| near the data's
// spread, so a common offset in the data, such as every coordinate near
// 1000, costs nothing.)
void nearest_rows(const float *data, size_t n, const float *centroids, const float *cnorm, const float *mu, size_t k,
                  size_t dim, uint32_t *assign, float *dist, float *second) {
    const Kernels &kn = kernels();
    const float inf = std::numeric_limits<float>::infinity();
    // Blocks of about 96 kB of rows and 48 kB of centroids (of a 768-d index).
    const size_t rows_per_block = std::max<size_t>(4, (24576 / std::max<size_t>(dim, 1)) & ~size_t(3));
    const size_t cents_per_block = std::max<size_t>(2, (12288 / std::max<size_t>(dim, 1)) & ~size_t(1));
    std::vector<float> best(rows_per_block), next(rows_per_block), moved(rows_per_block * dim);
    std::vector<uint32_t> arg(rows_per_block);
    // Notes centroid c at (partial) distance d for row slot j.
    auto note = [&](size_t j, float d, size_t c) {
        if (d < best[j]) {
            next[j] = best[j];
            best[j] = d;
            arg[j] = uint32_t(c);
        } else if (d < next[j]) {
            next[j] = d;
        }
    };
    for (size_t rb = 0; rb < n; rb += rows_per_block) {
        size_t re = std::min(n, rb + rows_per_block), r4 = rb + ((re - rb) & ~size_t(3));
        std::fill(best.begin(), best.end(), inf);
        std::fill(next.begin(), next.end(), inf);
        std::fill(arg.begin(), arg.end(), 0);
        for (size_t i = rb; i < re; ++i)
            for (size_t t = 0; t < dim; ++t) moved[(i - rb) * dim + t] = data[i * dim + t] - mu[t];
        const float *rows = moved.data() - rb * dim;  // (row i at rows + i * dim)
        for (size_t cb = 0; cb < k; cb += cents_per_block) {
            size_t ce = std::min(k, cb + cents_per_block);
            for (size_t i = rb; i < r4; i += 4) {
                const float *x[4] = {rows + i * dim, rows + (i + 1) * dim, rows + (i + 2) * dim, rows + (i + 3) * dim};
                float dots[8];
                for (size_t c = cb; c < ce; c += 2) {
                    bool pair = c + 1 < ce;  // (an odd last centroid pairs with itself, noted once)
                    kn.dot_4x2(x, centroids + c * dim, centroids + (pair ? c + 1 : c) * dim, dim, dots);
                    for (size_t j = 0; j < 4; ++j) {
                        note(i - rb + j, cnorm[c] - 2 * dots[2 * j], c);
                        if (pair) note(i - rb + j, cnorm[c + 1] - 2 * dots[2 * j + 1], c + 1);
                    }
                }
            }
            for (size_t i = r4; i < re; ++i)  // the rows left over, one at a time
                for (size_t c = cb; c < ce; ++c) note(i - rb, cnorm[c] - 2 * kn.dot(rows + i * dim, centroids + c * dim, dim), c);
        }
        for (size_t i = rb; i < re; ++i) {
            const float *x = rows + i * dim;
            float xn = kn.dot(x, x, dim);
            assign[i] = arg[i - rb];
            dist[i] = std::max(0.0f, xn + best[i - rb]);
            if (second) second[i] = next[i - rb] == inf ? inf : std::max(0.0f, xn + next[i - rb]);
        }
    }
}

// nearest_centroids, with the second-nearest distances too when second is
// non-null.
void nearest_two(const float *data, size_t n, const float *centroids, size_t k, size_t dim, uint32_t *assign,
                 float *dist, float *second, unsigned threads) {
    // (a thread is worth starting for some million multiply-adds)
    if (double(n) * double(k) * double(dim) < 4e6) threads = 1;
    const Kernels &kn = kernels();
    // Everything moves by minus the centroids' mean (see nearest_rows).
    std::vector<double> sum(dim, 0.0);
    for (size_t c = 0; c < k; ++c)
        for (size_t t = 0; t < dim; ++t) sum[t] += centroids[c * dim + t];
    std::vector<float> mu(dim), moved(k * dim), cnorm(k);
    for (size_t t = 0; t < dim; ++t) mu[t] = float(sum[t] / double(std::max<size_t>(k, 1)));
    for (size_t c = 0; c < k; ++c) {
        for (size_t t = 0; t < dim; ++t) moved[c * dim + t] = centroids[c * dim + t] - mu[t];
        cnorm[c] = kn.dot(&moved[c * dim], &moved[c * dim], dim);
    }
    parallel_for(n, threads, 4, [&](size_t b, size_t e) {
        nearest_rows(data + b * dim, e - b, moved.data(), cnorm.data(), mu.data(), k, dim, assign + b, dist + b,
                     second ? second + b : nullptr);
    });
}

}  // namespace

void nearest_centroids(const float *data, size_t n, const float *centroids, size_t k, size_t dim, uint32_t *assign,
                       float *dist, unsigned threads) {
    nearest_two(data, n, centroids, k, dim, assign, dist, nullptr, threads);
}

namespace {

// k-means++ seeding on the first m rows of a shuffled order. A row's
// distance to a new seed is computed only where the triangle inequality
// leaves room for it to be nearer than the row's nearest seed so far: not
// where the new seed is at least twice as far from that seed as the row is.
void seed_plus_plus(const float *data, const std::vector<size_t> &order, size_t m, size_t dim, size_t k, Rng &rng,
                    const Interrupt &interrupt, float *centroids) {
    const Kernels &kn = kernels();
    std::vector<float> d2(m), apart(k);
    std::vector<uint32_t> nearest(m, 0);
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
        for (size_t j = 0; j < c; ++j) apart[j] = kn.l2sq(cent, centroids + j * dim, dim);
        total = 0;
        for (size_t i = 0; i < m; ++i) {
            if (4 * d2[i] > apart[nearest[i]]) {
                float d = kn.l2sq(data + order[i] * dim, cent, dim);
                if (d < d2[i]) d2[i] = d, nearest[i] = uint32_t(c);
            }
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

    // Assignment steps after the first skip the rows whose nearest centroid
    // cannot have changed (Hamerly's bounds): upper >= the distance to the
    // row's centroid, lower <= the distance to any other; both follow the
    // centroids' moves, and a row is looked at again only when its upper
    // bound passes both its lower bound and half the gap from its centroid
    // to the nearest other centroid.
    std::vector<uint32_t> assign(n, UINT32_MAX), prev(n);
    std::vector<float> dist(n), second(n), upper(n), lower(n);
    std::vector<double> sums(k * dim);
    std::vector<size_t> counts(k);
    std::vector<float> old(k * dim), move(k), gap(k), other(k);
    std::vector<uint32_t> todo, cself(k);
    const size_t chunk = 4096;
    std::vector<float> rows;
    float move1 = 0, move2 = 0;  // the largest move and the one after it
    size_t top = 0;              // the centroid that moved most
    const Kernels &kn = kernels();
    for (int it = 0; it < p.max_iterations; ++it) {
        p.interrupt.check();
        prev = assign;
        if (it == 0) {
            nearest_two(data, n, centroids, k, dim, assign.data(), dist.data(), second.data(), p.threads);
            for (size_t i = 0; i < n; ++i) upper[i] = std::sqrt(dist[i]), lower[i] = std::sqrt(second[i]);
        } else {
            // Half the distance from each centroid to its nearest other one
            // (its second nearest: the first is itself).
            nearest_two(centroids, k, centroids, k, dim, cself.data(), gap.data(), other.data(), p.threads);
            for (size_t c = 0; c < k; ++c) gap[c] = k > 1 ? 0.5f * std::sqrt(other[c]) : 0;
            todo.clear();
            for (size_t i = 0; i < n; ++i) {
                uint32_t a = assign[i];
                float z = std::max(lower[i], gap[a]);
                if (upper[i] <= z) continue;
                upper[i] = std::sqrt(kn.l2sq(data + i * dim, centroids + size_t(a) * dim, dim));
                if (upper[i] <= z) continue;
                todo.push_back(uint32_t(i));
            }
            for (size_t t = 0; t < todo.size(); t += chunk) {
                size_t m = std::min(chunk, todo.size() - t);
                rows.resize(m * dim);
                for (size_t j = 0; j < m; ++j)
                    std::memcpy(&rows[j * dim], data + size_t(todo[t + j]) * dim, dim * sizeof(float));
                std::vector<uint32_t> a(m);
                std::vector<float> d(m), d2(m);
                nearest_two(rows.data(), m, centroids, k, dim, a.data(), d.data(), d2.data(), p.threads);
                for (size_t j = 0; j < m; ++j) {
                    size_t i = todo[t + j];
                    assign[i] = a[j];
                    upper[i] = std::sqrt(d[j]);
                    lower[i] = std::sqrt(d2[j]);
                }
            }
        }
        size_t changed = 0;
        for (size_t i = 0; i < n; ++i) changed += assign[i] != prev[i];
        // Rescue empty clusters: take the farthest point of the largest one.
        std::fill(counts.begin(), counts.end(), 0);
        for (size_t i = 0; i < n; ++i) counts[assign[i]]++;
        for (size_t c = 0; c < k; ++c) {
            if (counts[c] != 0) continue;
            size_t big = size_t(std::max_element(counts.begin(), counts.end()) - counts.begin());
            size_t far = SIZE_MAX;
            float fard = -1;
            for (size_t i = 0; i < n; ++i) {
                if (assign[i] != big) continue;
                // (dist holds only bounds for rows the last step skipped)
                float d = kn.l2sq(data + i * dim, centroids + big * dim, dim);
                if (d > fard) far = i, fard = d;
            }
            assign[far] = uint32_t(c);
            upper[far] = lower[far] = 0;  // (its distance to its new centroid, itself, is 0)
            counts[big]--;
            counts[c] = 1;
            res.rescued++;
            changed++;
        }
        // Update: each centroid becomes the mean of its members; the bounds
        // follow the moves.
        std::copy(centroids, centroids + k * dim, old.begin());
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
        move1 = move2 = 0;
        top = 0;
        for (size_t c = 0; c < k; ++c) {
            move[c] = std::sqrt(kn.l2sq(&old[c * dim], centroids + c * dim, dim));
            if (move[c] > move1) {
                move2 = move1;
                move1 = move[c];
                top = c;
            } else if (move[c] > move2) {
                move2 = move[c];
            }
        }
        for (size_t i = 0; i < n; ++i) {
            upper[i] += move[assign[i]];
            lower[i] -= assign[i] == top ? move2 : move1;
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
