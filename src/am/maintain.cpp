// Maintenance of one index: flush L0 into buckets, split, merge and compact
// buckets, release retired chains. docs/maintenance.md describes each step.
//
// Entries are only ever removed from a chain by writing a new chain without
// them and pointing the directory at it (one WAL record with the metapage,
// which bumps the generation and retires the old chain id), never by
// editing a chain in place. A row being moved is first added where it goes,
// then dropped from where it was: a scan reading either sees it, a scan
// reading both returns it once (scans skip TIDs they returned), and a crash
// in between leaves it in two buckets, never in none.
#include "drift.h"

#include <algorithm>
#include <cmath>

#include "../core/distance.hpp"
#include "../core/kmeans.hpp"
#include "../core/maintenance.hpp"
#include "../core/sq8.hpp"
#include "../core/topk.hpp"
#include "../storage/buffers.h"
#include "../storage/chains.h"
#include "../storage/cursor.h"

extern "C" {
#include "access/transam.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "storage/proc.h"
#include "tcop/utility.h"
#include "storage/lmgr.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
}

// Entries read from a chain or from L0 (plain palloc'd arrays).
struct Entries {
    uint32 n, cap, dim;
    ItemPointerData *tids;
    float *vecs;
};

// Appends one entry.
static void entries_add(Entries *e, const ItemPointerData *tid, const float *vec) {
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
    memcpy(e->vecs + Size(e->n) * e->dim, vec, sizeof(float) * e->dim);
    e->n++;
}

// Reads every live entry of bucket chain `chain` starting at head.
static void read_chain(Relation index, const DriftMetaPageData *meta, BlockNumber head, uint32 chain, Entries *out) {
    uint32 dim = meta->dim;
    DriftCursor c;
    drift_cursor_begin(&c, index, head, DRIFT_PAGE_HOT, chain, meta, BUFFER_LOCK_SHARE);
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
                entries_add(out, &tids[s], ve->vec);
            }
            UnlockReleaseBuffer(cbuf);
        }
    }
}

// State of one maintenance pass.
struct Maint {
    Relation index;
    DriftInfo *info; /* refreshed after every change that bumps the generation */
    uint32 dim;
    bool wal;
    drift::MaintenanceLimits lim;
    DriftMaintenance done;
};

// Re-reads the index's metadata.
static void refresh(Maint *m) { m->info = drift_info(m->index); }

