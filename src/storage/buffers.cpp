// Buffer access and page allocation for drift indexes.
#include "../core/core.hpp"  // before any PostgreSQL header
#include "buffers.h"
#include "cursor.h"

extern "C" {
#include "access/nbtxlog.h"
#include "access/transam.h"
#include "access/xlog.h"
#include "access/xact.h"
#include "access/xloginsert.h"
#include "catalog/storage.h"
#include "storage/lmgr.h"
#include "storage/procarray.h"
#include "utils/snapmgr.h"
}

// drift_block_exists's cache: the last index asked about and its size.
static RelFileNode cached_node;
static BlockNumber cached_nblocks = 0;

bool drift_block_exists(Relation index, BlockNumber blkno) {
    if (blkno == InvalidBlockNumber) return false;
    if (!RelFileNodeEquals(cached_node, index->rd_node) || blkno >= cached_nblocks) {
        cached_node = index->rd_node;
        cached_nblocks = RelationGetNumberOfBlocks(index);
    }
    return blkno < cached_nblocks;
}

BlockNumber drift_known_blocks(Relation index) {
    if (!RelFileNodeEquals(cached_node, index->rd_node)) drift_block_exists(index, 0);
    return cached_nblocks;
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
    // (Only the fields before the retired list: an insert reads no more.)
    uint32 dim = meta->dim;
    if (meta->vec_kind != DRIFT_VEC_FLOAT4 && meta->vec_kind != DRIFT_VEC_HALF)
        return "The metapage names an unknown vector kind.";
    if (dim > drift_max_dim(meta->vec_kind)) return "The metapage's dimension is invalid.";
    uint16 cold = dim ? drift_vec_capacity(dim, meta->vec_kind) : 0;
    if ((meta->code_kind != DRIFT_CODE_SQ8 && meta->code_kind != DRIFT_CODE_RABITQ) || meta->opt_codes > DRIFT_CODES_RABITQ)
        return "The metapage names an unknown code kind.";
    if (meta->code_kind == DRIFT_CODE_RABITQ && dim > drift_rabitq_max_dim())
        return "The metapage's dimension is too wide for its code kind.";
    if (meta->rerank > DRIFT_RERANK_HEAP) return "The metapage names an unknown re-rank source.";
    if (meta->code_bytes != drift_code_bytes(meta->code_kind, dim) || meta->cold_cap != cold ||
        meta->hot_cap != (dim ? drift_hot_capacity(meta->code_bytes, drift_keeps_vectors(meta) ? cold : 0) : 0) ||
        meta->dir_cap != (dim ? drift_dir_capacity(dim, meta->vec_kind) : 0))
        return "The metapage's page capacities do not match its dimension.";
    if (meta->metric < uint16(drift::Metric::L2) || meta->metric > uint16(drift::Metric::Cosine))
        return "The metapage names an unknown metric.";
    bool trained = (meta->flags & DRIFT_META_TRAINED) != 0;
    if (trained && (dim == 0 || meta->quant_head == InvalidBlockNumber || meta->quant_head == DRIFT_METAPAGE_BLKNO))
        return "The metapage says the index is trained but has no dimension or quantizer.";
    if (!trained && (meta->nbuckets != 0 || meta->old_quant_head != InvalidBlockNumber))
        return "The metapage says the index is untrained but lists buckets or quantizers.";
    if (meta->live_buckets > meta->nbuckets) return "The metapage counts more buckets in use than it has.";
    if ((meta->nbuckets > 0) != (meta->dir_head != InvalidBlockNumber) || meta->dir_head == DRIFT_METAPAGE_BLKNO)
        return "The metapage's bucket count does not match its directory.";
    if ((meta->l0_head == InvalidBlockNumber) != (meta->l0_tail == InvalidBlockNumber) ||
        meta->l0_head == DRIFT_METAPAGE_BLKNO || meta->l0_tail == DRIFT_METAPAGE_BLKNO)
        return "The metapage's L0 head and tail do not match.";
    if (meta->nretired > DRIFT_MAX_RETIRED) return "The metapage lists more retired chains than fit.";
    return NULL;
}

