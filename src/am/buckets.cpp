// Maintenance on buckets: split (with neighbour stealing), merge,
// compaction, and completing a move of rows a cancel or crash cut short.
#include "maintain.h"

#include <cmath>

#include "../core/distance.hpp"
#include "../core/kmeans.hpp"
#include "../core/topk.hpp"


namespace maint {

static void rewrite_without(Maint *m, uint32 b, const Entries *e, const uint32 *idx, uint32 n, uint64 moved);

// Compaction: rewrites bucket b's chain with its live entries only, and
// resets its centroid to their exact mean.
void compact(Maint *m, uint32 b) {
    Entries e = {0, 0, m->dim, NULL, NULL};
    read_chain(m->index, &m->info->meta, m->info->heads[b], m->info->chains[b], &e);
    DriftDirEntryData old = entry_of(m, b);
    uint32 *idx = iota(e.n);
    float *c = (float *) palloc(sizeof(float) * m->dim);
    memcpy(c, m->info->centroids + Size(b) * m->dim, sizeof(float) * m->dim);
    drift::mean_of(e.vecs, idx, e.n, m->dim, c);
    float moved = std::sqrt(drift::order_distance(drift::Metric::L2, c, m->info->centroids + Size(b) * m->dim, m->dim));
    uint32 chain = alloc_chains(m, 1);
    ChainWriter w;
    write_chain(m, chain, b, &e, idx, e.n, c, &w);
    EntryUpdate u = {c, b, rewritten(old, w, e.n, radius_of(&e, idx, e.n, c), moved)};
    MetaChange mc = {{old.chain, 0}, 1, 0, 0, 0, 1, 0, false};
    commit(m, &u, 1, mc);
}

// Merge: scatters bucket b's entries into their nearest other buckets and
// frees its directory slot.
void merge(Maint *m, uint32 b) {
    Entries e = {0, 0, m->dim, NULL, NULL};
    read_chain(m->index, &m->info->meta, m->info->heads[b], m->info->chains[b], &e);
    DriftDirEntryData old = entry_of(m, b);
    if (m->info->meta.moving_kind == DRIFT_MOVE_MERGE)
        drop_placed(m, &e, b);  // completing a merge cut short
    else
        begin_move(m, b, DRIFT_MOVE_MERGE);
    uint32 *idx = iota(e.n);
    uint32 *target = (uint32 *) palloc(sizeof(uint32) * Max(e.n, 1));
    route(m, &e, idx, e.n, b, target);
    append_to_buckets(m, &e, idx, target, e.n, false);
    EntryUpdate u = {NULL, b, old};
    u.fields.head = u.fields.tail = InvalidBlockNumber;
    u.fields.chain = u.fields.nlive = u.fields.ndead = 0;
    u.fields.temperature = 0;
    MetaChange mc = {{old.chain, 0}, 1, -1, 0, 1, 0, 0, false, true};
    commit(m, &u, 1, mc);
}

// Neighbour stealing after a split of a bucket whose centroid was `old`
// into buckets halves[2]: entries of the nearest other buckets that are
// closer to a new centroid than to their own move to it.
static void steal(Maint *m, const float *old, const uint32 halves[2]) {
    if (drift_steal_neighbours <= 0 || m->held) return;  // (held: each neighbour rewritten would wait too)
    uint32 *ids;
    float *cents;
    uint32 k = live_centroids(m, PG_UINT32_MAX, &ids, &cents);
    drift::Candidate *near = (drift::Candidate *) palloc(sizeof(drift::Candidate) * Max(k, 1));
    uint32 nn = 0;
    for (uint32 i = 0; i < k; i++)
        if (ids[i] != halves[0] && ids[i] != halves[1])
            near[nn++] = drift::Candidate{drift::order_distance(drift::Metric::L2, old, cents + Size(i) * m->dim, m->dim), ids[i]};
    uint32 take = Min(nn, uint32(drift_steal_neighbours));
    drift::select_smallest(near, nn, take);
    for (uint32 t = 0; t < take; t++) {
        uint32 nb = near[t].id;
        const float *own = m->info->centroids + Size(nb) * m->dim;
        const float *c0 = m->info->centroids + Size(halves[0]) * m->dim;
        const float *c1 = m->info->centroids + Size(halves[1]) * m->dim;
        Entries e = {0, 0, m->dim, NULL, NULL};
        read_chain(m->index, &m->info->meta, m->info->heads[nb], m->info->chains[nb], &e);
        uint32 *moved = (uint32 *) palloc(sizeof(uint32) * Max(e.n, 1));
        uint32 *to = (uint32 *) palloc(sizeof(uint32) * Max(e.n, 1));
        uint32 *kept = (uint32 *) palloc(sizeof(uint32) * Max(e.n, 1));
        uint32 nmoved = 0, nkept = 0;
        for (uint32 i = 0; i < e.n; i++) {
            int h = drift::steal_target(e.vecs + Size(i) * m->dim, own, c0, c1, m->dim);
            if (h >= 0) {
                moved[nmoved] = i;
                to[nmoved++] = halves[h];
            } else
                kept[nkept++] = i;
        }
        if (nmoved == 0) continue;
        begin_move(m, nb, DRIFT_MOVE_STEAL);
        append_to_buckets(m, &e, moved, to, nmoved, false);
        rewrite_without(m, nb, &e, kept, nkept, nmoved);
    }
}

// Rewrites bucket b's chain with entries idx[0..n) of e, its centroid their
// mean, once `moved` of its rows are in other buckets; ends the move.
static void rewrite_without(Maint *m, uint32 b, const Entries *e, const uint32 *idx, uint32 n, uint64 moved) {
    DriftDirEntryData old = entry_of(m, b);
    const float *own = m->info->centroids + Size(b) * m->dim;
    float *c = (float *) palloc(sizeof(float) * m->dim);
    memcpy(c, own, sizeof(float) * m->dim);
    drift::mean_of(e->vecs, idx, n, m->dim, c);
    float shift = std::sqrt(drift::order_distance(drift::Metric::L2, c, own, m->dim));
    uint32 chain = alloc_chains(m, 1);
    ChainWriter w;
    write_chain(m, chain, b, e, idx, n, c, &w);
    EntryUpdate u = {c, b, rewritten(old, w, n, radius_of(e, idx, n, c), shift)};
    MetaChange mc = {{old.chain, 0}, 1, 0, 0, 0, 0, moved, false, true};
    commit(m, &u, 1, mc);
}

// Completes a move of rows out of a bucket that a cancel or crash cut
// short: rows it already appended elsewhere leave the bucket (a steal), or
// the rest follow them and the slot is freed (a merge). So no row stays in
// two buckets. Reads every bucket's hot pages, as after an interrupted flush.
void complete_move(Maint *m) {
    const DriftMetaPageData *meta = &m->info->meta;
    uint32 b = meta->moving_bucket;
    if (meta->moving_kind == 0) return;
    if (b >= meta->nbuckets || m->info->chains[b] != meta->moving_chain) {
        // The move committed (the marker outlived it only if its commit
        // record is the one that was lost: then the bucket is as it was).
        MetaChange mc = {{0, 0}, 0, 0, 0, 0, 0, 0, false, true};
        commit(m, NULL, 0, mc);
        return;
    }
    if (meta->moving_kind == DRIFT_MOVE_MERGE && m->info->meta.live_buckets > 1) {
        merge(m, b);
        return;
    }
    Entries e = {0, 0, m->dim, NULL, NULL};
    read_chain(m->index, meta, m->info->heads[b], m->info->chains[b], &e);
    uint32 before = e.n;
    drop_placed(m, &e, b);
    uint32 *idx = iota(e.n);
    rewrite_without(m, b, &e, idx, e.n, before - e.n);
}

// Split: divides bucket b by 2-means into b and a new bucket, then lets
// the two new centroids steal from their neighbours. False if the entries
// do not divide (all equal).
bool split(Maint *m, uint32 b) {
    Entries e = {0, 0, m->dim, NULL, NULL};
    read_chain(m->index, &m->info->meta, m->info->heads[b], m->info->chains[b], &e);
    if (e.n < 2) return false;
    DriftDirEntryData old = entry_of(m, b);
    float *old_c = (float *) palloc(sizeof(float) * m->dim);
    memcpy(old_c, m->info->centroids + Size(b) * m->dim, sizeof(float) * m->dim);
    float *c = (float *) palloc(sizeof(float) * m->dim * 2);
    drift::KMeansParams p{2, drift::Metric(m->info->meta.metric), uint64(b) * 7919 + m->info->meta.splits, 10,
                          drift_interrupt()};
    drift::kmeans(e.vecs, e.n, m->dim, p, c);
    uint32 *assign = (uint32 *) palloc(sizeof(uint32) * e.n);
    float *dist = (float *) palloc(sizeof(float) * e.n);
    drift::nearest_centroids(e.vecs, e.n, c, 2, m->dim, assign, dist);
    uint32 *part[2];
    uint32 n[2] = {0, 0};
    part[0] = (uint32 *) palloc(sizeof(uint32) * e.n);
    part[1] = (uint32 *) palloc(sizeof(uint32) * e.n);
    for (uint32 i = 0; i < e.n; i++) part[assign[i]][n[assign[i]]++] = i;
    if (n[0] == 0 || n[1] == 0) return false;
    uint32 nb = free_slot(m);
    uint32 chain = alloc_chains(m, 2);
    EntryUpdate u[2];
    uint32 halves[2] = {b, nb};
    for (int h = 0; h < 2; h++) {
        drift::mean_of(e.vecs, part[h], n[h], m->dim, c + Size(h) * m->dim);
        ChainWriter w;
        const float *ch = c + Size(h) * m->dim;
        write_chain(m, chain + h, halves[h], &e, part[h], n[h], ch, &w);
        float shift = std::sqrt(drift::order_distance(drift::Metric::L2, ch, old_c, m->dim));
        u[h] = EntryUpdate{ch, halves[h], rewritten(old, w, n[h], radius_of(&e, part[h], n[h], ch), shift)};
    }
    MetaChange mc = {{old.chain, 0}, 1, 1, 1, 0, 0, 0, false};
    commit(m, u, 2, mc);
    steal(m, old_c, halves);
    return true;
}

}  // namespace maint
