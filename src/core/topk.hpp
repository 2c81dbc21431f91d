// Top-k selection: the k smallest items of an array, sorted, at its front.
#pragma once

#include <algorithm>

#include "core.hpp"

namespace drift {

// A scored item: a distance and an opaque 64-bit payload.
struct Candidate {
    float dist;
    uint64_t id;
};

inline bool operator<(const Candidate &a, const Candidate &b) {
    return a.dist < b.dist || (a.dist == b.dist && a.id < b.id);
}

// Moves the min(k, n) items of [first, first + n) that come first under
// `less` to the front, in order; returns how many that is. The rest keep no
// particular order.
template <class T, class Less>
size_t select_smallest(T *first, size_t n, size_t k, Less less) {
    k = std::min(k, n);
    if (k < n) std::nth_element(first, first + k, first + n, less);
    std::sort(first, first + k, less);
    return k;
}

// The same for Candidates, ordered by distance then payload.
inline size_t select_smallest(Candidate *first, size_t n, size_t k) {
    return select_smallest(first, n, k, [](const Candidate &a, const Candidate &b) { return a < b; });
}

}  // namespace drift
