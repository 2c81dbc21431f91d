// VACUUM and the sweep: remove dead entries, free pages of dead chains,
// unlink emptied bucket pages, and run maintenance.
//
// The sweep reads the index in physical order. A bucket, cold or L0 page
// whose chain id is neither live nor retired is freed (see storage/pages.h).
// Under VACUUM it also clears the TIDs of dead entries in hot and L0 pages
// (slots are reused by later appends) and records FREE and never-
// initialized pages in the free space map. A bucket page left with no live
// entry, other than a chain's head or tail, is then unlinked from its
// chain. The unlink takes a cleanup lock on the previous page, so no scan
// is between the two pages (scans keep a page pinned until the next one is
// pinned), and waits for a cleanup lock on the unlinked page before
// recycling it, so no scan is still on it. VACUUM holds the maintenance
// lock throughout, so it never runs alongside a flush, split or merge.
#include "drift.h"

#include "../storage/buffers.h"
#include "../storage/chains.h"
#include "../storage/cursor.h"
#include "../storage/idmap.h"

extern "C" {
#include "access/genam.h"
#include "access/transam.h"
#include "commands/vacuum.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "utils/memutils.h"
}

// Clears dead TIDs in a hot page; returns live entries left.
static uint32 vacuum_hot(Relation index, Buffer buf, IndexBulkDeleteCallback cb, void *cbstate,
                         IndexBulkDeleteResult *stats) {
    Page page = BufferGetPage(buf);
    DriftHotHeader *h = drift_hot_header(page);
    ItemPointerData *tids = drift_hot_tids(page);
    OffsetNumber dead[PG_UINT16_MAX / 4];
    int ndead = 0;
    for (uint16 s = 0; s < h->nslots && ndead < int(lengthof(dead)); s++)
        if (ItemPointerIsValid(&tids[s]) && cb(&tids[s], cbstate)) dead[ndead++] = s;
    if (ndead > 0) {
        GenericXLogState *st = GenericXLogStart(index);
        Page p = GenericXLogRegisterBuffer(st, buf, 0);
        for (int i = 0; i < ndead; i++) ItemPointerSetInvalid(&drift_hot_tids(p)[dead[i]]);
        drift_hot_header(p)->nlive -= ndead;
        GenericXLogFinish(st);
        stats->tuples_removed += ndead;
    }
    return drift_hot_header(BufferGetPage(buf))->nlive;
}

// Clears dead TIDs in an L0 page.
static void vacuum_l0(Relation index, Buffer buf, const DriftMetaPageData *meta, IndexBulkDeleteCallback cb,
                      void *cbstate, IndexBulkDeleteResult *stats) {
    Page page = BufferGetPage(buf);
    uint16 n = drift_vec_header(page)->nslots;
    GenericXLogState *st = NULL;
    Page p = NULL;
    for (uint16 s = 0; s < n; s++) {
        DriftVecEntry e = drift_vec_entry(page, meta->dim, s);
        if (!ItemPointerIsValid(&e->tid) || !cb(&e->tid, cbstate)) continue;
        if (st == NULL) {
            st = GenericXLogStart(index);
            p = GenericXLogRegisterBuffer(st, buf, 0);
        }
        ItemPointerSetInvalid(&drift_vec_entry(p, meta->dim, s)->tid);
        drift_vec_header(p)->nlive--;
        stats->tuples_removed++;
    }
    if (st) GenericXLogFinish(st);
}

