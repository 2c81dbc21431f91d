// k-means++ seeded Lloyd k-means for training bucket centroids.
#pragma once

#include "core.hpp"

namespace drift {

struct KMeansParams {
    size_t k;
    Metric metric;       // Cosine: data are unit vectors, centroids are renormalized
    uint64_t seed;       // same data + same seed = same centroids
    int max_iterations;  // Lloyd iterations at most
    Interrupt interrupt;  // polled between steps; throws Cancelled
    unsigned threads = 1; // threads for the assignment steps (see parallel.hpp)
};

// What a training run did.
struct KMeansResult {
    int iterations;
    size_t rescued;  // empty clusters given a point of the largest cluster
};

// Trains p.k centroids (k x dim floats, caller memory) on n rows of data.
// Requires 1 <= k <= n.
KMeansResult kmeans(const float *data, size_t n, size_t dim, const KMeansParams &p, float *centroids);

// Index of the centroid nearest to x by squared L2 (the partition rule of
// every metric: cosine data are unit vectors); its distance in *dist.
size_t nearest_centroid(const float *centroids, size_t k, size_t dim, const float *x, float *dist);

// nearest_centroid for n rows of data at once (blocks of rows against
// blocks of centroids, the rows split over `threads` threads): their
// centroid indexes into assign, squared distances into dist.
void nearest_centroids(const float *data, size_t n, const float *centroids, size_t k, size_t dim, uint32_t *assign,
                       float *dist, unsigned threads = 1);

// Deterministic 64-bit generator (splitmix64), so builds are reproducible.
struct Rng {
    uint64_t state;
    uint64_t next() {
        uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
    }
    // Uniform in [0, 1).
    double uniform() { return double(next() >> 11) * (1.0 / 9007199254740992.0); }
    // Uniform in [0, n).
    uint64_t below(uint64_t n) { return next() % n; }
};

// Buckets for an index over `rows` rows: the `lists` option if set, else
// about sqrt(rows); at least 1 and at most `limit` (the rows k-means sees).
uint32_t choose_lists(int32_t option, double rows, uint64_t limit);

}  // namespace drift
