// Maintenance on L0: flush, seeding of new buckets for rows no bucket
// reaches, requantization, and training an index built on no rows.
#include "maintain.h"

#include <cmath>

#include "../core/distance.hpp"
#include "../core/kmeans.hpp"
#include "../core/routing.hpp"
#include "../storage/buffers.h"
#include "../storage/cursor.h"

extern "C" {
#include "access/transam.h"
#include "utils/memutils.h"
}

namespace maint {

// Sets the metapage's L0 head, retires the flushed L0 chains (ids and
// first pages) and counts the flush.
static void finish_flush(Maint *m, BlockNumber head, const uint32 *chains, const BlockNumber *heads, uint32 nchains,
                         uint64 rows) {
    (void) retire_xid();  // (takes the maintainer's xid before any page is locked)
    DriftMetaEdit e;
    drift_meta_begin(m->index, &e);
    uint64 xid = retire_xid();  // under the metapage lock: no scan can take its view in between
    e.meta->l0_head = head;
    for (uint32 i = 0; i < nchains; i++) retire_chain(e.meta, chains[i], heads[i], DRIFT_PAGE_L0, xid);
    e.meta->flushes++;
    e.meta->flushed_rows += rows;
    e.meta->generation++;
    drift_meta_finish(&e);
    m->done.flushed += rows;
    refresh(m);
}

// True if L0 holds nothing but one empty page (nothing to flush).
static bool l0_empty(Maint *m) {
    const DriftMetaPageData *meta = &m->info->meta;
    if (meta->l0_head == InvalidBlockNumber) return true;
    if (meta->l0_head != meta->l0_tail) return false;
    Buffer buf = drift_read_locked(m->index, meta->l0_head, BUFFER_LOCK_SHARE, DRIFT_PAGE_L0, meta);
    bool empty = drift_vec_header(BufferGetPage(buf))->nslots == 0;
    UnlockReleaseBuffer(buf);
    return empty;
}

// Adds the rows of the first cold page of the chain at head to out (of an
// index that keeps no vectors, as many rows of its first page, from the table).
static void sample_chain(Relation index, const DriftMetaPageData *meta, BlockNumber head, Entries *out) {
    Buffer buf = drift_read_locked(index, head, BUFFER_LOCK_SHARE, DRIFT_PAGE_HOT, meta);
    DriftHotHeader h = *drift_hot_header(BufferGetPage(buf));
    if (!drift_keeps_vectors(meta)) {
        uint32 n = 0, cap = 256;
        ItemPointerData *tids = (ItemPointerData *) palloc(sizeof(ItemPointerData) * cap);
        hot_live_tids(BufferGetPage(buf), &tids, &n, &cap);
        UnlockReleaseBuffer(buf);
        entries_from_heap(index, meta, tids, Min(n, uint32(meta->cold_cap)), out);
        pfree(tids);
        return;
    }
    UnlockReleaseBuffer(buf);
    if (h.ncold == 0) return;
    buf = drift_read_locked(index, h.cold[0], BUFFER_LOCK_SHARE, DRIFT_PAGE_COLD, meta);
    Page page = BufferGetPage(buf);
    for (uint16 s = 0; s < drift_vec_header(page)->nslots; s++) {
        DriftVecEntry ve = drift_vec_entry(page, meta->dim, s);
        if (ItemPointerIsValid(&ve->tid)) entries_add(out, &ve->tid, page, s);
    }
    UnlockReleaseBuffer(buf);
}

// Fits a new quantizer to the rows being flushed and a sample of every
// bucket, and makes it current; the old one stays until no bucket uses it.
// With train_target, it is the first quantizer of an untrained index, which
// becomes trained with that mean bucket size.
static void requantize(Maint *m, const Entries *flushing, uint32 train_target = 0) {
    DriftInfo *info = m->info;
    uint32 dim = m->dim;
    Entries s = {0, 0, dim, NULL, NULL};
    for (uint32 i = 0; i < flushing->n; i += Max(1u, flushing->n / 65536))
        entries_add(&s, &flushing->tids[i], flushing->vecs + Size(i) * dim);
    for (uint32 b = 0; b < info->meta.nbuckets; b++)
        if (info->chains[b] != 0) sample_chain(m->index, &info->meta, info->heads[b], &s);
    float *q = (float *) palloc(sizeof(float) * dim * 2);
    drift::quantizer_fit(drift::CodeKind(info->meta.code_kind), s.vecs, s.n, dim, info->meta.opt_clip_pct, q, q + dim);
    double lid = drift::sample_dimension(s.vecs, s.n, dim);
    uint32 chain = alloc_chains(m, 1);
    BlockNumber head = drift_write_blob(m->index, MAIN_FORKNUM, chain, (const char *) q, sizeof(float) * dim * 2, m->wal);
    DriftMetaEdit e;
    drift_meta_begin(m->index, &e);
    e.meta->old_quant_head = e.meta->quant_head;
    e.meta->old_quant_chain = e.meta->quant_chain;
    e.meta->quant_head = head;
    e.meta->quant_chain = chain;
    if (lid > 0) e.meta->data_lid = drift_lid_store(lid);
    if (train_target > 0) {
        e.meta->flags |= DRIFT_META_TRAINED;
        e.meta->target_bucket = train_target;
    } else {
        e.meta->requantized++;
    }
    e.meta->generation++;
    drift_meta_finish(&e);
    m->done.requantized = train_target == 0;
    refresh(m);
}

// L0 rows an index built on no rows waits for before a flush trains it.
#define DRIFT_TRAIN_ROWS 1000

// The radius of every bucket (0 for a free slot), from the directory.
static float *bucket_radii(Maint *m) {
    const DriftInfo *info = m->info;
    float *r = (float *) palloc0(sizeof(float) * Max(info->meta.nbuckets, 1));
    for (uint32 pi = 0; pi < info->ndir; pi++) {
        Buffer buf = drift_read_locked(m->index, info->dir_blocks[pi], BUFFER_LOCK_SHARE, DRIFT_PAGE_DIR, &info->meta);
        Page page = BufferGetPage(buf);
        for (uint32 i = 0; i < drift_dir_header(page)->nentries; i++) {
            uint32 b = pi * info->meta.dir_cap + i;
            if (b < info->meta.nbuckets) r[b] = drift_dir_entry(page, m->dim, i)->radius;
        }
        UnlockReleaseBuffer(buf);
    }
    return r;
}

// Seeding: k-means gives entries idx[0..n) of e k buckets of their own.
static void seed(Maint *m, const Entries *e, const uint32 *idx, uint32 n, uint32 k) {
    uint32 dim = m->dim;
    float *rows = (float *) MemoryContextAllocHuge(CurrentMemoryContext, sizeof(float) * Size(n) * dim);
    for (uint32 i = 0; i < n; i++) memcpy(rows + Size(i) * dim, e->vecs + Size(idx[i]) * dim, sizeof(float) * dim);
    float *c = (float *) palloc(sizeof(float) * dim * k);
    drift::KMeansParams p{k, drift::Metric(m->info->meta.metric), m->info->meta.flushes * 7919 + n, 10, drift_interrupt()};
    drift::kmeans(rows, n, dim, p, c);
    uint32 *assign = (uint32 *) palloc(sizeof(uint32) * n);
    float *dist = (float *) palloc(sizeof(float) * n);
    drift::nearest_centroids(rows, n, c, k, dim, assign, dist);
    uint32 *part = (uint32 *) palloc(sizeof(uint32) * n);
    for (uint32 j = 0; j < k; j++) {
        uint32 cnt = 0;
        for (uint32 i = 0; i < n; i++)
            if (assign[i] == j) part[cnt++] = idx[i];
        if (cnt == 0) continue;  // (a new bucket retires nothing: no retired-list check)
        float *cj = c + Size(j) * dim;
        drift::mean_of(e->vecs, part, cnt, dim, cj);
        uint32 b = free_slot(m);
        uint32 chain = alloc_chains(m, 1);
        ChainWriter w;
        write_chain(m, chain, b, e, part, cnt, cj, &w);
        DriftDirEntryData fresh;
        memset(&fresh, 0, sizeof(fresh));
        fresh.temperature = 1.0f;  // every member just arrived
        EntryUpdate u = {cj, b, rewritten(fresh, w, cnt, radius_of(e, part, cnt, cj), 0)};
        MetaChange mc = {{0, 0}, 0, 1, 0, 0, 0, 0, false};
        commit(m, &u, 1, mc);
        m->done.seeded++;
    }
}

// Flush: moves every L0 row into the bucket of its nearest centroid.
void flush(Maint *m, bool force) {
    if (l0_empty(m) && !(force && m->info->meta.l0_tail != InvalidBlockNumber)) return;
    bool trained = (m->info->meta.flags & DRIFT_META_TRAINED) != 0;
    if (!trained && drift_l0_estimate(&m->info->meta, m->info->meta.l0_pages) < DRIFT_TRAIN_ROWS) return;
    BlockNumber stop = drift_l0_close(m->index, &m->info->meta);
    refresh(m);
    const DriftMetaPageData *meta = &m->info->meta;
    Entries e = {0, 0, m->dim, NULL, NULL};
    // The closed part of L0 holds one chain id per flush started on it (a
    // flush cut short closed L0 and left it), each retired with its first page.
    uint32 nchains = 0, capchains = 8;
    uint32 *chains = (uint32 *) palloc(sizeof(uint32) * capchains);
    BlockNumber *heads = (BlockNumber *) palloc(sizeof(BlockNumber) * capchains);
    DriftCursor c;
    drift_cursor_begin(&c, m->index, meta->l0_head, DRIFT_PAGE_L0, 0, meta, BUFFER_LOCK_SHARE);
    for (Page page; (page = drift_cursor_next(&c)) != NULL && drift_cursor_block(&c) != stop;) {
        uint32 chain = DriftPageGetOpaque(page)->chain;
        if (nchains == 0 || chains[nchains - 1] != chain) {
            if (nchains == capchains) {
                capchains *= 2;
                chains = (uint32 *) repalloc(chains, sizeof(uint32) * capchains);
                heads = (BlockNumber *) repalloc(heads, sizeof(BlockNumber) * capchains);
            }
            heads[nchains] = drift_cursor_block(&c);
            chains[nchains++] = chain;
        }
        DriftVecHeader *h = drift_vec_header(page);
        for (uint16 s = 0; s < h->nslots; s++) {
            DriftVecEntry ve = drift_vec_entry(page, m->dim, s);
            if (ItemPointerIsValid(&ve->tid)) entries_add(&e, &ve->tid, page, s);
        }
    }
    if (BufferIsValid(c.buf))
        drift_cursor_end(&c);
    else
        drift_corrupt(m->index, meta->l0_head, "The L0 chain ends before its tail.");
    if (nchains > 1) drop_placed(m, &e);
    uint32 *idx = iota(e.n);
    if (!trained || m->info->meta.live_buckets == 0) {
        // Training, as a build would (or seeding alone, if a training was
        // cut short after its quantizer).
        uint32 lists = drift::choose_lists(m->info->meta.opt_lists, e.n, e.n);
        if (e.n > 0) {
            if (!trained) requantize(m, &e, Max(1u, e.n / lists));
            seed(m, &e, idx, e.n, lists);
        }
        finish_flush(m, stop, chains, heads, nchains, e.n);
        return;
    }
    if (m->info->old_quant == NULL && drift::quantizer_misfits(drift_quantizer(m->info, false), e.vecs, e.n)) requantize(m, &e);
    uint32 *target = (uint32 *) palloc(sizeof(uint32) * Max(e.n, 1));
    float *dist = (float *) palloc(sizeof(float) * Max(e.n, 1));
    route(m, &e, idx, e.n, PG_UINT32_MAX, target, dist);
    // Rows farther from their nearest centroid than any member of its
    // bucket ever was come from a region no bucket covers. Enough of them
    // (half a bucket) get buckets of their own, instead of pulling old
    // buckets' centroids away from their members.
    float *radius = bucket_radii(m);
    uint32 *far = (uint32 *) palloc(sizeof(uint32) * Max(e.n, 1));
    uint32 nfar = 0, nnear = 0;
    for (uint32 i = 0; i < e.n; i++)
        if (drift::row_is_far(dist[i], radius[target[i]])) far[nfar++] = i;
    uint32 nseed = drift::seed_buckets(nfar, m->info->meta.target_bucket);
    if (nseed > 0) {
        for (uint32 i = 0; i < e.n; i++)
            if (!drift::row_is_far(dist[i], radius[target[i]])) {
                idx[nnear] = i;
                target[nnear++] = target[i];
            }
        seed(m, &e, far, nfar, nseed);
    } else {
        nnear = e.n;
    }
    append_to_buckets(m, &e, idx, target, nnear, true);
    finish_flush(m, stop, chains, heads, nchains, e.n);
}

}  // namespace maint
