// Shrinking: VACUUM's last step moves the bucket chains, directory pages,
// quantizers and L0 that lie at the end of an index into free pages before
// it, so that once their old pages are released the end of the index is
// free and can be given back (drift_truncate_free_tail).
// docs/maintenance.md, "Giving space back".
#include "maintain.h"

#include <algorithm>

#include "../storage/buffers.h"
#include "../storage/cursor.h"
#include "../storage/idmap.h"

extern "C" {
#include "commands/vacuum.h"
#include "storage/indexfsm.h"
}

namespace maint {

// Moves directory page pi to a free page: a copy takes its place in the
// directory chain, and the old page, unlinked, waits for release as a
// chain of its own (readers that still hold its block read it as it was).
static void move_dir_page(Maint *m, uint32 pi) {
    Relation index = m->index;
    const DriftInfo *info = m->info;
    uint32 id = alloc_chains(m, 1);
    (void) retire_xid();  // (takes the maintainer's xid before any page is locked)
    Buffer nbuf = drift_new_buffer(index, MAIN_FORKNUM);
    Buffer prev = pi > 0 ? drift_read_locked(index, info->dir_blocks[pi - 1], BUFFER_LOCK_EXCLUSIVE, DRIFT_PAGE_DIR, &info->meta)
                         : InvalidBuffer;
    Buffer obuf = drift_read_locked(index, info->dir_blocks[pi], BUFFER_LOCK_EXCLUSIVE, DRIFT_PAGE_DIR, &info->meta);
    DriftMetaEdit me;
    drift_meta_begin(index, &me);
    uint64 xid = retire_xid();
    Page pp = BufferIsValid(prev) ? drift_meta_add(&me, prev, 0) : NULL;
    Page op = drift_meta_add(&me, obuf, 0);
    Page np = drift_meta_add(&me, nbuf, GENERIC_XLOG_FULL_IMAGE);
    memcpy(np, op, BLCKSZ);
    if (pp != NULL)
        DriftPageGetOpaque(pp)->next = BufferGetBlockNumber(nbuf);
    else
        me.meta->dir_head = BufferGetBlockNumber(nbuf);
    DriftPageGetOpaque(op)->next = InvalidBlockNumber;
    DriftPageGetOpaque(op)->chain = id;
    retire_chain(me.meta, id, info->dir_blocks[pi], DRIFT_PAGE_DIR, xid);
    me.meta->generation++;
    drift_meta_finish(&me);
    UnlockReleaseBuffer(obuf);
    if (BufferIsValid(prev)) UnlockReleaseBuffer(prev);
    UnlockReleaseBuffer(nbuf);
    refresh(m);
}

// Moves a quantizer (the current one, or with old the previous one while
// buckets still use it) to free pages: a copy under the same chain id,
// which directory entries name, takes its place, and the old pages wait
// for release under that id too (a release walks them from their head and
// frees no other page). A crash between the two leaves the copy's pages
// behind until a REINDEX.
static void move_quantizer(Maint *m, bool old) {
    const DriftMetaPageData *meta = &m->info->meta;
    BlockNumber head = old ? meta->old_quant_head : meta->quant_head;
    uint32 id = old ? meta->old_quant_chain : meta->quant_chain;
    Size nbytes = sizeof(float) * 2 * m->dim;
    char *data = (char *) palloc(nbytes);
    drift_read_blob(m->index, head, data, nbytes);
    (void) retire_xid();  // (takes the maintainer's xid before any page is locked)
    BlockNumber copy = drift_write_blob(m->index, MAIN_FORKNUM, id, data, nbytes, m->wal);
    DriftMetaEdit e;
    drift_meta_begin(m->index, &e);
    uint64 xid = retire_xid();
    if (old)
        e.meta->old_quant_head = copy;
    else
        e.meta->quant_head = copy;
    retire_chain(e.meta, id, head, DRIFT_PAGE_BLOB, xid);
    e.meta->generation++;
    drift_meta_finish(&e);
    pfree(data);
    refresh(m);
}

// Adds the blocks of the blob chain `id` from head to map, as group key.
static void add_blob_blocks(Maint *m, BlockNumber head, uint32 id, DriftIdMap *map, uint32 key) {
    if (head == InvalidBlockNumber) return;
    DriftCursor c;
    drift_cursor_begin(&c, m->index, head, DRIFT_PAGE_BLOB, id, &m->info->meta, BUFFER_LOCK_SHARE);
    while (drift_cursor_next(&c) != NULL) drift_idmap_add(map, drift_cursor_block(&c), key);
}

void shrink(Maint *m) {
    const DriftInfo *info = m->info;
    // Moves retire what they leave: with the retired list full (old
    // snapshots hold it), they would wait in its overflow, for a sweep.
    if (info->meta.overflow_chain != 0 || info->meta.nretired >= DRIFT_MAX_RETIRED) return;
    uint32 budget = DRIFT_MAX_RETIRED - info->meta.nretired;
    DriftIdMap owner, retired, groups;  // chain -> bucket; retired chains; block -> group key
    drift_idmap_init(&owner, info->meta.nbuckets);
    for (uint32 b = 0; b < info->meta.nbuckets; b++)
        if (info->chains[b] != 0) drift_idmap_add(&owner, info->chains[b], b);
    drift_idmap_sort(&owner);
    drift_idmap_init(&retired, info->meta.nretired);
    for (uint32 i = 0; i < info->meta.nretired; i++) drift_idmap_add(&retired, info->meta.retired[i].chain, 0);
    drift_idmap_sort(&retired);
    // Keys of the groups that move as one besides bucket chains (ids far
    // above any chain id): L0, the two quantizers, each directory page.
    const uint32 l0_key = PG_UINT32_MAX, quant_key = l0_key - 1, old_quant_key = l0_key - 2, dir_key0 = l0_key - 3;
    const uint32 ndir = info->ndir;
    drift_idmap_init(&groups, ndir + 8);
    for (uint32 pi = 0; pi < ndir; pi++) drift_idmap_add(&groups, info->dir_blocks[pi], dir_key0 - pi);
    add_blob_blocks(m, info->meta.quant_head, info->meta.quant_chain, &groups, quant_key);
    add_blob_blocks(m, info->meta.old_quant_head, info->meta.old_quant_chain, &groups, old_quant_key);
    // L0 moves (a flush of it) only while it is one page: a flush of more
    // would append its rows to buckets, at a cost the plan cannot count.
    bool l0_moves = info->meta.l0_head == info->meta.l0_tail;
    drift_idmap_sort(&groups);

    // How each page is used: one pass over the index, as VACUUM's sweep.
    BlockNumber npages = RelationGetNumberOfBlocks(m->index);
    drift::PageUse *use = (drift::PageUse *) palloc(sizeof(drift::PageUse) * npages);
    uint32 *chain = (uint32 *) palloc0(sizeof(uint32) * npages);
    bool *is_free = (bool *) palloc0(sizeof(bool) * npages);  // FREE pages, which the free space map lists
    uint64 horizon = drift_xid_horizon();
    BufferAccessStrategy strategy = GetAccessStrategy(BAS_VACUUM);
    use[DRIFT_METAPAGE_BLKNO] = drift::PageUse::Fixed;
    for (BlockNumber blkno = DRIFT_METAPAGE_BLKNO + 1; blkno < npages; blkno++) {
        vacuum_delay_point();
        Buffer buf = ReadBufferExtended(m->index, MAIN_FORKNUM, blkno, RBM_NORMAL, strategy);
        LockBuffer(buf, BUFFER_LOCK_SHARE);
        Page page = BufferGetPage(buf);
        int type = drift_page_type(page);
        uint32 id = type > DRIFT_PAGE_META ? DriftPageGetOpaque(page)->chain : 0, value;
        bool bucket_page = type == DRIFT_PAGE_HOT || type == DRIFT_PAGE_COLD;
        use[blkno] = drift::PageUse::Fixed;
        if (type == 0 || type == DRIFT_PAGE_FREE) {
            use[blkno] = type == 0 || drift_page_free_xid(page) < horizon ? drift::PageUse::Free : drift::PageUse::Waiting;
            is_free[blkno] = true;
        } else if (bucket_page && drift_idmap_find(&owner, id, &value)) {
            use[blkno] = drift::PageUse::Movable;
            chain[blkno] = id;
        } else if ((type == DRIFT_PAGE_DIR || type == DRIFT_PAGE_BLOB) && drift_idmap_find(&groups, blkno, &value)) {
            use[blkno] = drift::PageUse::Movable;  // a live directory or quantizer page
            chain[blkno] = value;
        } else if (type == DRIFT_PAGE_L0 && !drift_idmap_find(&retired, id, &value)) {
            if (l0_moves) use[blkno] = drift::PageUse::Movable;
            chain[blkno] = l0_key;
        } else if (bucket_page || (id != 0 && drift_idmap_find(&retired, id, &value))) {
            use[blkno] = drift::PageUse::Waiting;  // retired, or garbage the next sweep frees
        }
        UnlockReleaseBuffer(buf);
    }
    FreeAccessStrategy(strategy);
    drift::ShrinkPlan plan = drift::shrink_plan(use, chain, npages, Max(16u, npages / 20));
    // What moves, or waits for a release, is given back only later: until a
    // plan finds nothing to win, passes that give pages back plan again.
    if (bool(info->meta.flags & DRIFT_META_SHRINKING) != (plan.cut < npages)) {
        DriftMetaEdit e;
        drift_meta_begin(m->index, &e);
        e.meta->flags ^= DRIFT_META_SHRINKING;
        drift_meta_finish(&e);
        refresh(m);
    }
    if (plan.cut >= npages) return;

    // New pages come from before the cut only: the free pages past it, and
    // those not reusable yet, leave the free space map meanwhile (the ones
    // past the cut until the end is given back, or the next sweep).
    for (BlockNumber blkno = DRIFT_METAPAGE_BLKNO + 1; blkno < npages; blkno++)
        if (is_free[blkno] && (blkno >= plan.cut || use[blkno] == drift::PageUse::Waiting))
            RecordUsedIndexPage(m->index, blkno);
    IndexFreeSpaceMapVacuum(m->index);
    // What to move, from the end of the index down, within what the
    // retired list can take.
    DriftIdMap last;  // group key -> its last block
    drift_idmap_init(&last, 64);
    for (BlockNumber blkno = plan.cut; blkno < npages; blkno++)
        if (use[blkno] == drift::PageUse::Movable) drift_idmap_add(&last, chain[blkno], blkno);
    drift_idmap_sort(&last);
    uint32 nkeys = 0;
    for (uint32 i = 0; i < last.n; i++)  // (sorted by key, then block: the last entry of each key is its last block)
        if (i + 1 == last.n || uint32(last.keys[i + 1] >> 32) != uint32(last.keys[i] >> 32))
            last.keys[nkeys++] = uint64(uint32(last.keys[i])) << 32 | uint32(last.keys[i] >> 32);
    std::sort(last.keys, last.keys + nkeys, [](uint64 a, uint64 b) { return a > b; });  // block << 32 | key, last first
    uint32 moved[4] = {0, 0, 0, 0};  // bucket chains, directory pages, L0, quantizers
    for (uint32 i = 0; i < nkeys && i < budget; i++) {
        CHECK_FOR_INTERRUPTS();
        uint32 key = uint32(last.keys[i]), bucket;
        if (key == l0_key) {
            flush(m, true);  // L0 goes on in a new page; the old one is retired
            moved[2]++;
        } else if (key == quant_key || key == old_quant_key) {
            move_quantizer(m, key == old_quant_key);
            moved[3]++;
        } else if (key > dir_key0 - ndir) {
            move_dir_page(m, dir_key0 - key);
            moved[1]++;
        } else if (drift_idmap_find(&owner, key, &bucket)) {
            compact(m, bucket);
            moved[0]++;
        }
        // Free pages ran out before the cut (some could not be locked, or
        // were not reusable after all): stop before the index grows more.
        if (RelationGetNumberOfBlocks(m->index) > npages) break;
    }
    for (BlockNumber blkno = DRIFT_METAPAGE_BLKNO + 1; blkno < plan.cut; blkno++)
        if (is_free[blkno] && use[blkno] == drift::PageUse::Waiting) RecordFreeIndexPage(m->index, blkno);
    IndexFreeSpaceMapVacuum(m->index);
    elog(DEBUG1,
         "drift: shrinking index \"%s\" from %u pages to %u: moved %u bucket chains, %u directory pages, %u L0, %u quantizers",
         RelationGetRelationName(m->index), npages, plan.cut, moved[0], moved[1], moved[2], moved[3]);
}

}  // namespace maint
