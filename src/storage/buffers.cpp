// Buffer access and page allocation for drift indexes.
#include "buffers.h"

bool drift_block_exists(Relation index, BlockNumber blkno) {
    static RelFileNode node;
    static BlockNumber nblocks = 0;
    if (blkno == InvalidBlockNumber) return false;
    if (!RelFileNodeEquals(node, index->rd_node) || blkno >= nblocks) {
        node = index->rd_node;
        nblocks = RelationGetNumberOfBlocks(index);
    }
    return blkno < nblocks;
}

Buffer drift_read_locked(Relation index, BlockNumber blkno, int mode, uint16 type, const DriftMetaPageData *meta) {
    if (!drift_block_exists(index, blkno))
        drift_corrupt(index, blkno, "A page link points outside the index.");
    Buffer buf = ReadBuffer(index, blkno);
    LockBuffer(buf, mode);
    Page page = BufferGetPage(buf);
    if (PageIsNew(page) || DriftPageGetOpaque(page)->type != type || DriftPageGetOpaque(page)->page_id != DRIFT_PAGE_ID) {
        // Release before raising, so the error path leaves no lock behind.
        char copy[BLCKSZ];
        memcpy(copy, page, BLCKSZ);
        UnlockReleaseBuffer(buf);
        drift_check_page(index, copy, blkno, type, meta);
        drift_corrupt(index, blkno, "The page changed type while it was read.");
    }
    drift_check_page(index, page, blkno, type, meta);
    return buf;
}

void drift_check_meta(Relation index, const DriftMetaPageData *meta) {
    if (meta->magic != DRIFT_MAGIC) drift_corrupt(index, DRIFT_METAPAGE_BLKNO, "The metapage has the wrong magic number.");
    if (meta->version != DRIFT_FORMAT_VERSION) {
        char detail[96];
        snprintf(detail, sizeof(detail), "Format version %u is not the supported version %u.", meta->version,
                 DRIFT_FORMAT_VERSION);
        drift_corrupt(index, DRIFT_METAPAGE_BLKNO, detail);
    }
    if (meta->dim > 2000 || (meta->dim > 0 && (meta->hot_cap == 0 || meta->cold_cap == 0 || meta->dir_cap == 0)))
        drift_corrupt(index, DRIFT_METAPAGE_BLKNO, "The metapage's dimension or capacities are invalid.");
}

void drift_read_meta(Relation index, DriftMetaPageData *meta) {
    Buffer buf = drift_read_locked(index, DRIFT_METAPAGE_BLKNO, BUFFER_LOCK_SHARE, DRIFT_PAGE_META, NULL);
    *meta = *DriftPageGetMeta(BufferGetPage(buf));
    UnlockReleaseBuffer(buf);
    drift_check_meta(index, meta);
}

Buffer drift_new_buffer(Relation index, ForkNumber fork) {
    if (fork == MAIN_FORKNUM) {
        for (;;) {
            BlockNumber blkno = GetFreeIndexPage(index);
            if (blkno == InvalidBlockNumber) break;
            Buffer buf = ReadBuffer(index, blkno);
            // Never wait here: the caller may hold other page locks.
            if (ConditionalLockBuffer(buf)) {
                Page page = BufferGetPage(buf);
                if (PageIsNew(page) || (DriftPageGetOpaque(page)->page_id == DRIFT_PAGE_ID &&
                                        DriftPageGetOpaque(page)->type == DRIFT_PAGE_FREE))
                    return buf;
                LockBuffer(buf, BUFFER_LOCK_UNLOCK);
            }
            ReleaseBuffer(buf);
        }
    }
    LockRelationForExtension(index, ExclusiveLock);
    Buffer buf = ReadBufferExtended(index, fork, P_NEW, RBM_NORMAL, NULL);
    LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
    UnlockRelationForExtension(index, ExclusiveLock);
    return buf;
}

void drift_read_blob(Relation index, BlockNumber head, char *out, Size nbytes) {
    Size done = 0;
    BlockNumber blkno = head;
    while (done < nbytes) {
        if (blkno == InvalidBlockNumber) drift_corrupt(index, head, "A blob chain ends early.");
        Buffer buf = drift_read_locked(index, blkno, BUFFER_LOCK_SHARE, DRIFT_PAGE_BLOB, NULL);
        Page page = BufferGetPage(buf);
        Size n = Min(Size(drift_blob_header(page)->nbytes), nbytes - done);
        memcpy(out + done, drift_blob_data(page), n);
        done += n;
        blkno = DriftPageGetOpaque(page)->next;
        UnlockReleaseBuffer(buf);
        if (n == 0) drift_corrupt(index, head, "A blob page is empty.");
    }
}
