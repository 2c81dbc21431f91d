// Shrinking: VACUUM's last step moves the bucket chains, directory pages
// and L0 that lie at the end of an index into free pages before it, so that once their old pages
// are released the end of the index is free and can be given back
// (drift_truncate_free_tail). docs/maintenance.md, "Giving space back".
#include "maintain.h"

#include <algorithm>
#include <vector>

#include "../storage/buffers.h"

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

void shrink(Maint *m) {
    const DriftInfo *info = m->info;
    std::vector<std::pair<uint32, uint32>> owner;  // (chain, bucket) of every live bucket
    for (uint32 b = 0; b < info->meta.nbuckets; b++)
        if (info->chains[b] != 0) owner.emplace_back(info->chains[b], b);
    std::sort(owner.begin(), owner.end());
    std::vector<uint32> retired;  // chains a later release frees
    for (uint32 i = 0; i < info->meta.nretired; i++) retired.push_back(info->meta.retired[i].chain);
    std::sort(retired.begin(), retired.end());
    auto bucket_of = [&](uint32 chain) -> int64 {
        auto it = std::lower_bound(owner.begin(), owner.end(), std::make_pair(chain, 0u));
        return it != owner.end() && it->first == chain ? int64(it->second) : -1;
    };
    // Keys of the groups that move as one besides bucket chains (ids far
    // above any chain id): each directory page, and L0.
    const uint32 l0_key = PG_UINT32_MAX, dir_key0 = PG_UINT32_MAX - 1, ndir = info->ndir;
    std::vector<std::pair<BlockNumber, uint32>> dir;  // (block, directory page index)
    for (uint32 pi = 0; pi < ndir; pi++) dir.emplace_back(info->dir_blocks[pi], pi);
    std::sort(dir.begin(), dir.end());

    // How each page is used: one pass over the index, as VACUUM's sweep.
    BlockNumber npages = RelationGetNumberOfBlocks(m->index);
    std::vector<drift::PageUse> use(npages, drift::PageUse::Fixed);
    std::vector<uint32> chain(npages, 0);
    uint64 horizon = drift_xid_horizon();
    BufferAccessStrategy strategy = GetAccessStrategy(BAS_VACUUM);
    for (BlockNumber blkno = DRIFT_METAPAGE_BLKNO + 1; blkno < npages; blkno++) {
        vacuum_delay_point();
        Buffer buf = ReadBufferExtended(m->index, MAIN_FORKNUM, blkno, RBM_NORMAL, strategy);
        LockBuffer(buf, BUFFER_LOCK_SHARE);
        Page page = BufferGetPage(buf);
        int type = drift_page_type(page);
        uint32 id = type > DRIFT_PAGE_META ? DriftPageGetOpaque(page)->chain : 0;
        bool bucket_page = type == DRIFT_PAGE_HOT || type == DRIFT_PAGE_COLD;
        if (type == 0 || type == DRIFT_PAGE_FREE)
            use[blkno] = type == 0 || drift_page_free_xid(page) < horizon ? drift::PageUse::Free : drift::PageUse::Waiting;
        else if (bucket_page && bucket_of(id) >= 0) {
            use[blkno] = drift::PageUse::Movable;
            chain[blkno] = id;
        } else if (bucket_page || (id != 0 && std::binary_search(retired.begin(), retired.end(), id))) {
            use[blkno] = drift::PageUse::Waiting;  // retired, or garbage the next sweep frees
        } else if (type == DRIFT_PAGE_L0) {
            use[blkno] = drift::PageUse::Movable;
            chain[blkno] = l0_key;
        } else if (type == DRIFT_PAGE_DIR) {
            auto it = std::lower_bound(dir.begin(), dir.end(), std::make_pair(blkno, 0u));
            if (it != dir.end() && it->first == blkno) {
                use[blkno] = drift::PageUse::Movable;
                chain[blkno] = dir_key0 - it->second;
            }
        }
        UnlockReleaseBuffer(buf);
    }
    FreeAccessStrategy(strategy);
    drift::ShrinkPlan plan = drift::shrink_plan(use.data(), chain.data(), npages, Max(16u, npages / 20));
    // What moves, or waits for a release, is given back only later: until a
    // plan finds nothing to win, passes that release or truncate try again.
    if (bool(info->meta.flags & DRIFT_META_SHRINKING) != (plan.cut < npages)) {
        DriftMetaEdit e;
        drift_meta_begin(m->index, &e);
        e.meta->flags ^= DRIFT_META_SHRINKING;
        drift_meta_finish(&e);
        refresh(m);
    }
    if (plan.cut >= npages) return;

    // New pages come from before the cut only: the free pages past it, and
    // those not reusable yet, leave the free space map meanwhile.
    std::vector<BlockNumber> waiting;
    for (BlockNumber blkno = DRIFT_METAPAGE_BLKNO + 1; blkno < npages; blkno++) {
        bool past = blkno >= plan.cut && use[blkno] != drift::PageUse::Movable;
        if (past || use[blkno] == drift::PageUse::Waiting) RecordUsedIndexPage(m->index, blkno);
        if (!past && use[blkno] == drift::PageUse::Waiting) waiting.push_back(blkno);
    }
    IndexFreeSpaceMapVacuum(m->index);
    std::vector<uint32> keys;
    for (BlockNumber blkno = plan.cut; blkno < npages; blkno++)
        if (use[blkno] == drift::PageUse::Movable) keys.push_back(chain[blkno]);
    std::sort(keys.begin(), keys.end());
    keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
    uint32 moved[3] = {0, 0, 0};  // bucket chains, directory pages, L0
    for (uint32 key : keys) {
        CHECK_FOR_INTERRUPTS();
        if (key == l0_key) {
            flush(m, true);  // L0 goes on in a new page; the old ones are retired
            moved[2]++;
        } else if (key > dir_key0 - ndir) {
            move_dir_page(m, dir_key0 - key);
            moved[1]++;
        } else {
            compact(m, uint32(bucket_of(key)));
            moved[0]++;
        }
        m->done.relocated++;
    }
    elog(DEBUG1, "drift: shrinking index \"%s\" from %u pages to %u: moved %u bucket chains, %u directory pages, %u L0",
         RelationGetRelationName(m->index), npages, plan.cut, moved[0], moved[1], moved[2]);
    for (BlockNumber blkno : waiting) RecordFreeIndexPage(m->index, blkno);
    IndexFreeSpaceMapVacuum(m->index);
}

}  // namespace maint
