// Buffer access and page allocation for drift indexes.
#include "../core/core.hpp"  // before any PostgreSQL header
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
    if (!drift_block_exists(index, blkno)) drift_corrupt(index, blkno, "A page link points outside the index.");
    Buffer buf = ReadBuffer(index, blkno);
    LockBuffer(buf, mode);
    char detail[96];
    const char *problem = drift_page_problem(BufferGetPage(buf), type, meta, detail, sizeof(detail));
    if (problem != NULL) {
        UnlockReleaseBuffer(buf);
        drift_corrupt(index, blkno, problem);
    }
    return buf;
}

const char *drift_meta_problem(const DriftMetaPageData *meta, char *buf, Size buflen) {
    if (meta->magic != DRIFT_MAGIC) return "The metapage has the wrong magic number.";
    if (meta->version != DRIFT_FORMAT_VERSION) {
        snprintf(buf, buflen, "Format version %u is not the supported version %u.", meta->version, DRIFT_FORMAT_VERSION);
        return buf;
    }
    DriftMetaPageData expect = *meta;
    drift_meta_set_dim(&expect, meta->dim);
    if (meta->dim > drift::kMaxDim || expect.hot_cap != meta->hot_cap || expect.cold_cap != meta->cold_cap ||
        expect.dir_cap != meta->dir_cap)
        return "The metapage's dimension or capacities are invalid.";
    if (meta->nretired > DRIFT_MAX_RETIRED) return "The metapage lists more retired chains than fit.";
    return NULL;
}

void drift_check_meta(Relation index, const DriftMetaPageData *meta) {
    char detail[96];
    const char *problem = drift_meta_problem(meta, detail, sizeof(detail));
    if (problem != NULL) drift_corrupt(index, DRIFT_METAPAGE_BLKNO, problem);
}

// Copies the first `bytes` bytes of the metapage into *meta and checks them.
static void read_meta(Relation index, DriftMetaPageData *meta, Size bytes) {
    Buffer buf = drift_read_locked(index, DRIFT_METAPAGE_BLKNO, BUFFER_LOCK_SHARE, DRIFT_PAGE_META, NULL);
    memcpy(meta, DriftPageGetMeta(BufferGetPage(buf)), bytes);
    UnlockReleaseBuffer(buf);
    drift_check_meta(index, meta);
}

void drift_read_meta(Relation index, DriftMetaPageData *meta) { read_meta(index, meta, sizeof(DriftMetaPageData)); }

void drift_read_meta_fields(Relation index, DriftMetaPageData *meta) {
    read_meta(index, meta, offsetof(DriftMetaPageData, retired));
}

Buffer drift_new_buffer(Relation index, ForkNumber fork) {
    if (fork == MAIN_FORKNUM) {
        for (;;) {
            BlockNumber blkno = GetFreeIndexPage(index);
            if (blkno == InvalidBlockNumber) break;
            Buffer buf = ReadBuffer(index, blkno);
            // Never wait here: the caller may hold other page locks.
            if (ConditionalLockBuffer(buf)) {
                int type = drift_page_type(BufferGetPage(buf));
                if (type == 0 || type == DRIFT_PAGE_FREE) return buf;
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