// Unlinks the empty, non-tail hot pages of bucket chain `head`; returns how
// many pages it freed.
static uint32 unlink_empty(Relation index, const DriftMetaPageData *meta, BlockNumber head) {
    uint32 freed = 0;
    BlockNumber steps = 0, limit = RelationGetNumberOfBlocks(index);
    Buffer prev = ReadBuffer(index, head);
    for (;;) {
        LockBuffer(prev, BUFFER_LOCK_SHARE);
        BlockNumber cur = DriftPageGetOpaque(BufferGetPage(prev))->next;
        LockBuffer(prev, BUFFER_LOCK_UNLOCK);
        if (cur == InvalidBlockNumber) break;
        // (The sweep has read every page of the chain: a loop here is new
        // corruption, and a cleanup lock on a page pinned twice would wait forever.)
        if (cur == BufferGetBlockNumber(prev) || ++steps > limit) {
            ReleaseBuffer(prev);
            drift_corrupt(index, cur, "A page chain loops back on itself.");
        }
        Buffer buf = drift_read_locked(index, cur, BUFFER_LOCK_SHARE, DRIFT_PAGE_HOT, meta);
        Page page = BufferGetPage(buf);
        bool empty = drift_hot_header(page)->nlive == 0 && DriftPageGetOpaque(page)->next != InvalidBlockNumber;
        LockBuffer(buf, BUFFER_LOCK_UNLOCK);
        if (!empty) {
            ReleaseBuffer(prev);
            prev = buf;
            continue;
        }
        LockBufferForCleanup(prev);
        LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
        page = BufferGetPage(buf);
        // Inserts only fill a chain's tail, so an empty non-tail page stays empty.
        if (DriftPageGetOpaque(BufferGetPage(prev))->next != cur || drift_hot_header(page)->nlive != 0 ||
            DriftPageGetOpaque(page)->next == InvalidBlockNumber) {
            LockBuffer(buf, BUFFER_LOCK_UNLOCK);
            LockBuffer(prev, BUFFER_LOCK_UNLOCK);
            ReleaseBuffer(buf);
            continue;
        }
        DriftHotHeader h = *drift_hot_header(page);
        GenericXLogState *st = GenericXLogStart(index);
        Page pp = GenericXLogRegisterBuffer(st, prev, 0);
        Page bp = GenericXLogRegisterBuffer(st, buf, 0);
        DriftPageGetOpaque(pp)->next = DriftPageGetOpaque(bp)->next;
        // Snapshots taken before now may still be on their way to it.
        uint64 xid = U64FromFullTransactionId(ReadNextFullTransactionId());
        drift_page_set_free(bp, xid);
        GenericXLogFinish(st);
        LockBuffer(prev, BUFFER_LOCK_UNLOCK);
        LockBuffer(buf, BUFFER_LOCK_UNLOCK);
        // Wait until no scan is on the page, then recycle it with its cold pages.
        LockBufferForCleanup(buf);
        LockBuffer(buf, BUFFER_LOCK_UNLOCK);
        BlockNumber blkno = BufferGetBlockNumber(buf);
        ReleaseBuffer(buf);
        RecordFreeIndexPage(index, blkno);
        Buffer cold[DRIFT_MAX_COLD_PER_HOT];
        int nc = 0;
        for (uint16 i = 0; i < h.ncold; i++) {
            cold[nc] = ReadBuffer(index, h.cold[i]);
            LockBuffer(cold[nc], BUFFER_LOCK_EXCLUSIVE);
            if (drift_page_type(BufferGetPage(cold[nc])) != DRIFT_PAGE_COLD)
                UnlockReleaseBuffer(cold[nc]);
            else
                nc++;
        }
        if (nc > 0) drift_free_pages(index, cold, nc, xid);
        freed += 1 + nc;
    }
    ReleaseBuffer(prev);
    return freed;
}

// The chain ids that are live or retired, with each live bucket chain's
// bucket (PG_UINT32_MAX for the others). Never misses one: a chain missing
// here would be freed.
static DriftIdMap live_chains(Relation index, const DriftMetaPageData *meta) {
    DriftIdMap ls;
    drift_idmap_init(&ls, meta->nbuckets + meta->nretired + 8);
    uint32 b = 0;
    DriftCursor c;
    drift_cursor_begin(&c, index, meta->dir_head, DRIFT_PAGE_DIR, 0, meta, BUFFER_LOCK_SHARE);
    for (Page page; (page = drift_cursor_next(&c)) != NULL;)
        for (uint32 i = 0; i < drift_dir_header(page)->nentries; i++, b++) {
            uint32 chain = drift_dir_entry(page, meta->dim, i)->chain;
            if (chain != 0) drift_idmap_add(&ls, chain, b);
        }
    for (uint32 i = 0; i < meta->nretired; i++) drift_idmap_add(&ls, meta->retired[i].chain, PG_UINT32_MAX);
    drift_idmap_add(&ls, meta->l0_chain, PG_UINT32_MAX);
    if (meta->flags & DRIFT_META_TRAINED) drift_idmap_add(&ls, meta->quant_chain, PG_UINT32_MAX);
    if (meta->old_quant_head != InvalidBlockNumber) drift_idmap_add(&ls, meta->old_quant_chain, PG_UINT32_MAX);
    uint32 last = meta->l0_chain;
    drift_cursor_begin(&c, index, meta->l0_head, DRIFT_PAGE_L0, 0, meta, BUFFER_LOCK_SHARE);
    for (Page page; (page = drift_cursor_next(&c)) != NULL;) {
        uint32 chain = DriftPageGetOpaque(page)->chain;
        if (chain != last) drift_idmap_add(&ls, chain, PG_UINT32_MAX);
        last = chain;
    }
    drift_idmap_sort(&ls);
    return ls;
}

