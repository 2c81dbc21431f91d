// Appending entries to bucket chains and to the L0 chain (generic WAL).
#include "chains.h"

#include "buffers.h"

void drift_vec_put(Page page, uint32 dim, uint16 slot, ItemPointer tid, const float *vec) {
    DriftVecHeader *h = drift_vec_header(page);
    DriftVecEntry e = drift_vec_entry(page, dim, slot);
    e->tid = *tid;
    e->unused = 0;
    memcpy(e->vec, vec, sizeof(float) * dim);
    if (slot >= h->nslots) h->nslots = slot + 1;
    h->nlive++;
    drift_page_set_bounds(page, dim);
}

int drift_vec_free_slot(Page page, uint32 dim, uint16 cap) {
    DriftVecHeader *h = drift_vec_header(page);
    if (h->nlive < h->nslots) {
        for (uint16 s = 0; s < h->nslots; s++)
            if (!ItemPointerIsValid(&drift_vec_entry(page, dim, s)->tid)) return s;
    }
    return h->nslots < cap ? h->nslots : -1;
}

// A free slot of a hot page, or -1 if it is full.
static int hot_free_slot(Page page, uint16 cap) {
    DriftHotHeader *h = drift_hot_header(page);
    if (h->nlive < h->nslots) {
        ItemPointerData *tids = drift_hot_tids(page);
        for (uint16 s = 0; s < h->nslots; s++)
            if (!ItemPointerIsValid(&tids[s])) return s;
    }
    return h->nslots < cap ? h->nslots : -1;
}

void drift_hot_put(const DriftMetaPageData *meta, Page hot, Page cold, uint16 s, ItemPointer tid, const uint8 *code,
                   const float *vec) {
    DriftHotHeader *h = drift_hot_header(hot);
    if (s >= h->nslots) {
        h->nslots = s + 1;
        drift_page_set_bounds(hot, meta->dim);
    }
    drift_hot_tids(hot)[s] = *tid;
    memcpy(drift_hot_code(hot, meta->dim, s), code, meta->dim);
    h->nlive++;
    drift_vec_put(cold, meta->dim, s % meta->cold_cap, tid, vec);
    // Cold pages count only their slots; liveness is the hot page's.
    drift_vec_header(cold)->nlive = 0;
}

// Follows next links from a locked chain page to the chain's last page.
static Buffer lock_chain_tail(Relation index, Buffer buf, uint16 type, const DriftMetaPageData *meta) {
    for (;;) {
        BlockNumber next = DriftPageGetOpaque(BufferGetPage(buf))->next;
        if (next == InvalidBlockNumber) return buf;
        Buffer nbuf = drift_read_locked(index, next, BUFFER_LOCK_EXCLUSIVE, type, meta);
        UnlockReleaseBuffer(buf);
        buf = nbuf;
    }
}

void drift_bucket_append(Relation index, const DriftMetaPageData *meta, DriftDirSlot dir, uint32 bucket,
                         ItemPointer tid, const uint8 *code, const float *vec) {
    Buffer buf;
    BlockNumber tried = InvalidBlockNumber;
    for (;;) {
        Buffer dbuf = drift_read_locked(index, dir.blkno, BUFFER_LOCK_SHARE, DRIFT_PAGE_DIR, meta);
        BlockNumber tail = drift_dir_entry(BufferGetPage(dbuf), meta->dim, dir.slot)->tail;
        UnlockReleaseBuffer(dbuf);
        if (tail == tried) {
            // The same tail twice is no race: it must be this bucket's page.
            buf = drift_read_locked(index, tail, BUFFER_LOCK_EXCLUSIVE, DRIFT_PAGE_HOT, meta);
            if (drift_hot_header(BufferGetPage(buf))->bucket == bucket) break;
            UnlockReleaseBuffer(buf);
            drift_corrupt(index, tail, "A bucket's tail page belongs to another bucket.");
        }
        if (!drift_block_exists(index, tail)) drift_corrupt(index, dir.blkno, "A page link points outside the index.");
        buf = ReadBuffer(index, tail);
        LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
        Page page = BufferGetPage(buf);
        if (drift_page_type(page) == DRIFT_PAGE_HOT && drift_hot_header(page)->bucket == bucket) {
            drift_check_page(index, page, tail, DRIFT_PAGE_HOT, meta);
            break;
        }
        // A tail read before a concurrent vacuum recycled it: read the
        // directory again, which names the current tail.
        UnlockReleaseBuffer(buf);
        tried = tail;
    }
    buf = lock_chain_tail(index, buf, DRIFT_PAGE_HOT, meta);

    int s = hot_free_slot(BufferGetPage(buf), meta->hot_cap);
    GenericXLogState *st;
    if (s >= 0) {
        DriftHotHeader *h = drift_hot_header(BufferGetPage(buf));
        uint16 ci = uint16(s / meta->cold_cap);
        bool fresh = ci >= h->ncold;
        Buffer cbuf = fresh ? drift_new_buffer(index, MAIN_FORKNUM)
                            : drift_read_locked(index, h->cold[ci], BUFFER_LOCK_EXCLUSIVE, DRIFT_PAGE_COLD, meta);
        st = GenericXLogStart(index);
        Page hot = GenericXLogRegisterBuffer(st, buf, 0);
        Page cold = GenericXLogRegisterBuffer(st, cbuf, fresh ? GENERIC_XLOG_FULL_IMAGE : 0);
        if (fresh) {
            drift_page_init(cold, DRIFT_PAGE_COLD);
            h = drift_hot_header(hot);
            h->cold[h->ncold++] = BufferGetBlockNumber(cbuf);
        }
        drift_hot_put(meta, hot, cold, uint16(s), tid, code, vec);
        GenericXLogFinish(st);
        UnlockReleaseBuffer(cbuf);
        UnlockReleaseBuffer(buf);
        return;
    }

    // The tail is full: link a new hot page (with its first cold page) and
    // point the directory at it, in one WAL record.
    Buffer nbuf = drift_new_buffer(index, MAIN_FORKNUM);
    Buffer cbuf = drift_new_buffer(index, MAIN_FORKNUM);
    Buffer dbuf = drift_read_locked(index, dir.blkno, BUFFER_LOCK_EXCLUSIVE, DRIFT_PAGE_DIR, meta);
    st = GenericXLogStart(index);
    Page old = GenericXLogRegisterBuffer(st, buf, 0);
    Page hot = GenericXLogRegisterBuffer(st, nbuf, GENERIC_XLOG_FULL_IMAGE);
    Page cold = GenericXLogRegisterBuffer(st, cbuf, GENERIC_XLOG_FULL_IMAGE);
    Page dpage = GenericXLogRegisterBuffer(st, dbuf, 0);
    drift_page_init(hot, DRIFT_PAGE_HOT);
    drift_page_init(cold, DRIFT_PAGE_COLD);
    DriftHotHeader *h = drift_hot_header(hot);
    h->bucket = bucket;
    h->ncold = 1;
    h->cold[0] = BufferGetBlockNumber(cbuf);
    drift_hot_put(meta, hot, cold, 0, tid, code, vec);
    DriftPageGetOpaque(old)->next = BufferGetBlockNumber(nbuf);
    drift_dir_entry(dpage, meta->dim, dir.slot)->tail = BufferGetBlockNumber(nbuf);
    GenericXLogFinish(st);
    UnlockReleaseBuffer(dbuf);
    UnlockReleaseBuffer(cbuf);
    UnlockReleaseBuffer(nbuf);
    UnlockReleaseBuffer(buf);
}

