// HNSW over a flat block: header, then cap fixed-size nodes. A node is its
// level, a link count per level, 2m level-0 links, m links for each upper
// level, then its vector.
#include "hnsw.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <queue>
#include <vector>

#include "distance.hpp"
#include "kmeans.hpp"

namespace drift {

namespace {

struct NodeHead {
    uint32_t level;
    uint32_t count[kHnswLevels];
};

constexpr size_t kHeaderBytes = (sizeof(HnswHeader) + 63) & ~size_t(63);

size_t node_bytes(uint32_t dim, uint32_t m) {
    size_t links = size_t(2 * m) + size_t(kHnswLevels - 1) * m;
    return (sizeof(NodeHead) + 4 * links + 4 * size_t(dim) + 7) & ~size_t(7);
}

// Read-only and writable views of the block.
struct Graph {
    HnswHeader *h;
    char *base;

    explicit Graph(const void *mem) : h((HnswHeader *) mem), base((char *) mem + kHeaderBytes) {}
    NodeHead *node(uint32_t id) const { return (NodeHead *) (base + size_t(id) * h->node_bytes); }
    uint32_t max_links(uint32_t level) const { return level == 0 ? 2 * h->m : h->m; }
    uint32_t *links(uint32_t id, uint32_t level) const {
        uint32_t *l0 = (uint32_t *) (node(id) + 1);
        return level == 0 ? l0 : l0 + 2 * h->m + (level - 1) * h->m;
    }
    float *vec(uint32_t id) const { return (float *) (links(id, 0) + 2 * h->m + (kHnswLevels - 1) * h->m); }
    float dist(const float *q, uint32_t id) const { return order_distance(h->metric, q, vec(id), h->dim); }
};

// Visited marks of the current search: marks[i] == epoch for a visited node.
struct Visited {
    std::vector<uint32_t> marks;
    uint32_t epoch = 0;