void drift_sweep(Relation index, BufferAccessStrategy strategy, IndexBulkDeleteCallback cb, void *cbstate,
                 IndexBulkDeleteResult *stats) {
    DriftMetaPageData meta;
    drift_read_meta(index, &meta);
    if (meta.dim == 0) return;
    DriftIdMap ls = live_chains(index, &meta);
    bool *needs = (bool *) palloc0(sizeof(bool) * Max(meta.nbuckets, 1));
    uint32 *live = (uint32 *) palloc0(sizeof(uint32) * Max(meta.nbuckets, 1));
    // Under the extension lock, so every new page counted is already locked by its creator.
    LockRelationForExtension(index, ExclusiveLock);
    BlockNumber npages = RelationGetNumberOfBlocks(index);
    UnlockRelationForExtension(index, ExclusiveLock);
    for (BlockNumber blkno = DRIFT_METAPAGE_BLKNO + 1; blkno < npages; blkno++) {
        vacuum_delay_point();
        Buffer buf = ReadBufferExtended(index, MAIN_FORKNUM, blkno, RBM_NORMAL, strategy);
        LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
        Page page = BufferGetPage(buf);
        int type = drift_page_type(page);
        if (type < 0) {
            UnlockReleaseBuffer(buf);
            drift_corrupt(index, blkno, "The page does not carry the drift page ID in a drift special space.");
        }
        if (type == 0) type = DRIFT_PAGE_FREE;
        else drift_check_page(index, page, blkno, uint16(type), &meta);
        uint32 b = PG_UINT32_MAX;
        if ((type == DRIFT_PAGE_HOT || type == DRIFT_PAGE_COLD || type == DRIFT_PAGE_L0 ||
             ((type == DRIFT_PAGE_BLOB || type == DRIFT_PAGE_DIR) && DriftPageGetOpaque(page)->chain != 0)) &&
            !drift_idmap_find(&ls, DriftPageGetOpaque(page)->chain, &b) && DriftPageGetOpaque(page)->chain >= meta.overflow_chain) {
            // A page of a released or never-linked chain (not in the retired
            // list or its overflow): garbage. Snapshots
            // that could reach it are older than the chain's release.
            drift_free_pages(index, &buf, 1, drift_xid64(meta.released_xid_hi, meta.released_xid_lo));
            if (stats) stats->pages_newly_deleted++, stats->pages_deleted++, stats->pages_free++;
            continue;
        }
        if (type == DRIFT_PAGE_HOT) {
            uint32 n = cb ? vacuum_hot(index, buf, cb, cbstate, stats) : drift_hot_header(page)->nlive;
            if (b != PG_UINT32_MAX) {
                if (b >= meta.nbuckets || drift_hot_header(page)->bucket != b)
                    drift_corrupt(index, blkno, "A bucket page is in the chain of another bucket.");
                live[b] += n;
                if (stats) stats->num_index_tuples += n;
                if (n == 0 && DriftPageGetOpaque(page)->next != InvalidBlockNumber) needs[b] = true;
            }
        } else if (type == DRIFT_PAGE_L0) {
            if (cb) vacuum_l0(index, buf, &meta, cb, cbstate, stats);
            if (stats) stats->num_index_tuples += drift_vec_header(page)->nlive;
        } else if (type == DRIFT_PAGE_FREE) {
            RecordFreeIndexPage(index, blkno);
            if (stats) stats->pages_deleted++, stats->pages_free++;
        }
        UnlockReleaseBuffer(buf);
    }
    // Make the pages recorded free findable (the map's upper levels).
    IndexFreeSpaceMapVacuum(index);
    if (stats == NULL) return;

    // Record live counts in the directory; collect chains to unlink from.
    BlockNumber *heads = (BlockNumber *) palloc(sizeof(BlockNumber) * Max(meta.nbuckets, 1));
    uint32 nheads = 0;
    uint32 b = 0;
    DriftCursor c;
    drift_cursor_begin(&c, index, meta.dir_head, DRIFT_PAGE_DIR, 0, &meta, BUFFER_LOCK_EXCLUSIVE);
    for (Page page; (page = drift_cursor_next(&c)) != NULL;) {
        GenericXLogState *st = GenericXLogStart(index);
        Page p = GenericXLogRegisterBuffer(st, c.buf, 0);
        uint32 n = drift_dir_header(p)->nentries;
        for (uint32 i = 0; i < n && b < meta.nbuckets; i++, b++) {
            DriftDirEntry e = drift_dir_entry(p, meta.dim, i);
            if (e->chain == 0) continue;
            if (e->nlive > live[b]) e->ndead += e->nlive - live[b];
            e->nlive = live[b];
            if (cb && needs[b] && e->head != e->tail) heads[nheads++] = e->head;
        }
        GenericXLogFinish(st);
    }
    for (uint32 i = 0; i < nheads; i++) {
        vacuum_delay_point();
        uint32 freed = unlink_empty(index, &meta, heads[i]);
        stats->pages_newly_deleted += freed;
        stats->pages_deleted += freed;
        stats->pages_free += freed;
    }
    pfree(heads);
    pfree(needs);
    pfree(live);
    pfree(ls.keys);
}

