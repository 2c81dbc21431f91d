// A map from 32-bit ids to 32-bit values (chain ids to buckets, blocks to
// the groups that move together): a sorted array of id << 32 | value in
// palloc'd memory, so that an error, which longjmps past C++ destructors,
// leaves nothing behind but memory its context frees.
#pragma once

#include <algorithm>

#include "pages.h"

struct DriftIdMap {
    uint32 n, cap;
    uint64 *keys;
};

// An empty map with room for cap entries (it grows as needed).
inline void drift_idmap_init(DriftIdMap *m, uint32 cap) {
    m->n = 0;
    m->cap = Max(cap, 8u);
    m->keys = (uint64 *) palloc(sizeof(uint64) * m->cap);
}

// Adds id -> value (before drift_idmap_sort).
inline void drift_idmap_add(DriftIdMap *m, uint32 id, uint32 value) {
    if (m->n == m->cap) {
        m->cap *= 2;
        m->keys = (uint64 *) repalloc(m->keys, sizeof(uint64) * m->cap);
    }
    m->keys[m->n++] = uint64(id) << 32 | value;
}

// Sorts the map for lookups.
inline void drift_idmap_sort(DriftIdMap *m) { std::sort(m->keys, m->keys + m->n); }

// Whether id is in the (sorted) map; its smallest value in *value.
inline bool drift_idmap_find(const DriftIdMap *m, uint32 id, uint32 *value) {
    const uint64 *it = std::lower_bound(m->keys, m->keys + m->n, uint64(id) << 32);
    if (it == m->keys + m->n || uint32(*it >> 32) != id) return false;
    *value = uint32(*it);
    return true;
}