// The live buckets other than `exclude` (ids and centroids); returns how many.
static uint32 live_centroids(Maint *m, uint32 exclude, uint32 **ids, float **cents) {
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
static uint32 alloc_chains(Maint *m, uint32 count) {
    Buffer mbuf = drift_read_locked(m->index, DRIFT_METAPAGE_BLKNO, BUFFER_LOCK_EXCLUSIVE, DRIFT_PAGE_META, NULL);
    GenericXLogState *st = GenericXLogStart(m->index);
    DriftMetaPage mp = DriftPageGetMeta(GenericXLogRegisterBuffer(st, mbuf, 0));
    uint32 first = mp->next_chain;
    mp->next_chain += count;
    GenericXLogFinish(st);
    UnlockReleaseBuffer(mbuf);
    return first;
}

// Writes entries idx[0..n) of e as a new chain for bucket b.
static void write_chain(Maint *m, uint32 chain, uint32 b, const Entries *e, const uint32 *idx, uint32 n, ChainWriter *w) {
    DriftInfo *info = m->info;
    drift::Sq8 q{m->dim, info->lo, info->scale};
    uint8 *code = (uint8 *) palloc(m->dim);
    drift_chain_start(w, m->index, MAIN_FORKNUM, &info->meta, m->wal, chain, b);
    for (uint32 i = 0; i < n; i++) {
        const float *v = e->vecs + Size(idx[i]) * m->dim;
        drift::sq8_encode(q, v, code);
        drift_chain_add(w, &e->tids[idx[i]], code, v);
        if ((i & 255) == 255) CHECK_FOR_INTERRUPTS();
    }
    drift_chain_finish(w);
    pfree(code);
}

// Largest L2 distance from entries idx[0..n) of e to c.
static float radius_of(const Entries *e, const uint32 *idx, uint32 n, const float *c) {
    float r = 0;
    for (uint32 i = 0; i < n; i++)
        r = Max(r, drift::order_distance(drift::Metric::L2, e->vecs + Size(idx[i]) * e->dim, c, e->dim));
    return std::sqrt(r);
}

// New contents of one directory entry.
struct EntryUpdate {
    const float *centroid;    /* NULL: unchanged */
    uint32 bucket;
    DriftDirEntryData fields; /* head .. moved; the centroid is the pointer above */
};

// Metapage changes made in the same record as directory changes.
struct MetaChange {
    uint32 retire[2];
    int nretire;
    int live_delta;
    uint32 splits, merges, compactions;
    uint64 stolen;
    bool drop_old_quant; /* no bucket uses the previous quantizer any more */
    bool moved;          /* the move the metapage names is done */
};

// The id a chain retired now carries: the next transaction id. A scan that
// may still read the chain took its snapshot before the retirement, so its
// xmin is no later than that; once the xid horizon has passed it, no such
// scan is left and the chain is released. The maintainer needs no xid of
// its own for this, and holds no snapshot while it works (the janitor), so
// it can release the chains of its own earlier steps.
static uint64 retire_xid() { return U64FromFullTransactionId(ReadNextFullTransactionId()); }

// Adds a chain (its first page and page type) to the retired list of the
// metapage being edited, or to the overflow when the list is full.
static void retire_chain(DriftMetaPage mp, uint32 chain, BlockNumber head, uint16 type, uint64 xid) {
    if (mp->nretired < DRIFT_MAX_RETIRED) {
        mp->retired[mp->nretired++] = DriftRetired{chain, head, type, 0, uint32(xid >> 32), uint32(xid)};
        return;
    }
    mp->overflow_chain = Max(mp->overflow_chain, chain + 1);
    uint64 o = Max(uint64(mp->overflow_xid_hi) << 32 | mp->overflow_xid_lo, xid);
    mp->overflow_xid_hi = uint32(o >> 32);
    mp->overflow_xid_lo = uint32(o);
}

// Applies up to two directory entry updates and the metapage change in one
// WAL record, bumping the generation. A bucket just past the directory's
// last page gets a new directory page.
static void commit(Maint *m, const EntryUpdate *u, int nu, const MetaChange &c) {
    Relation index = m->index;
    const DriftInfo *info = m->info;
    const DriftMetaPageData *meta = &info->meta;
    uint64 xid = retire_xid();
    Buffer newdir = InvalidBuffer;
    for (int i = 0; i < nu; i++)
        if (u[i].bucket / meta->dir_cap >= info->ndir && !BufferIsValid(newdir))
            newdir = drift_new_buffer(index, MAIN_FORKNUM);
    Buffer mbuf = drift_read_locked(index, DRIFT_METAPAGE_BLKNO, BUFFER_LOCK_EXCLUSIVE, DRIFT_PAGE_META, NULL);
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

    GenericXLogState *st = GenericXLogStart(index);
    DriftMetaPage mp = DriftPageGetMeta(GenericXLogRegisterBuffer(st, mbuf, 0));
    Page pages[4];
    for (int j = 0; j < nb; j++) pages[j] = GenericXLogRegisterBuffer(st, bufs[j], 0);
    Page npage = NULL;
    if (BufferIsValid(newdir)) {
        npage = GenericXLogRegisterBuffer(st, newdir, GENERIC_XLOG_FULL_IMAGE);
        drift_page_init(npage, DRIFT_PAGE_DIR, 0);
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
        if (u[i].centroid) memcpy(e->centroid, u[i].centroid, sizeof(float) * m->dim);
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
    GenericXLogFinish(st);
    for (int j = 0; j < nb; j++) UnlockReleaseBuffer(bufs[j]);
    if (BufferIsValid(newdir)) UnlockReleaseBuffer(newdir);
    UnlockReleaseBuffer(mbuf);
    m->done.splits += c.splits;
    m->done.merges += c.merges;
    m->done.compactions += c.compactions;
    m->done.stolen += c.stolen;
    refresh(m);
}

// The directory entry of bucket b as the cache has it (fields only).
static DriftDirEntryData entry_of(Maint *m, uint32 b) {
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
static void append_to_buckets(Maint *m, const Entries *e, const uint32 *idx, const uint32 *target, uint32 n,
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
    uint8 *codes = (uint8 *) MemoryContextAllocHuge(CurrentMemoryContext, Size(n) * dim);
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
        bool old = drift_bucket_old_quant(info, b);
        drift::Sq8 q{dim, old ? info->old_lo : info->lo, old ? info->old_scale : info->scale};
        for (uint32 i = start[b]; i < start[b + 1]; i++) drift::sq8_encode(q, vecs + Size(i) * dim, codes + Size(i) * dim);
        drift_bucket_append(m->index, &info->meta, drift_dir_slot(info, b), info->chains[b], cnt, tids + start[b],
                            codes + Size(start[b]) * dim, vecs + Size(start[b]) * dim);
    }

    // Directory statistics, one record per directory page.
    float *sum = (float *) palloc(sizeof(float) * dim);
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
            de->moved += drift::absorb_into_mean(de->centroid, de->nlive, sum, cnt, dim);
            de->nlive += cnt;
            if (count_heat) de->temperature = drift::next_temperature(de->temperature, cnt, de->nlive);
            float r2 = de->radius * de->radius;
            for (uint32 i = start[b]; i < start[b + 1]; i++)
                r2 = Max(r2, drift::order_distance(drift::Metric::L2, vecs + Size(i) * dim, de->centroid, dim));
            de->radius = std::sqrt(r2);
        }
        GenericXLogFinish(st);
        UnlockReleaseBuffer(dbuf);
    }
    pfree(sum);
    pfree(tids);
    pfree(codes);
    pfree(vecs);
    pfree(order);
    pfree(fill);
    pfree(start);
}