IndexBulkDeleteResult *drift_ambulkdelete(IndexVacuumInfo *info, IndexBulkDeleteResult *stats,
                                          IndexBulkDeleteCallback callback, void *callback_state) {
    return drift_guard("vacuum", [&]() -> IndexBulkDeleteResult * {
        if (stats == NULL) stats = (IndexBulkDeleteResult *) palloc0(sizeof(IndexBulkDeleteResult));
        stats->num_index_tuples = 0;
        stats->pages_free = 0;
        drift_lock_maintenance(info->index, true);
        drift_sweep(info->index, info->strategy, callback, callback_state, stats);
        return stats;
    });
}

// Counts every entry as live (for VACUUM that removed nothing).
static bool count_all(ItemPointer, void *) { return false; }

IndexBulkDeleteResult *drift_amvacuumcleanup(IndexVacuumInfo *info, IndexBulkDeleteResult *stats) {
    return drift_guard("vacuum", [&]() -> IndexBulkDeleteResult * {
        if (info->analyze_only) return stats;
        drift_lock_maintenance(info->index, true);
        if (stats == NULL) {
            stats = (IndexBulkDeleteResult *) palloc0(sizeof(IndexBulkDeleteResult));
            drift_sweep(info->index, info->strategy, count_all, NULL, stats);
        }
        // The janitor does the bucket work in steps of their own, each
        // releasing what the last one replaced; a VACUUM is one
        // transaction, whose replaced chains all wait for its end. So with
        // the janitor running, VACUUM flushes L0 and leaves the rest to it.
        if (drift_janitor_running()) {
            drift_maintain_index(info->index, DRIFT_MAINTAIN_FLUSH);
            drift_janitor_wake();
        } else {
            drift_maintain_index(info->index, DRIFT_MAINTAIN_ALL);
        }
        // What lies at the end of the index moves before it; once a later
        // pass releases the old pages, the end is given back.
        drift_maintain_index(info->index, DRIFT_MAINTAIN_SHRINK);
        IndexFreeSpaceMapVacuum(info->index);
        drift_truncate_free_tail(info->index);
        stats->num_pages = RelationGetNumberOfBlocks(info->index);
        return stats;
    });
}
