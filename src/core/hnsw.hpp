// HNSW graph (Malkov & Yashunin) laid out in one caller-provided block of
// memory with no pointers inside, so the block can live in shared memory.
// Node ids are dense (0..n-1, in insertion order); the caller keeps any
// payload per id. Not thread-safe: the caller serializes writers against
// readers.
#pragma once

#include "core.hpp"
#include "topk.hpp"

namespace drift {

// Levels a node may have (0..kHnswLevels-1); level l holds a node with
// probability m^-l, so four levels serve millions of nodes.
constexpr uint32_t kHnswLevels = 4;

// Fixed shape of a graph, stored at the start of its block.
struct HnswHeader {
    uint32_t dim, cap, m;  /* m links per node on upper levels, 2m on level 0 */
    uint32_t n;            /* nodes added */
    uint32_t entry;        /* entry point (a node of the top level) */
    int32_t top;           /* top level, -1 while empty */
    Metric metric;
    uint64_t rng;          /* state of the level generator */
    uint64_t node_bytes;
};

// Bytes a graph of cap nodes of dimension dim with m links per node needs.
size_t hnsw_bytes(uint32_t dim, uint32_t cap, uint32_t m);

// Initializes block `mem` (hnsw_bytes large) as an empty graph.
void hnsw_init(void *mem, uint32_t dim, uint32_t cap, uint32_t m, Metric metric, uint64_t seed);

// Adds vec as node n, linking it with a search of ef_construction
// candidates; returns false (and adds nothing) if the graph is full.
bool hnsw_add(void *mem, const float *vec, uint32_t ef_construction);

// Searches for the k nearest nodes of q with a candidate list of
// max(ef, k); writes them to out (dist = order distance, id = node id) in
// ascending order and returns how many that is.
size_t hnsw_search(const void *mem, const float *q, uint32_t ef, size_t k, Candidate *out);

}  // namespace drift