// Nearest live bucket (other than exclude) of each entry idx[0..n) of e,
// into target, and with dist the squared L2 distance to its centroid.
static void route(Maint *m, const Entries *e, const uint32 *idx, uint32 n, uint32 exclude, uint32 *target,
                  float *dist = NULL) {
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
static uint32 *iota(uint32 n) {
    uint32 *idx = (uint32 *) palloc(sizeof(uint32) * Max(n, 1));
    for (uint32 i = 0; i < n; i++) idx[i] = i;
    return idx;
}

// Sets the metapage's L0 head, retires the flushed L0 chains (ids and
// first pages) and counts the flush.
static void finish_flush(Maint *m, BlockNumber head, const uint32 *chains, const BlockNumber *heads, uint32 nchains,
                         uint64 rows) {
    uint64 xid = retire_xid();
    Buffer mbuf = drift_read_locked(m->index, DRIFT_METAPAGE_BLKNO, BUFFER_LOCK_EXCLUSIVE, DRIFT_PAGE_META, NULL);
    GenericXLogState *st = GenericXLogStart(m->index);
    DriftMetaPage mp = DriftPageGetMeta(GenericXLogRegisterBuffer(st, mbuf, 0));
    mp->l0_head = head;
    for (uint32 i = 0; i < nchains; i++) retire_chain(mp, chains[i], heads[i], DRIFT_PAGE_L0, xid);
    mp->flushes++;
    mp->flushed_rows += rows;
    mp->generation++;
    GenericXLogFinish(st);
    UnlockReleaseBuffer(mbuf);
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

// True if more than 5% of the rows (at least 50) lie far outside the
// quantizer's range (beyond half the range past either end in some
// dimension): their codes would saturate and scans could not rank them.
static bool out_of_range(const DriftInfo *info, const Entries *e) {
    uint32 dim = info->meta.dim, far = 0;
    for (uint32 i = 0; i < e->n; i++) {
        const float *v = e->vecs + Size(i) * dim;
        for (uint32 j = 0; j < dim; j++) {
            float r = 255.0f * info->scale[j], lo = info->lo[j] - 0.5f * r, hi = info->lo[j] + 1.5f * r;
            if (v[j] < lo - 1e-6f || v[j] > hi + 1e-6f) {
                far++;
                break;
            }
        }
    }
    return far >= 50 && far * 20 > e->n;
}

// Adds up to cap vectors of the chain at head (its first cold page) to out.
static void sample_chain(Relation index, const DriftMetaPageData *meta, BlockNumber head, Entries *out) {
    Buffer buf = drift_read_locked(index, head, BUFFER_LOCK_SHARE, DRIFT_PAGE_HOT, meta);
    DriftHotHeader h = *drift_hot_header(BufferGetPage(buf));
    UnlockReleaseBuffer(buf);
    if (h.ncold == 0) return;
    buf = drift_read_locked(index, h.cold[0], BUFFER_LOCK_SHARE, DRIFT_PAGE_COLD, meta);
    Page page = BufferGetPage(buf);
    for (uint16 s = 0; s < drift_vec_header(page)->nslots; s++) {
        DriftVecEntry ve = drift_vec_entry(page, meta->dim, s);
        if (ItemPointerIsValid(&ve->tid)) entries_add(out, &ve->tid, ve->vec);
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
    drift::sq8_fit(s.vecs, s.n, dim, info->meta.opt_clip_pct, q, q + dim);
    uint32 chain = alloc_chains(m, 1);
    BlockNumber head = drift_write_blob(m->index, MAIN_FORKNUM, chain, (const char *) q, sizeof(float) * dim * 2, m->wal);
    Buffer mbuf = drift_read_locked(m->index, DRIFT_METAPAGE_BLKNO, BUFFER_LOCK_EXCLUSIVE, DRIFT_PAGE_META, NULL);
    GenericXLogState *st = GenericXLogStart(m->index);
    DriftMetaPage mp = DriftPageGetMeta(GenericXLogRegisterBuffer(st, mbuf, 0));
    mp->old_quant_head = mp->quant_head;
    mp->old_quant_chain = mp->quant_chain;
    mp->quant_head = head;
    mp->quant_chain = chain;
    if (train_target > 0) {
        mp->flags |= DRIFT_META_TRAINED;
        mp->target_bucket = train_target;
    } else {
        mp->requantized++;
    }
    mp->generation++;
    GenericXLogFinish(st);
    UnlockReleaseBuffer(mbuf);
    m->done.requantized = train_target == 0;
    refresh(m);
}

// Entry fields for a bucket rewritten with n members around centroid c.
static DriftDirEntryData rewritten(const DriftDirEntryData &old, const ChainWriter &w, uint32 n, float radius,
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
static uint32 free_slot(Maint *m) {
    for (uint32 b = 0; b < m->info->meta.nbuckets; b++)
        if (m->info->chains[b] == 0) return b;
    return m->info->meta.nbuckets;
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
        write_chain(m, chain, b, e, part, cnt, &w);
        DriftDirEntryData fresh;
        memset(&fresh, 0, sizeof(fresh));
        fresh.temperature = 1.0f;  // every member just arrived
        EntryUpdate u = {cj, b, rewritten(fresh, w, cnt, radius_of(e, part, cnt, cj), 0)};
        MetaChange mc = {{0, 0}, 0, 1, 0, 0, 0, 0, false};
        commit(m, &u, 1, mc);
        m->done.seeded++;
    }
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
static void drop_placed(Maint *m, Entries *e, uint32 exclude = PG_UINT32_MAX) {
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

// Flush: moves every L0 row into the bucket of its nearest centroid.
static void flush(Maint *m) {
    if (l0_empty(m)) return;
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
            if (ItemPointerIsValid(&ve->tid)) entries_add(&e, &ve->tid, ve->vec);
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
    if (m->info->old_lo == NULL && out_of_range(m->info, &e)) requantize(m, &e);
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
        if (dist[i] > radius[target[i]] * radius[target[i]]) far[nfar++] = i;
    if (nfar >= Max(m->info->meta.target_bucket / 2, 16u)) {
        for (uint32 i = 0; i < e.n; i++)
            if (dist[i] <= radius[target[i]] * radius[target[i]]) {
                idx[nnear] = i;
                target[nnear++] = target[i];
            }
        seed(m, &e, far, nfar, Max(1u, Min(nfar / Max(m->info->meta.target_bucket, 16u), 64u)));
    } else {
        nnear = e.n;
    }
    append_to_buckets(m, &e, idx, target, nnear, true);
    finish_flush(m, stop, chains, heads, nchains, e.n);
}

// True if no snapshot can be as old as xid (a FullTransactionId as uint64).
static bool no_snapshot_before(uint64 xid) {
    // A catalog snapshot of this backend's own would hold the horizon back.
    InvalidateCatalogSnapshot();
    return GlobalVisCheckRemovableFullXid(NULL, FullTransactionIdFromU64(xid));
}

// Releases the retired chains no snapshot can still be reading: frees
// their pages by walking each chain (the cost is the pages released), then
// drops them from the list. When the overflow (chains retired while the
// list was full) is old enough, a sweep frees its pages.
static void reclaim(Maint *m) {
    const DriftMetaPageData *meta = &m->info->meta;
    bool overflow = meta->overflow_chain != 0 &&
                    no_snapshot_before(uint64(meta->overflow_xid_hi) << 32 | meta->overflow_xid_lo);
    uint32 n = meta->nretired, released = 0;
    bool *gone = (bool *) palloc0(sizeof(bool) * Max(n, 1));
    uint64 latest = uint64(meta->released_xid_hi) << 32 | meta->released_xid_lo, newest = 0;
    for (uint32 i = 0; i < n; i++) {
        uint64 xid = uint64(meta->retired[i].xid_hi) << 32 | meta->retired[i].xid_lo;
        gone[i] = no_snapshot_before(xid);
        if (gone[i]) newest = Max(newest, xid);
    }
    if (overflow) newest = Max(newest, uint64(meta->overflow_xid_hi) << 32 | meta->overflow_xid_lo);
    // Standby queries as old as these chains' retirement may be reading them.
    if (newest != 0) drift_log_conflict(m->index, DRIFT_METAPAGE_BLKNO, newest);
    for (uint32 i = 0; i < n; i++) {
        if (!gone[i]) continue;
        const DriftRetired &r = meta->retired[i];
        uint64 xid = uint64(r.xid_hi) << 32 | r.xid_lo;
        CHECK_FOR_INTERRUPTS();
        drift_release_chain(m->index, meta, r.head, r.chain, r.type, xid);
        released++;
        latest = Max(latest, xid);
    }
    if (released == 0 && !overflow) {
        pfree(gone);
        return;
    }
    // Only maintenance edits the list, and this pass holds its lock.
    Buffer mbuf = drift_read_locked(m->index, DRIFT_METAPAGE_BLKNO, BUFFER_LOCK_EXCLUSIVE, DRIFT_PAGE_META, NULL);
    GenericXLogState *st = GenericXLogStart(m->index);
    DriftMetaPage mp = DriftPageGetMeta(GenericXLogRegisterBuffer(st, mbuf, 0));
    uint32 kept = 0;
    for (uint32 i = 0; i < mp->nretired; i++)
        if (i >= n || !gone[i]) mp->retired[kept++] = mp->retired[i];
    mp->nretired = kept;
    if (overflow) {
        latest = Max(latest, uint64(mp->overflow_xid_hi) << 32 | mp->overflow_xid_lo);
        mp->overflow_chain = mp->overflow_xid_hi = mp->overflow_xid_lo = 0;
    }
    mp->released_xid_hi = uint32(latest >> 32);
    mp->released_xid_lo = uint32(latest);
    GenericXLogFinish(st);
    UnlockReleaseBuffer(mbuf);
    m->done.released += released;
    pfree(gone);
    if (overflow) drift_sweep(m->index, NULL, NULL, NULL, NULL);
    refresh(m);
}

// Names bucket b's coming move of rows in the metapage (see complete_move).
static void begin_move(Maint *m, uint32 b, uint16 kind) {
    Buffer mbuf = drift_read_locked(m->index, DRIFT_METAPAGE_BLKNO, BUFFER_LOCK_EXCLUSIVE, DRIFT_PAGE_META, NULL);
    GenericXLogState *st = GenericXLogStart(m->index);
    DriftMetaPage mp = DriftPageGetMeta(GenericXLogRegisterBuffer(st, mbuf, 0));
    mp->moving_kind = kind;
    mp->moving_bucket = b;
    mp->moving_chain = m->info->chains[b];
    GenericXLogFinish(st);
    UnlockReleaseBuffer(mbuf);
    refresh(m);
}

static void rewrite_without(Maint *m, uint32 b, const Entries *e, const uint32 *idx, uint32 n, uint64 moved);

// Compaction: rewrites bucket b's chain with its live entries only, and
// resets its centroid to their exact mean.
static void compact(Maint *m, uint32 b) {
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
    write_chain(m, chain, b, &e, idx, e.n, &w);
    EntryUpdate u = {c, b, rewritten(old, w, e.n, radius_of(&e, idx, e.n, c), moved)};
    MetaChange mc = {{old.chain, 0}, 1, 0, 0, 0, 1, 0, false};
    commit(m, &u, 1, mc);
}

// Merge: scatters bucket b's entries into their nearest other buckets and
// frees its directory slot.
static void merge(Maint *m, uint32 b) {
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
    if (drift_steal_neighbours <= 0) return;
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
            const float *v = e.vecs + Size(i) * m->dim;
            float d = drift::order_distance(drift::Metric::L2, v, own, m->dim);
            float d0 = drift::order_distance(drift::Metric::L2, v, c0, m->dim);
            float d1 = drift::order_distance(drift::Metric::L2, v, c1, m->dim);
            if (Min(d0, d1) < d) {
                moved[nmoved] = i;
                to[nmoved++] = d0 <= d1 ? halves[0] : halves[1];
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
    write_chain(m, chain, b, e, idx, n, &w);
    EntryUpdate u = {c, b, rewritten(old, w, n, radius_of(e, idx, n, c), shift)};
    MetaChange mc = {{old.chain, 0}, 1, 0, 0, 0, 0, moved, false, true};
    commit(m, &u, 1, mc);
}

// Completes a move of rows out of a bucket that a cancel or crash cut
// short: rows it already appended elsewhere leave the bucket (a steal), or
// the rest follow them and the slot is freed (a merge). So no row stays in
// two buckets. Reads every bucket's hot pages, as after an interrupted flush.
static void complete_move(Maint *m) {
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
static bool split(Maint *m, uint32 b) {
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
        write_chain(m, chain + h, halves[h], &e, part[h], n[h], &w);
        const float *ch = c + Size(h) * m->dim;
        float shift = std::sqrt(drift::order_distance(drift::Metric::L2, ch, old_c, m->dim));
        u[h] = EntryUpdate{ch, halves[h], rewritten(old, w, n[h], radius_of(&e, part[h], n[h], ch), shift)};
    }
    MetaChange mc = {{old.chain, 0}, 1, 1, 1, 0, 0, 0, false};
    commit(m, u, 2, mc);
    steal(m, old_c, halves);
    return true;
}

// The limits of an index: its max_bucket_size option or 3x the mean bucket
// size at training; merge below a twelfth of that.
static drift::MaintenanceLimits limits(Relation index, const DriftMetaPageData *meta) {
    DriftOptions *opts = (DriftOptions *) index->rd_options;
    uint32 max = opts && opts->max_bucket_size > 0 ? uint32(opts->max_bucket_size) : 3 * Max(meta->target_bucket, 16u);
    return drift::MaintenanceLimits{max, Max(max / 12, 1u), float(drift_compact_dead_ratio)};
}

// Does the most urgent bucket work until no bucket needs any.
static void work_buckets(Maint *m) {
    uint32 cap = 4 * m->info->meta.nbuckets + 64;
    uint32 nskip = 2 * cap + m->info->meta.nbuckets;
    bool *skip = (bool *) palloc0(sizeof(bool) * nskip);
    for (uint32 round = 0; round < cap; round++) {
        CHECK_FOR_INTERRUPTS();
        // Inserting backends cannot flush while this pass holds the lock:
        // keep L0 within drift.l0_max_rows for them.
        const DriftMetaPageData *mt = &m->info->meta;
        if (drift_l0_estimate(mt, mt->l0_pages) > uint64(drift_l0_max_rows)) flush(m);
        // Chains earlier steps replaced are freed as soon as no scan can be
        // on them, so the next steps reuse their pages.
        reclaim(m);
        const DriftInfo *info = m->info;
        drift::Need best{drift::Work::None, 0};
        uint32 which = 0;
        for (uint32 pi = 0; pi < info->ndir; pi++) {
            Buffer buf = drift_read_locked(m->index, info->dir_blocks[pi], BUFFER_LOCK_SHARE, DRIFT_PAGE_DIR, &info->meta);
            Page page = BufferGetPage(buf);
            for (uint32 i = 0; i < drift_dir_header(page)->nentries; i++) {
                uint32 b = pi * info->meta.dir_cap + i;
                if (b >= info->meta.nbuckets || info->chains[b] == 0 || (b < nskip && skip[b])) continue;
                DriftDirEntry e = drift_dir_entry(page, m->dim, i);
                drift::BucketHealth h{e->nlive, e->ndead, e->temperature};
                drift::Need need = drift::bucket_need(h, m->lim, info->meta.live_buckets > 1);
                // Buckets coded with the previous quantizer are rewritten with the current one.
                if (need.work == drift::Work::None && drift_bucket_old_quant(info, b)) need = {drift::Work::Compact, 0.5};
                if (need.work != drift::Work::None && need.urgency > best.urgency) {
                    best = need;
                    which = b;
                }
            }
            UnlockReleaseBuffer(buf);
        }
        if (best.work == drift::Work::None) {
            bool used = false;
            for (uint32 b = 0; b < info->meta.nbuckets && !used; b++)
                used = info->chains[b] != 0 && drift_bucket_old_quant(info, b);
            if (info->old_lo != NULL && !used) {
                MetaChange mc = {{0, 0}, 0, 0, 0, 0, 0, 0, true};
                commit(m, NULL, 0, mc);
            }
            break;
        }
        switch (best.work) {
            case drift::Work::Split:
                if (!split(m, which) && which < nskip) skip[which] = true;
                break;
            case drift::Work::Compact: compact(m, which); break;
            case drift::Work::Merge: merge(m, which); break;
            case drift::Work::None: break;
        }
    }
    pfree(skip);
}

// Stamps the time of this pass in the metapage.
static void stamp(Maint *m) {
    Buffer mbuf = drift_read_locked(m->index, DRIFT_METAPAGE_BLKNO, BUFFER_LOCK_EXCLUSIVE, DRIFT_PAGE_META, NULL);
    GenericXLogState *st = GenericXLogStart(m->index);
    DriftPageGetMeta(GenericXLogRegisterBuffer(st, mbuf, 0))->last_maintenance = GetCurrentTimestamp();
    GenericXLogFinish(st);
    UnlockReleaseBuffer(mbuf);
}

DriftMaintenance drift_maintain_index(Relation index, DriftMaintainMode mode) {
    Maint m;
    memset(&m, 0, sizeof(m));
    m.index = index;
    m.wal = RelationNeedsWAL(index);
    refresh(&m);
    m.dim = m.info->meta.dim;
    if (m.dim == 0 || RecoveryInProgress()) return m.done;
    MemoryContext ctx = AllocSetContextCreate(CurrentMemoryContext, "drift maintenance", ALLOCSET_DEFAULT_SIZES);
    MemoryContext old = MemoryContextSwitchTo(ctx);
    reclaim(&m);
    if (m.info->meta.flags & DRIFT_META_TRAINED) complete_move(&m);
    if (mode != DRIFT_MAINTAIN_KEEP_L0) flush(&m);
    if (m.info->meta.flags & DRIFT_META_TRAINED) {
        m.lim = limits(index, &m.info->meta);
        if (mode != DRIFT_MAINTAIN_FLUSH) work_buckets(&m);
    }
    if (mode != DRIFT_MAINTAIN_FLUSH) stamp(&m);
    MemoryContextSwitchTo(old);
    MemoryContextDelete(ctx);
    return m.done;
}

bool drift_lock_maintenance(Relation index, bool wait) {
    if (wait) {
        LockRelation(index, ShareUpdateExclusiveLock);
        return true;
    }
    return ConditionalLockRelation(index, ShareUpdateExclusiveLock);
}

uint64 drift_l0_estimate(const DriftMetaPageData *meta, uint32 pages) { return uint64(pages) * meta->cold_cap; }

extern "C" {
#include "access/htup_details.h"
#include "access/relation.h"
#include "funcapi.h"

PG_FUNCTION_INFO_V1(drift_maintain);
Datum drift_maintain(PG_FUNCTION_ARGS);
}

// drift_maintain(regclass): one full maintenance pass, waiting for the
// maintenance lock if VACUUM or the janitor holds it.
Datum drift_maintain(PG_FUNCTION_ARGS) {
    return drift_guard("drift_maintain", [&]() -> Datum {
        if (RecoveryInProgress())
            ereport(ERROR, (errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION), errmsg("cannot maintain a drift index during recovery"),
                            errhint("Run drift_maintain on the primary; a standby replays its maintenance.")));
        PreventCommandIfReadOnly("drift_maintain()");
        Relation index = drift_open_index(PG_GETARG_OID(0), ShareUpdateExclusiveLock, DRIFT_ACCESS_MAINTAIN);
        DriftMaintenance d = drift_maintain_index(index, DRIFT_MAINTAIN_ALL);
        relation_close(index, ShareUpdateExclusiveLock);
        TupleDesc desc;
        if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE) elog(ERROR, "return type must be a row type");
        Datum v[8] = {Int64GetDatum(int64(d.flushed)),     Int32GetDatum(int32(d.splits)),
                      Int32GetDatum(int32(d.merges)),      Int32GetDatum(int32(d.compactions)),
                      Int64GetDatum(int64(d.stolen)),      Int32GetDatum(int32(d.released)),
                      BoolGetDatum(d.requantized),         Int32GetDatum(int32(d.seeded))};
        bool nulls[8] = {false};
        PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(desc, v, nulls)));
    });
}
