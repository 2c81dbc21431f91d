// Helpers of the maintenance steps: reading and writing bucket entries,
// committing directory changes, retiring chains (see maintain.h).
#include "maintain.h"

#include <algorithm>
#include <cmath>

#include "../core/distance.hpp"
#include "../core/kmeans.hpp"
#include "../core/sq8.hpp"
#include "../storage/buffers.h"
#include "../storage/cursor.h"

extern "C" {
#include "access/table.h"
#include "access/transam.h"
#include "access/xact.h"
#include "storage/proc.h"
#include "utils/memutils.h"
}

namespace maint {

// Appends one entry whose vector the caller writes at the returned place.
static float *entries_push(Entries *e, const ItemPointerData *tid) {
    if (e->n == e->cap) {
        e->cap = Max(256u, e->cap * 2);
        if (e->tids == NULL) {
            e->tids = (ItemPointerData *) palloc(sizeof(ItemPointerData) * e->cap);
            e->vecs = (float *) MemoryContextAllocHuge(CurrentMemoryContext, sizeof(float) * e->dim * e->cap);
        } else {
            e->tids = (ItemPointerData *) repalloc(e->tids, sizeof(ItemPointerData) * e->cap);
            e->vecs = (float *) repalloc_huge(e->vecs, sizeof(float) * e->dim * e->cap);
        }
    }
    e->tids[e->n] = *tid;
    return e->vecs + Size(e->n++) * e->dim;
}

void entries_add(Entries *e, const ItemPointerData *tid, const float *vec) {
    memcpy(entries_push(e, tid), vec, sizeof(float) * e->dim);
}

void entries_add(Entries *e, const ItemPointerData *tid, Page page, uint16 slot) {
    drift_vec_copy(page, e->dim, slot, entries_push(e, tid));
}

void entries_from_heap(Relation index, const DriftMetaPageData *meta, const ItemPointerData *tids, uint32 n,
                       Entries *out) {
    Relation heap = table_open(index->rd_index->indrelid, AccessShareLock);  // (the maintainer's caller locked it)
    DriftHeapReader r;
    drift_heap_reader_begin(&r, index, heap, NULL, meta);
    for (uint32 i = 0; i < n; i++) {
        CHECK_FOR_INTERRUPTS();
        if (const float *v = drift_heap_vector(&r, (ItemPointer) &tids[i])) entries_add(out, &tids[i], v);
    }
    drift_heap_reader_end(&r);
    table_close(heap, NoLock);
}

void hot_live_tids(Page page, ItemPointerData **tids, uint32 *n, uint32 *cap) {
    const ItemPointerData *slots = drift_hot_tids(page);
    for (uint16 s = 0; s < drift_hot_header(page)->nslots; s++) {
        if (!ItemPointerIsValid(&slots[s])) continue;
        if (*n == *cap) *tids = (ItemPointerData *) repalloc(*tids, sizeof(ItemPointerData) * (*cap *= 2));
        (*tids)[(*n)++] = slots[s];
    }
}

// Reads every live entry of bucket chain `chain` starting at head.
void read_chain(Relation index, const DriftMetaPageData *meta, BlockNumber head, uint32 chain, Entries *out) {
    uint32 dim = meta->dim;
    DriftCursor c;
    drift_cursor_begin(&c, index, head, DRIFT_PAGE_HOT, chain, meta, BUFFER_LOCK_SHARE);
    if (!drift_keeps_vectors(meta)) {
        // The TIDs first; the table's rows once no index page is locked.
        uint32 n = 0, cap = 256;
        ItemPointerData *all = (ItemPointerData *) palloc(sizeof(ItemPointerData) * cap);
        for (Page page; (page = drift_cursor_next(&c)) != NULL;) hot_live_tids(page, &all, &n, &cap);
        entries_from_heap(index, meta, all, n, out);
        pfree(all);
        return;
    }
    for (Page page; (page = drift_cursor_next(&c)) != NULL;) {
        const DriftHotHeader *h = drift_hot_header(page);
        ItemPointerData *tids = drift_hot_tids(page);
        BlockNumber blkno = drift_cursor_block(&c);
        if (h->nslots > 0 && (h->nslots - 1) / meta->cold_cap >= h->ncold) {
            drift_cursor_end(&c);
            drift_corrupt(index, blkno, "A slot has no cold page.");
        }
        // Cold pages are locked after their hot page, as appends lock them.
        for (uint16 ci = 0; ci < h->ncold; ci++) {
            uint16 first = ci * meta->cold_cap, last = Min(h->nslots, uint16(first + meta->cold_cap));
            bool any = false;
            for (uint16 s = first; s < last && !any; s++) any = ItemPointerIsValid(&tids[s]);
            if (!any) continue;
            Buffer cbuf = drift_read_locked(index, h->cold[ci], BUFFER_LOCK_SHARE, DRIFT_PAGE_COLD, meta);
            Page cpage = BufferGetPage(cbuf);
            for (uint16 s = first; s < last; s++) {
                if (!ItemPointerIsValid(&tids[s])) continue;
                uint16 cs = s - first;
                DriftVecEntry ve = drift_vec_entry(cpage, dim, cs);
                if (DriftPageGetOpaque(cpage)->chain != chain || cs >= drift_vec_header(cpage)->nslots ||
                    !ItemPointerEquals(&ve->tid, &tids[s])) {
                    UnlockReleaseBuffer(cbuf);
                    drift_cursor_end(&c);
                    drift_corrupt(index, h->cold[ci], "A cold page does not hold the TID of its hot slot.");
                }
                entries_add(out, &tids[s], cpage, cs);
            }
            UnlockReleaseBuffer(cbuf);
        }
    }
}


// The live buckets other than `exclude` (ids and centroids); returns how many.
uint32 live_centroids(Maint *m, uint32 exclude, uint32 **ids, float **cents) {
    const DriftInfo *info = m->info;
    *ids = (uint32 *) palloc(sizeof(uint32) * Max(info->meta.nbuckets, 1));
    *cents = (float *) palloc(sizeof(float) * m->dim * Max(info->meta.nbuckets, 1));
    uint32 k = 0;
    for (uint32 b = 0; b < info->meta.nbuckets; b++) {
        if (info->chains[b] == 0 || b == exclude) continue;
        (*ids)[k] = b;
        memcpy(*cents + Size(k) * m->dim, info->centroids + Size(b) * m->dim, sizeof(float) * m->dim);
        k++;
    }
    return k;
}

// Hands out count new chain ids, durably, before any page carries them (a
// crash must not let a later chain reuse the id of orphaned pages).
uint32 alloc_chains(Maint *m, uint32 count) {
    DriftMetaEdit e;
    drift_meta_begin(m->index, &e);
    uint32 first = e.meta->next_chain;
    e.meta->next_chain += count;
    drift_meta_finish(&e);
    return first;
}

// Writes entries idx[0..n) of e as a new chain for bucket b, whose
// centroid is c (a RaBitQ chain's codes are made against it).
void write_chain(Maint *m, uint32 chain, uint32 b, const Entries *e, const uint32 *idx, uint32 n, const float *c,
                 ChainWriter *w) {
    DriftInfo *info = m->info;
    DriftCentre centre;
    drift::Quantizer q = drift_chain_quantizer(drift_quantizer(info, false), c, &centre);
    uint8 *code = (uint8 *) palloc(info->meta.code_bytes);
    drift_chain_start(w, m->index, MAIN_FORKNUM, &info->meta, m->wal, chain, b, centre.halves);
    for (uint32 i = 0; i < n; i++) {
        const float *v = e->vecs + Size(idx[i]) * m->dim;
        drift::encode(q, v, code);
        drift_chain_add(w, &e->tids[idx[i]], code, v);
        if ((i & 255) == 255) CHECK_FOR_INTERRUPTS();
    }
    drift_chain_finish(w);
    pfree(code);
    drift_free_centre(&centre);
}

// A bucket's radius over entries idx[0..n) of e around c (drift::radius_of).
float radius_of(const Entries *e, const uint32 *idx, uint32 n, const float *c) {
    return drift::radius_of(e->vecs, idx, n, e->dim, c);
}

// The transaction id a chain retired now carries: the maintainer's own
// (VACUUM, which must not take one, the next one instead). A scan that may
// still read the chain took its snapshot while that xid ran, or before, so
// its xmin is no later than it; once the xid horizon has passed it, no such
// scan is left and the chain is released. (VACUUM reads the next xid with
// the metapage locked: a scan whose snapshot is newer reads the new view.)
// The janitor runs each step in a
// transaction of its own, so the chains one step retires are released by
// the next steps as soon as older scans end.
uint64 retire_xid() {
    return U64FromFullTransactionId((MyProc->statusFlags & PROC_IN_VACUUM) ? ReadNextFullTransactionId()
                                                                           : GetTopFullTransactionId());
}

// Adds a chain (its first page and page type) to the retired list of the
// metapage being edited, or to the overflow when the list is full.
void retire_chain(DriftMetaPage mp, uint32 chain, BlockNumber head, uint16 type, uint64 xid) {
    if (mp->nretired < DRIFT_MAX_RETIRED) {
        mp->retired[mp->nretired++] = DriftRetired{chain, head, type, 0, uint32(xid >> 32), uint32(xid)};
        return;
    }
    mp->overflow_chain = Max(mp->overflow_chain, chain + 1);
    uint64 o = Max(drift_xid64(mp->overflow_xid_hi, mp->overflow_xid_lo), xid);
    mp->overflow_xid_hi = uint32(o >> 32);
    mp->overflow_xid_lo = uint32(o);
}

// Applies up to two directory entry updates and the metapage change in one
// WAL record, bumping the generation. A bucket just past the directory's
// last page gets a new directory page.
void commit(Maint *m, const EntryUpdate *u, int nu, const MetaChange &c) {
    Relation index = m->index;
    const DriftInfo *info = m->info;
    const DriftMetaPageData *meta = &info->meta;
    (void) retire_xid();  // (takes the maintainer's xid before any page is locked)
    Buffer newdir = InvalidBuffer;
    for (int i = 0; i < nu; i++)
        if (u[i].bucket / meta->dir_cap >= info->ndir && !BufferIsValid(newdir))
            newdir = drift_new_buffer(index, MAIN_FORKNUM);
    Buffer bufs[4];
    BlockNumber blks[4];
    int nb = 0;
    auto lock_dir = [&](BlockNumber blk) {
        for (int j = 0; j < nb; j++)
            if (blks[j] == blk) return;
        bufs[nb] = drift_read_locked(index, blk, BUFFER_LOCK_EXCLUSIVE, DRIFT_PAGE_DIR, meta);
        blks[nb++] = blk;
    };
    for (int i = 0; i < nu; i++)
        if (u[i].bucket / meta->dir_cap < info->ndir) lock_dir(info->dir_blocks[u[i].bucket / meta->dir_cap]);
    if (BufferIsValid(newdir) && info->ndir > 0) lock_dir(info->dir_blocks[info->ndir - 1]);

    DriftMetaEdit me;
    drift_meta_begin(index, &me);
    uint64 xid = retire_xid();  // under the metapage lock: no scan can take its view in between
    DriftMetaPage mp = me.meta;
    Page pages[4];
    for (int j = 0; j < nb; j++) pages[j] = drift_meta_add(&me, bufs[j], 0);
    Page npage = NULL;
    if (BufferIsValid(newdir)) {
        npage = drift_meta_add(&me, newdir, GENERIC_XLOG_FULL_IMAGE);
        drift_page_init(npage, DRIFT_PAGE_DIR, 0, mp->vec_kind);
        if (info->ndir == 0) mp->dir_head = BufferGetBlockNumber(newdir);  // a newly trained index's first
        for (int j = 0; j < nb; j++)
            if (blks[j] == info->dir_blocks[info->ndir - 1]) DriftPageGetOpaque(pages[j])->next = BufferGetBlockNumber(newdir);
    }
    BlockNumber heads[2] = {InvalidBlockNumber, InvalidBlockNumber};
    for (int i = 0; i < nu; i++) {
        uint32 pi = u[i].bucket / meta->dir_cap, slot = u[i].bucket % meta->dir_cap;
        Page p = npage;
        if (pi < info->ndir)
            for (int j = 0; j < nb; j++)
                if (blks[j] == info->dir_blocks[pi]) p = pages[j];
        DriftDirHeader *dh = drift_dir_header(p);
        if (slot >= dh->nentries) dh->nentries = slot + 1;
        DriftDirEntry e = drift_dir_entry(p, m->dim, slot);
        for (int k = 0; k < c.nretire; k++)  // a retired chain is the one an entry leaves
            if (e->chain == c.retire[k]) heads[k] = e->head;
        memcpy(e, &u[i].fields, offsetof(DriftDirEntryData, centroid));
        if (u[i].centroid) drift_dir_set_centroid(p, m->dim, slot, u[i].centroid);
        drift_page_set_bounds(p, m->dim);
        mp->nbuckets = Max(mp->nbuckets, u[i].bucket + 1);
    }
    for (int i = 0; i < c.nretire; i++) retire_chain(mp, c.retire[i], heads[i], DRIFT_PAGE_HOT, xid);
    if (c.drop_old_quant) {
        retire_chain(mp, mp->old_quant_chain, mp->old_quant_head, DRIFT_PAGE_BLOB, xid);
        mp->old_quant_head = InvalidBlockNumber;
    }
    if (c.moved) mp->moving_kind = 0, mp->moving_bucket = mp->moving_chain = 0;
    mp->live_buckets += c.live_delta;
    mp->splits += c.splits;
    mp->merges += c.merges;
    mp->compactions += c.compactions;
    mp->stolen += c.stolen;
    mp->generation++;
    drift_meta_finish(&me);
    for (int j = 0; j < nb; j++) UnlockReleaseBuffer(bufs[j]);
    if (BufferIsValid(newdir)) UnlockReleaseBuffer(newdir);
    m->done.splits += c.splits;
    m->done.merges += c.merges;
    m->done.compactions += c.compactions;
    m->done.stolen += c.stolen;
    refresh(m);
}

// The directory entry of bucket b as the cache has it (fields only).
DriftDirEntryData entry_of(Maint *m, uint32 b) {
    DriftDirSlot slot = drift_dir_slot(m->info, b);
    Buffer buf = drift_read_locked(m->index, slot.blkno, BUFFER_LOCK_SHARE, DRIFT_PAGE_DIR, &m->info->meta);
    DriftDirEntryData e;
    memcpy(&e, drift_dir_entry(BufferGetPage(buf), m->dim, slot.slot), offsetof(DriftDirEntryData, centroid));
    UnlockReleaseBuffer(buf);
    return e;
}

// Adds entries idx[0..n) of e to the chains of the buckets in target[] (one
// per listed entry, grouped by the caller or not), and folds them into the
// buckets' running means, temperatures and radii.
void append_to_buckets(Maint *m, const Entries *e, const uint32 *idx, const uint32 *target, uint32 n,
                              bool count_heat) {
    if (n == 0) return;
    DriftInfo *info = m->info;
    uint32 dim = m->dim, nbk = info->meta.nbuckets;
    // Counting sort of the entries by bucket.
    uint32 *start = (uint32 *) palloc0(sizeof(uint32) * (nbk + 1));
    for (uint32 i = 0; i < n; i++) start[target[i] + 1]++;
    for (uint32 b = 0; b < nbk; b++) start[b + 1] += start[b];
    uint32 *order = (uint32 *) palloc(sizeof(uint32) * n);
    uint32 *fill = (uint32 *) palloc(sizeof(uint32) * nbk);
    memcpy(fill, start, sizeof(uint32) * nbk);
    for (uint32 i = 0; i < n; i++) order[fill[target[i]]++] = idx[i];

    ItemPointerData *tids = (ItemPointerData *) palloc(sizeof(ItemPointerData) * n);
    Size cb = info->meta.code_bytes;
    uint8 *codes = (uint8 *) MemoryContextAllocHuge(CurrentMemoryContext, Size(n) * cb);
    float *vecs = (float *) MemoryContextAllocHuge(CurrentMemoryContext, sizeof(float) * Size(n) * dim);
    for (uint32 i = 0; i < n; i++) {
        tids[i] = e->tids[order[i]];
        memcpy(vecs + Size(i) * dim, e->vecs + Size(order[i]) * dim, sizeof(float) * dim);
    }
    for (uint32 b = 0; b < nbk; b++) {
        uint32 cnt = start[b + 1] - start[b];
        if (cnt == 0) continue;
        CHECK_FOR_INTERRUPTS();
        // Codes in the quantizer the bucket's chain was written with.
        drift::Quantizer q = drift_bucket_quantizer(m->index, info, b);
        for (uint32 i = start[b]; i < start[b + 1]; i++) drift::encode(q, vecs + Size(i) * dim, codes + Size(i) * cb);
        if (q.kind == drift::CodeKind::RaBitQ) pfree((void *) q.a);  // (its centre, read for this bucket)
        drift_bucket_append(m->index, &info->meta, drift_dir_slot(info, b), info->chains[b], cnt, tids + start[b],
                            codes + Size(start[b]) * cb, vecs + Size(start[b]) * dim);
    }

    // Directory statistics, one record per directory page.
    float *sum = (float *) palloc(sizeof(float) * dim), *cen = (float *) palloc(sizeof(float) * dim);
    for (uint32 pi = 0; pi < info->ndir; pi++) {
        uint32 lo = pi * info->meta.dir_cap, hi = Min(nbk, lo + info->meta.dir_cap);
        bool any = false;
        for (uint32 b = lo; b < hi && !any; b++) any = start[b + 1] > start[b];
        if (!any) continue;
        Buffer dbuf = drift_read_locked(m->index, info->dir_blocks[pi], BUFFER_LOCK_EXCLUSIVE, DRIFT_PAGE_DIR, &info->meta);
        GenericXLogState *st = GenericXLogStart(m->index);
        Page p = GenericXLogRegisterBuffer(st, dbuf, 0);
        for (uint32 b = lo; b < hi; b++) {
            uint32 cnt = start[b + 1] - start[b];
            if (cnt == 0) continue;
            DriftDirEntry de = drift_dir_entry(p, dim, b - lo);
            memset(sum, 0, sizeof(float) * dim);
            for (uint32 i = start[b]; i < start[b + 1]; i++)
                for (uint32 j = 0; j < dim; j++) sum[j] += vecs[Size(i) * dim + j];
            drift_dir_centroid(p, dim, b - lo, cen);
            de->moved += drift::absorb_into_mean(cen, de->nlive, sum, cnt, dim);
            drift_dir_set_centroid(p, dim, b - lo, cen);
            de->nlive += cnt;
            if (count_heat) de->temperature = drift::next_temperature(de->temperature, cnt, de->nlive);
            float r2 = de->radius * de->radius;
            for (uint32 i = start[b]; i < start[b + 1]; i++)
                r2 = Max(r2, drift::order_distance(drift::Metric::L2, vecs + Size(i) * dim, cen, dim));
            de->radius = std::sqrt(r2);
        }
        GenericXLogFinish(st);
        UnlockReleaseBuffer(dbuf);
    }
    pfree(sum);
    pfree(cen);
    pfree(tids);
    pfree(codes);
    pfree(vecs);
    pfree(order);
    pfree(fill);
    pfree(start);
}

// Nearest live bucket (other than exclude) of each entry idx[0..n) of e,
// into target, and with dist the squared L2 distance to its centroid.
void route(Maint *m, const Entries *e, const uint32 *idx, uint32 n, uint32 exclude, uint32 *target, float *dist) {
    uint32 *ids;
    float *cents;
    uint32 k = live_centroids(m, exclude, &ids, &cents);
    float *rows = (float *) MemoryContextAllocHuge(CurrentMemoryContext, sizeof(float) * Size(Max(n, 1)) * m->dim);
    for (uint32 i = 0; i < n; i++) memcpy(rows + Size(i) * m->dim, e->vecs + Size(idx[i]) * m->dim, sizeof(float) * m->dim);
    float *d = dist ? dist : (float *) palloc(sizeof(float) * Max(n, 1));
    drift::nearest_centroids(rows, n, cents, k, m->dim, target, d);
    for (uint32 i = 0; i < n; i++) target[i] = ids[target[i]];
    if (!dist) pfree(d);
    pfree(rows);
    pfree(ids);
    pfree(cents);
}

// 0, 1, ..., n-1.
uint32 *iota(uint32 n) {
    uint32 *idx = (uint32 *) palloc(sizeof(uint32) * Max(n, 1));
    for (uint32 i = 0; i < n; i++) idx[i] = i;
    return idx;
}

// Entry fields for a bucket rewritten with n members around centroid c.
DriftDirEntryData rewritten(const DriftDirEntryData &old, const ChainWriter &w, uint32 n, float radius,
                                   float moved) {
    DriftDirEntryData f = old;
    f.head = w.head;
    f.tail = w.tail;
    f.chain = w.chain;
    f.nlive = n;
    f.ndead = 0;
    f.radius = radius;
    f.moved = old.moved + moved;
    f.quant = w.meta->quant_chain;
    return f;
}

// A free directory slot for a new bucket: a merged bucket's, or the next one.
uint32 free_slot(Maint *m) {
    for (uint32 b = 0; b < m->info->meta.nbuckets; b++)
        if (m->info->chains[b] == 0) return b;
    return m->info->meta.nbuckets;
}

// Orders TIDs.
static bool tid_less(const ItemPointerData &a, const ItemPointerData &b) {
    return ItemPointerCompare((ItemPointer) &a, (ItemPointer) &b) < 0;
}

// Drops from e the rows some bucket (other than exclude) already holds. A flush cut short (a
// cancel, an error, a crash) closed L0 and may have moved some of its rows
// into buckets before it could move L0's head past them; the next flush
// finds them in L0 again (its closed part then holds several chain ids)
// and must not add them twice. Reads every bucket's hot pages: the cost of
// a flush that follows an interrupted one.
void drop_placed(Maint *m, Entries *e, uint32 exclude) {
    if (e->n == 0) return;
    ItemPointerData *sorted = (ItemPointerData *) palloc(sizeof(ItemPointerData) * e->n);
    memcpy(sorted, e->tids, sizeof(ItemPointerData) * e->n);
    std::sort(sorted, sorted + e->n, tid_less);
    bool *placed = (bool *) palloc0(sizeof(bool) * e->n);
    const DriftInfo *info = m->info;
    for (uint32 b = 0; b < info->meta.nbuckets; b++) {
        if (info->chains[b] == 0 || b == exclude) continue;
        DriftCursor c;
        drift_cursor_begin(&c, m->index, info->heads[b], DRIFT_PAGE_HOT, info->chains[b], &info->meta, BUFFER_LOCK_SHARE);
        for (Page page; (page = drift_cursor_next(&c)) != NULL;) {
            const ItemPointerData *tids = drift_hot_tids(page);
            for (uint16 i = 0; i < drift_hot_header(page)->nslots; i++) {
                if (!ItemPointerIsValid(&tids[i])) continue;
                const ItemPointerData *it = std::lower_bound(sorted, sorted + e->n, tids[i], tid_less);
                if (it != sorted + e->n && ItemPointerEquals((ItemPointer) it, (ItemPointer) &tids[i]))
                    placed[it - sorted] = true;
            }
        }
    }
    uint32 kept = 0;
    for (uint32 i = 0; i < e->n; i++) {
        const ItemPointerData *it = std::lower_bound(sorted, sorted + e->n, e->tids[i], tid_less);
        if (placed[it - sorted]) continue;
        e->tids[kept] = e->tids[i];
        memmove(e->vecs + Size(kept) * e->dim, e->vecs + Size(i) * e->dim, sizeof(float) * e->dim);
        kept++;
    }
    e->n = kept;
    pfree(sorted);
    pfree(placed);
}

// Names bucket b's coming move of rows in the metapage (see complete_move).
void begin_move(Maint *m, uint32 b, uint16 kind) {
    DriftMetaEdit e;
    drift_meta_begin(m->index, &e);
    e.meta->moving_kind = kind;
    e.meta->moving_bucket = b;
    e.meta->moving_chain = m->info->chains[b];
    drift_meta_finish(&e);
    refresh(m);
}

}  // namespace maint