void drift_check_meta(Relation index, const DriftMetaPageData *meta) {
    char detail[96];
    const char *problem = drift_meta_problem(meta, detail, sizeof(detail));
    if (problem != NULL) drift_corrupt(index, DRIFT_METAPAGE_BLKNO, problem);
    // Every bucket has a directory entry, and the directory lies in the index.
    BlockNumber need = drift_dir_min_blocks(meta);
    if (need > 0 && !drift_block_exists(index, need - 1))
        drift_corrupt(index, DRIFT_METAPAGE_BLKNO, "The metapage counts more buckets than the index has room for.");
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

void drift_log_conflict(Relation index, BlockNumber blkno, uint64 xid) {
    if (!RelationNeedsWAL(index) || !XLogStandbyInfoActive()) return;
    xl_btree_reuse_page rec;
    rec.node = index->rd_node;
    rec.block = blkno;
    rec.latestRemovedFullXid = FullTransactionIdFromU64(xid);
    XLogBeginInsert();
    XLogRegisterData((char *) &rec, SizeOfBtreeReusePage);
    XLogInsert(RM_BTREE_ID, XLOG_BTREE_REUSE_PAGE);
}

uint64 drift_xid_horizon() {
    InvalidateCatalogSnapshot();  // (a catalog snapshot of this backend's own would count)
    // (oldest first: read after it, next is never older than it, and oldest
    // is less than 2^31 transactions behind)
    TransactionId oldest = GetOldestNonRemovableTransactionId(NULL);
    FullTransactionId next = ReadNextFullTransactionId();
    int32 behind = int32(XidFromFullTransactionId(next) - oldest);
    return U64FromFullTransactionId(next) - uint32(Max(behind, 0));
}

// True if a page freed at safexid may be reused now; then logs the reuse
// as a recovery conflict, so standbys cancel the queries that may still be
// on the page. (The cached horizon first; if it says no, a fresh one: a
// janitor pass holds no snapshot that would refresh the cache.)
static bool reusable(Relation index, BlockNumber blkno, uint64 safexid) {
    if (safexid == 0) return true;
    if (!GlobalVisCheckRemovableFullXid(NULL, FullTransactionIdFromU64(safexid)) && safexid >= drift_xid_horizon())
        return false;
    drift_log_conflict(index, blkno, safexid);
    return true;
}

Buffer drift_new_buffer(Relation index, ForkNumber fork) {
    if (fork == MAIN_FORKNUM) {
        for (;;) {
            BlockNumber blkno = GetFreeIndexPage(index);
            if (blkno == InvalidBlockNumber) break;
            Buffer buf = ReadBuffer(index, blkno);
            // Never wait here: the caller may hold other page locks.
            if (!ConditionalLockBuffer(buf)) {
                // (a scan is stepping over it): keep it in the map for later
                ReleaseBuffer(buf);
                RecordFreeIndexPage(index, blkno);
                break;
            }
            Page page = BufferGetPage(buf);
            int type = drift_page_type(page);
            if (type == 0) return buf;
            if (type == DRIFT_PAGE_FREE) {
                if (reusable(index, blkno, drift_page_free_xid(page))) return buf;
                // Freed while snapshots still running began (this one's own,
                // perhaps): it stays in the map for later, and the index
                // grows by one page this time.
                UnlockReleaseBuffer(buf);
                RecordFreeIndexPage(index, blkno);
                break;
            }
            UnlockReleaseBuffer(buf);  // in use again: a stale entry of the map
        }
    }
    LockRelationForExtension(index, ExclusiveLock);
    Buffer buf = ReadBufferExtended(index, fork, P_NEW, RBM_NORMAL, NULL);
    LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
    UnlockRelationForExtension(index, ExclusiveLock);
    return buf;
}

// The free pages (FREE, or never initialized) that end the index's first
// nblocks blocks, counted back from the last up to `enough`.
static BlockNumber free_tail(Relation index, BlockNumber nblocks, BlockNumber enough) {
    BlockNumber n = 0;
    while (n < enough && nblocks - n > DRIFT_METAPAGE_BLKNO + 1) {
        Buffer buf = ReadBuffer(index, nblocks - n - 1);
        LockBuffer(buf, BUFFER_LOCK_SHARE);
        int type = drift_page_type(BufferGetPage(buf));
        UnlockReleaseBuffer(buf);
        if (type != 0 && type != DRIFT_PAGE_FREE) break;
        n++;
    }
    return n;
}

BlockNumber drift_truncate_free_tail(Relation index) {
    const BlockNumber least = 16;
    // (the lock is WAL-logged under an xid, which a parallel VACUUM may not take)
    if (RecoveryInProgress() || IsInParallelMode()) return 0;
    BlockNumber nblocks = RelationGetNumberOfBlocks(index);
    if (free_tail(index, nblocks, least) < least) return 0;
    // Counted first without the lock (reading the pages in), so that the
    // count under it reads them from memory: queries wait meanwhile.
    BlockNumber seen = free_tail(index, nblocks, nblocks);
    if (!ConditionalLockRelation(index, AccessExclusiveLock)) return 0;
    // No other backend reads or extends the index now: count again.
    nblocks = RelationGetNumberOfBlocks(index);
    BlockNumber n = free_tail(index, nblocks, seen);
    if (n >= least) {
        RelationTruncate(index, nblocks - n);
        cached_nblocks = 0;
    }
    UnlockRelation(index, AccessExclusiveLock);
    return n >= least ? n : 0;
}

void drift_meta_begin(Relation index, DriftMetaEdit *e) {
    e->buf = drift_read_locked(index, DRIFT_METAPAGE_BLKNO, BUFFER_LOCK_EXCLUSIVE, DRIFT_PAGE_META, NULL);
    e->state = GenericXLogStart(index);
    e->meta = DriftPageGetMeta(GenericXLogRegisterBuffer(e->state, e->buf, 0));
}

Page drift_meta_add(DriftMetaEdit *e, Buffer buf, int flags) { return GenericXLogRegisterBuffer(e->state, buf, flags); }

void drift_meta_finish(DriftMetaEdit *e) {
    GenericXLogFinish(e->state);
    UnlockReleaseBuffer(e->buf);
}

void drift_meta_abort(DriftMetaEdit *e) {
    GenericXLogAbort(e->state);
    UnlockReleaseBuffer(e->buf);
}

void drift_read_blob(Relation index, BlockNumber head, char *out, Size nbytes) {
    Size done = 0;
    DriftCursor c;
    drift_cursor_begin(&c, index, head, DRIFT_PAGE_BLOB, 0, NULL, BUFFER_LOCK_SHARE);
    while (done < nbytes) {
        Page page = drift_cursor_next(&c);
        if (page == NULL) drift_corrupt(index, head, "A blob chain ends early.");
        Size n = Min(Size(drift_blob_header(page)->nbytes), nbytes - done);
        if (n == 0 || drift_blob_header(page)->nbytes > DRIFT_BLOB_CAPACITY) {
            BlockNumber blkno = drift_cursor_block(&c);
            drift_cursor_end(&c);
            drift_corrupt(index, blkno, "A blob page's length is invalid.");
        }
        memcpy(out + done, drift_blob_data(page), n);
        done += n;
    }
    drift_cursor_end(&c);
}