void drift_l0_append(Relation index, const DriftMetaPageData *meta, ItemPointer tid, const float *vec) {
    BlockNumber tail = meta->l0_tail;
    if (tail == InvalidBlockNumber) {
        // No L0 page yet: create the first one under the metapage lock.
        Buffer mbuf = drift_read_locked(index, DRIFT_METAPAGE_BLKNO, BUFFER_LOCK_EXCLUSIVE, DRIFT_PAGE_META, NULL);
        tail = DriftPageGetMeta(BufferGetPage(mbuf))->l0_tail;
        if (tail == InvalidBlockNumber) {
            Buffer nbuf = drift_new_buffer(index, MAIN_FORKNUM);
            GenericXLogState *st = GenericXLogStart(index);
            Page mpage = GenericXLogRegisterBuffer(st, mbuf, 0);
            Page page = GenericXLogRegisterBuffer(st, nbuf, GENERIC_XLOG_FULL_IMAGE);
            drift_page_init(page, DRIFT_PAGE_L0);
            drift_vec_put(page, meta->dim, 0, tid, vec);
            DriftPageGetMeta(mpage)->l0_head = DriftPageGetMeta(mpage)->l0_tail = BufferGetBlockNumber(nbuf);
            GenericXLogFinish(st);
            UnlockReleaseBuffer(nbuf);
            UnlockReleaseBuffer(mbuf);
            return;
        }
        UnlockReleaseBuffer(mbuf);
    }
    Buffer buf = drift_read_locked(index, tail, BUFFER_LOCK_EXCLUSIVE, DRIFT_PAGE_L0, meta);
    buf = lock_chain_tail(index, buf, DRIFT_PAGE_L0, meta);
    int s = drift_vec_free_slot(BufferGetPage(buf), meta->dim, meta->cold_cap);
    GenericXLogState *st = GenericXLogStart(index);
    Page page = GenericXLogRegisterBuffer(st, buf, 0);
    if (s >= 0) {
        drift_vec_put(page, meta->dim, uint16(s), tid, vec);
        GenericXLogFinish(st);
        UnlockReleaseBuffer(buf);
        return;
    }
    Buffer nbuf = drift_new_buffer(index, MAIN_FORKNUM);
    Buffer mbuf = drift_read_locked(index, DRIFT_METAPAGE_BLKNO, BUFFER_LOCK_EXCLUSIVE, DRIFT_PAGE_META, NULL);
    Page npage = GenericXLogRegisterBuffer(st, nbuf, GENERIC_XLOG_FULL_IMAGE);
    Page mpage = GenericXLogRegisterBuffer(st, mbuf, 0);
    drift_page_init(npage, DRIFT_PAGE_L0);
    drift_vec_put(npage, meta->dim, 0, tid, vec);
    DriftPageGetOpaque(page)->next = BufferGetBlockNumber(nbuf);
    DriftPageGetMeta(mpage)->l0_tail = BufferGetBlockNumber(nbuf);
    GenericXLogFinish(st);
    UnlockReleaseBuffer(mbuf);
    UnlockReleaseBuffer(nbuf);
    UnlockReleaseBuffer(buf);
}
