// What maintenance does to a bucket, and in what order: the urgency score
// (docs/maintenance.md explains the formula), running means, temperature,
// and the rules for requantizing, seeding and stealing. Pure functions,
// unit-tested without a server.
#pragma once

#include "core.hpp"

namespace drift {

// The state of one bucket as the directory records it.
struct BucketHealth {
    uint32_t nlive;     // live entries
    uint32_t ndead;     // entries removed by VACUUM since the chain was written
    float temperature;  // decayed rows flushed in, per member
};

// Thresholds of one index.
struct MaintenanceLimits {
    uint32_t max_size;  // split above this
    uint32_t min_size;  // merge below this
    float dead_ratio;   // compact at or above this share of dead entries
};

enum class Work { None, Split, Compact, Merge };

// What a bucket needs and how urgently (0 for Work::None).
struct Need {
    Work work;
    double urgency;
};

// Urgency, highest first:
//   split    (nlive > max_size):                 (nlive / max_size) * (1 + temperature)
//   compact  (ndead / (nlive + ndead) >= ratio):  dead share / ratio
//   merge    (nlive < min_size, can_merge):       1 - nlive / min_size   (in (0, 1])
// Splits and compactions score at least 1, merges at most 1. When several
// apply, the highest one is the bucket's need.
Need bucket_need(const BucketHealth &b, const MaintenanceLimits &lim, bool can_merge);

// While old snapshots hold back more replaced chains than the metapage's
// list keeps, every rewrite adds pages nothing can reuse yet: a bucket is
// then split only once it holds twice max_size, and other work waits.
Need held_back_need(const Need &need, const BucketHealth &b, const MaintenanceLimits &lim);

// Temperature after a flush that added `added` rows to a bucket that now
// has nlive members: the old value halves, the new rows' share adds.
float next_temperature(float temperature, uint32_t added, uint32_t nlive);

// Folds n rows (their sum in sum[dim]) into a running mean of `count`
// members: mean = (mean * count + sum) / (count + n). Returns how far the
// mean moved (L2).
float absorb_into_mean(float *mean, uint32_t count, const float *sum, uint32_t n, size_t dim);

// The mean of the rows of data (n x dim) listed in idx, into out; out is
// left unchanged when n is 0.
void mean_of(const float *data, const uint32_t *idx, size_t n, size_t dim, float *out);

// Requantization: true if more than 5% of the n rows (and at least 50) lie
// beyond half the quantizer's range past either end in some dimension
// (lo and scale: dim floats each): their SQ8 codes would saturate and
// scans could not rank them.
bool rows_out_of_range(const float *lo, const float *scale, const float *rows, size_t n, size_t dim);

// Seeding: a row whose squared L2 distance to its nearest centroid, dist2,
// exceeds that bucket's radius squared comes from a region no bucket covers.
inline bool row_is_far(float dist2, float radius) { return dist2 > radius * radius; }

// How many new buckets nfar such rows of one flush get: none below half a
// bucket (target_bucket / 2, at least 16), else about one per bucket of
// target_bucket rows (at least 16), from 1 to 64.
uint32_t seed_buckets(uint32_t nfar, uint32_t target_bucket);

// Stealing after a split into centroids c0 and c1: the one a row v of a
// neighbouring bucket (centroid own) moves to, 0 or 1, if it is nearer to
// it than to own (L2), else -1.
int steal_target(const float *v, const float *own, const float *c0, const float *c1, size_t dim);

// A bucket's radius: the largest L2 distance from the rows of data
// (n x dim) listed in idx to c.
float radius_of(const float *data, const uint32_t *idx, size_t n, size_t dim, const float *c);

// How VACUUM sees one page when it plans to give the end of an index back.
enum class PageUse : uint8_t {
    Free,     // free, and reusable now as a target of relocation
    Waiting,  // free, but a snapshot may still read it: not a target yet
    Movable,  // a page of a live bucket chain, which a rewrite can move
    Fixed     // anything else (metapage, directory, quantizer, L0, retired chains)
};

// Shrinking: the first page of the end to give back, and what moving
// there costs. Every chain with a page at or past `cut` is rewritten into
// free pages before it (a rewrite takes as many pages as the chain has),
// so the cut is the lowest one whose chains fit in the reusable pages
// below it, with no fixed page at or past it. cut == npages: nothing to do
// (or less than min_gain pages to win).
struct ShrinkPlan {
    uint32_t cut;
    uint32_t moved_pages;  // pages of the chains to rewrite
};
ShrinkPlan shrink_plan(const PageUse *use, const uint32_t *chain, uint32_t npages, uint32_t min_gain);

}  // namespace drift