    void reset(uint32_t n) {
        if (marks.size() < n) marks.resize(n, 0);
        if (++epoch == 0) {
            std::fill(marks.begin(), marks.end(), 0);
            epoch = 1;
        }
    }
    bool visit(uint32_t id) {
        if (marks[id] == epoch) return false;
        marks[id] = epoch;
        return true;
    }
};

thread_local Visited visited;

struct Farther {
    bool operator()(const Candidate &a, const Candidate &b) const { return b < a; }
};

// Greedy search of one level from the entry points eps: the ef nearest
// nodes found, ascending.
std::vector<Candidate> search_level(const Graph &g, const float *q, const std::vector<Candidate> &eps, uint32_t ef,
                                    uint32_t level) {
    visited.reset(g.h->n + 1);
    std::priority_queue<Candidate, std::vector<Candidate>, Farther> todo;  // nearest first
    std::priority_queue<Candidate> best;                                   // farthest first
    for (const Candidate &e : eps) {
        if (!visited.visit(uint32_t(e.id))) continue;
        todo.push(e);
        best.push(e);
        if (best.size() > ef) best.pop();
    }
    while (!todo.empty()) {
        Candidate c = todo.top();
        if (best.size() >= ef && c.dist > best.top().dist) break;
        todo.pop();
        uint32_t id = uint32_t(c.id);
        const uint32_t *ls = g.links(id, level);
        uint32_t cnt = g.node(id)->count[level];
        for (uint32_t i = 0; i < cnt; i++) {
            uint32_t nb = ls[i];
            if (!visited.visit(nb)) continue;
            float d = g.dist(q, nb);
            if (best.size() < ef || d < best.top().dist) {
                todo.push(Candidate{d, nb});
                best.push(Candidate{d, nb});
                if (best.size() > ef) best.pop();
            }
        }
    }
    std::vector<Candidate> out(best.size());
    for (size_t i = out.size(); i-- > 0; best.pop()) out[i] = best.top();
    return out;
}

// Greedy descent on one level to the nearest node reachable from ep.
Candidate descend(const Graph &g, const float *q, Candidate ep, uint32_t level) {
    for (bool moved = true; moved;) {
        moved = false;
        const uint32_t *ls = g.links(uint32_t(ep.id), level);
        uint32_t cnt = g.node(uint32_t(ep.id))->count[level];
        for (uint32_t i = 0; i < cnt; i++) {
            float d = g.dist(q, ls[i]);
            if (d < ep.dist) {
                ep = Candidate{d, ls[i]};
                moved = true;
            }
        }
    }
    return ep;
}

// The neighbour-selection heuristic: walking candidates nearest first,
// keeps one only if it is nearer to the base than to every one kept, so
// links spread in all directions; at most max.
void select_links(const Graph &g, std::vector<Candidate> &cands, uint32_t max, uint32_t *out, uint32_t *count) {
    std::sort(cands.begin(), cands.end());
    uint32_t n = 0;
    for (const Candidate &c : cands) {
        if (n == max) break;
        bool keep = true;
        for (uint32_t i = 0; i < n && keep; i++) keep = g.dist(g.vec(uint32_t(c.id)), out[i]) >= c.dist;
        if (keep) out[n++] = uint32_t(c.id);
    }
    *count = n;
}

// Links `from` to `to` on level; when from's list is full, reselects it.
void link(const Graph &g, uint32_t from, uint32_t to, uint32_t level) {
    uint32_t *ls = g.links(from, level);
    uint32_t &cnt = g.node(from)->count[level];
    uint32_t max = g.max_links(level);
    if (cnt < max) {
        ls[cnt++] = to;
        return;
    }
    const float *v = g.vec(from);
    std::vector<Candidate> cands;
    cands.reserve(cnt + 1);
    for (uint32_t i = 0; i < cnt; i++) cands.push_back(Candidate{g.dist(v, ls[i]), ls[i]});
    cands.push_back(Candidate{g.dist(v, to), to});
    select_links(g, cands, max, ls, &cnt);
}

// A random level with P(level >= l) = m^-l, capped at the top level.
uint32_t random_level(HnswHeader *h) {
    Rng rng{h->rng};
    double u = 1.0 - rng.uniform();  // (0, 1]
    h->rng = rng.state;
    double level = -std::log(u) / std::log(double(h->m));
    return uint32_t(std::min(level, double(kHnswLevels - 1)));
}

}  // namespace

size_t hnsw_bytes(uint32_t dim, uint32_t cap, uint32_t m) { return kHeaderBytes + size_t(cap) * node_bytes(dim, m); }

void hnsw_init(void *mem, uint32_t dim, uint32_t cap, uint32_t m, Metric metric, uint64_t seed) {
    if (dim == 0 || m < 2) throw Error("hnsw: bad shape");
    HnswHeader *h = (HnswHeader *) mem;
    memset(h, 0, sizeof(*h));
    h->dim = dim;
    h->cap = cap;
    h->m = m;
    h->top = -1;
    h->metric = metric;
    h->rng = seed;
    h->node_bytes = node_bytes(dim, m);
}

bool hnsw_add(void *mem, const float *vec, uint32_t ef_construction) {
    Graph g(mem);
    HnswHeader *h = g.h;
    if (h->n >= h->cap) return false;
    uint32_t id = h->n;
    NodeHead *node = g.node(id);
    memset(node, 0, sizeof(NodeHead));
    node->level = random_level(h);
    memcpy(g.vec(id), vec, sizeof(float) * h->dim);
    if (h->top < 0) {
        h->entry = id;
        h->top = int32_t(node->level);
        h->n = 1;
        return true;
    }
    Candidate ep{g.dist(vec, h->entry), h->entry};
    for (int32_t l = h->top; l > int32_t(node->level); l--) ep = descend(g, vec, ep, uint32_t(l));
    std::vector<Candidate> eps{ep};
    for (int32_t l = std::min(int32_t(node->level), h->top); l >= 0; l--) {
        std::vector<Candidate> found = search_level(g, vec, eps, std::max(ef_construction, g.max_links(uint32_t(l))), uint32_t(l));
        std::vector<Candidate> cands = found;
        select_links(g, cands, g.max_links(uint32_t(l)), g.links(id, uint32_t(l)), &node->count[l]);
        for (uint32_t i = 0; i < node->count[l]; i++) link(g, g.links(id, uint32_t(l))[i], id, uint32_t(l));
        eps = std::move(found);
    }
    h->n = id + 1;
    if (int32_t(node->level) > h->top) {
        h->top = int32_t(node->level);
        h->entry = id;
    }
    return true;
}

size_t hnsw_search(const void *mem, const float *q, uint32_t ef, size_t k, Candidate *out) {
    Graph g(mem);
    if (g.h->n == 0 || k == 0) return 0;
    Candidate ep{g.dist(q, g.h->entry), g.h->entry};
    for (int32_t l = g.h->top; l > 0; l--) ep = descend(g, q, ep, uint32_t(l));
    std::vector<Candidate> found = search_level(g, q, {ep}, std::max(ef, uint32_t(std::min<size_t>(k, UINT32_MAX))), 0);
    size_t n = std::min(k, found.size());
    std::copy(found.begin(), found.begin() + n, out);
    return n;
}

}  // namespace drift
