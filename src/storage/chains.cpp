// Writing bucket chains and the L0 chain (generic WAL).
#include "chains.h"

#include "buffers.h"
#include "cursor.h"

extern "C" {
#include "access/rmgr.h"
#include "access/xloginsert.h"
#include "miscadmin.h"
}

void drift_vec_put(Page page, uint32 dim, uint16 slot, ItemPointer tid, const float *vec) {
    DriftVecHeader *h = drift_vec_header(page);
    DriftVecEntry e = drift_vec_entry(page, dim, slot);
    e->tid = *tid;
    e->unused = 0;
    drift_vec_write(page, dim, slot, vec);
    if (slot >= h->nslots) h->nslots = slot + 1;
    h->nlive++;
    drift_page_set_bounds(page, dim);
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
        h->code_bytes = uint16(meta->code_bytes);
        drift_page_set_bounds(hot, meta->dim);
    }
    drift_hot_tids(hot)[s] = *tid;
    memcpy(drift_hot_code(hot, meta->code_bytes, s), code, meta->code_bytes);
    h->nlive++;
    if (cold == NULL) return;
    drift_vec_put(cold, meta->dim, s % meta->cold_cap, tid, vec);
    // Cold pages count only their slots; liveness is the hot page's.
    drift_vec_header(cold)->nlive = 0;
}

Buffer drift_unlogged_page(Relation index, ForkNumber fork, uint16 type, uint32 chain, uint16 kind) {
    Buffer buf = drift_new_buffer(index, fork);
    drift_page_init(BufferGetPage(buf), type, chain, kind);
    MarkBufferDirty(buf);
    LockBuffer(buf, BUFFER_LOCK_UNLOCK);
    return buf;
}

// A new page of the chain being written.
static Buffer writer_page(ChainWriter *w, uint16 type) {
    return drift_unlogged_page(w->index, w->fork, type, w->chain, w->meta->vec_kind);
}

// Drops the writer's pin on a page it is done with, WAL-logging the page first if asked.
static void writer_release(ChainWriter *w, Buffer buf) {
    if (w->wal) {
        LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
        log_newpage_buffer(buf, true);
        LockBuffer(buf, BUFFER_LOCK_UNLOCK);
    }
    ReleaseBuffer(buf);
}

Page drift_unlogged_edit(Buffer buf) {
    LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
    return BufferGetPage(buf);
}

void drift_unlogged_end(Buffer buf) {
    MarkBufferDirty(buf);
    LockBuffer(buf, BUFFER_LOCK_UNLOCK);
}

BlockNumber drift_write_blob(Relation index, ForkNumber fork, uint32 chain, const char *data, Size nbytes, bool wal) {
    ChainWriter w;
    w.wal = wal;
    BlockNumber head = InvalidBlockNumber;
    Buffer prev = InvalidBuffer;
    for (Size done = 0; done < nbytes;) {
        Buffer buf = drift_unlogged_page(index, fork, DRIFT_PAGE_BLOB, chain, 0);
        Page page = drift_unlogged_edit(buf);
        Size n = Min(nbytes - done, Size(DRIFT_BLOB_CAPACITY));
        memcpy(drift_blob_data(page), data + done, n);
        drift_blob_header(page)->nbytes = uint32(n);
        drift_page_set_bounds(page, 0);
        drift_unlogged_end(buf);
        done += n;
        if (BufferIsValid(prev)) {
            Page ppage = drift_unlogged_edit(prev);  // not inside the macro: it evaluates its argument twice
            DriftPageGetOpaque(ppage)->next = BufferGetBlockNumber(buf);
            drift_unlogged_end(prev);
            writer_release(&w, prev);
        } else
            head = BufferGetBlockNumber(buf);
        prev = buf;
    }
    writer_release(&w, prev);
    return head;
}

void drift_chain_start(ChainWriter *w, Relation index, ForkNumber fork, const DriftMetaPageData *meta, bool wal,
                       uint32 chain, uint32 bucket, const uint16 *centre) {
    w->index = index;
    w->fork = fork;
    w->meta = meta;
    w->wal = wal;
    w->chain = chain;
    w->bucket = bucket;
    w->hot = writer_page(w, DRIFT_PAGE_HOT);
    w->cold = InvalidBuffer;
    Page page = drift_unlogged_edit(w->hot);
    drift_hot_header(page)->bucket = bucket;
    if (centre != NULL) drift_hot_set_centre(page, centre, drift_centre_bytes(meta->code_kind, meta->dim));
    drift_unlogged_end(w->hot);
    w->head = w->tail = BufferGetBlockNumber(w->hot);
    w->n = 0;
}

void drift_chain_add(ChainWriter *w, ItemPointer tid, const uint8 *code, const float *vec) {
    const DriftMetaPageData *meta = w->meta;
    Page hot = drift_unlogged_edit(w->hot);
    DriftHotHeader *h = drift_hot_header(hot);
    if (h->nslots == drift_hot_page_capacity(meta, hot)) {
        Buffer nbuf = writer_page(w, DRIFT_PAGE_HOT);
        DriftPageGetOpaque(hot)->next = BufferGetBlockNumber(nbuf);
        drift_unlogged_end(w->hot);
        writer_release(w, w->hot);
        if (BufferIsValid(w->cold)) writer_release(w, w->cold);
        w->hot = nbuf;
        w->cold = InvalidBuffer;
        w->tail = BufferGetBlockNumber(nbuf);
        hot = drift_unlogged_edit(w->hot);
        h = drift_hot_header(hot);
        h->bucket = w->bucket;
    }
    uint16 s = h->nslots;
    bool keep = drift_keeps_vectors(meta);
    if (keep && s % meta->cold_cap == 0) {
        if (BufferIsValid(w->cold)) writer_release(w, w->cold);
        w->cold = writer_page(w, DRIFT_PAGE_COLD);
        h->cold[h->ncold++] = BufferGetBlockNumber(w->cold);
    }
    drift_hot_put(meta, hot, keep ? drift_unlogged_edit(w->cold) : NULL, s, tid, code, vec);
    if (keep) drift_unlogged_end(w->cold);
    drift_unlogged_end(w->hot);
    w->n++;
}

void drift_chain_finish(ChainWriter *w) {
    writer_release(w, w->hot);
    if (BufferIsValid(w->cold)) writer_release(w, w->cold);
    w->hot = w->cold = InvalidBuffer;
}

// The last page of the L0 chain, locked exclusively: `tail` (the metapage's
// tail when it was read), or past it if pages were linked since.
static Buffer lock_l0_tail(Relation index, BlockNumber tail, const DriftMetaPageData *meta) {
    DriftCursor c;
    drift_cursor_begin(&c, index, tail, DRIFT_PAGE_L0, 0, meta, BUFFER_LOCK_EXCLUSIVE);
    while (drift_cursor_next(&c) != NULL && c.next != InvalidBlockNumber) {
    }
    return c.buf;
}

void drift_bucket_append(Relation index, const DriftMetaPageData *meta, DriftDirSlot dir, uint32 chain, uint32 n,
                         const ItemPointerData *tids, const uint8 *codes, const float *vecs) {
    uint32 dim = meta->dim;
    Buffer dbuf = drift_read_locked(index, dir.blkno, BUFFER_LOCK_SHARE, DRIFT_PAGE_DIR, meta);
    DriftDirEntry e = drift_dir_entry(BufferGetPage(dbuf), dim, dir.slot);
    BlockNumber tail = e->tail;
    UnlockReleaseBuffer(dbuf);
    Buffer buf = drift_read_locked(index, tail, BUFFER_LOCK_EXCLUSIVE, DRIFT_PAGE_HOT, meta);
    if (DriftPageGetOpaque(BufferGetPage(buf))->chain != chain ||
        DriftPageGetOpaque(BufferGetPage(buf))->next != InvalidBlockNumber || !drift_hot_links_ok(BufferGetPage(buf), tail)) {
        UnlockReleaseBuffer(buf);
        drift_corrupt(index, tail, "A bucket's tail page is not the last page of its chain.");
    }
    uint32 bucket = drift_hot_header(BufferGetPage(buf))->bucket;
    bool keep = drift_keeps_vectors(meta);
    uint32 i = 0;
    while (i < n) {
        int s = hot_free_slot(BufferGetPage(buf), drift_hot_page_capacity(meta, BufferGetPage(buf)));
        if (s >= 0) {
            // Fill free slots whose vectors go to the same cold page (any
            // free slot, without cold pages), in one record.
            DriftHotHeader *h = drift_hot_header(BufferGetPage(buf));
            uint16 ci = keep ? uint16(s / meta->cold_cap) : 0;
            bool fresh = keep && ci >= h->ncold;
            Buffer cbuf = !keep  ? InvalidBuffer
                          : fresh ? drift_new_buffer(index, MAIN_FORKNUM)
                                  : drift_read_locked(index, h->cold[ci], BUFFER_LOCK_EXCLUSIVE, DRIFT_PAGE_COLD, meta);
            GenericXLogState *st = GenericXLogStart(index);
            Page hot = GenericXLogRegisterBuffer(st, buf, 0);
            Page cold = keep ? GenericXLogRegisterBuffer(st, cbuf, fresh ? GENERIC_XLOG_FULL_IMAGE : 0) : NULL;
            if (fresh) {
                drift_page_init(cold, DRIFT_PAGE_COLD, chain, meta->vec_kind);
                h = drift_hot_header(hot);
                h->cold[h->ncold++] = BufferGetBlockNumber(cbuf);
            }
            while (i < n && s >= 0 && (!keep || s / meta->cold_cap == ci)) {
                drift_hot_put(meta, hot, cold, uint16(s), (ItemPointer) &tids[i], codes + Size(i) * meta->code_bytes,
                              vecs + Size(i) * dim);
                i++;
                s = hot_free_slot(hot, drift_hot_page_capacity(meta, hot));
            }
            GenericXLogFinish(st);
            if (keep) UnlockReleaseBuffer(cbuf);
            continue;
        }
        // The tail is full: link a new hot page (with its first cold page)
        // and point the directory at it, in one record.
        Buffer nbuf = drift_new_buffer(index, MAIN_FORKNUM);
        Buffer cbuf = keep ? drift_new_buffer(index, MAIN_FORKNUM) : InvalidBuffer;
        dbuf = drift_read_locked(index, dir.blkno, BUFFER_LOCK_EXCLUSIVE, DRIFT_PAGE_DIR, meta);
        GenericXLogState *st = GenericXLogStart(index);
        Page old = GenericXLogRegisterBuffer(st, buf, 0);
        Page hot = GenericXLogRegisterBuffer(st, nbuf, GENERIC_XLOG_FULL_IMAGE);
        Page cold = keep ? GenericXLogRegisterBuffer(st, cbuf, GENERIC_XLOG_FULL_IMAGE) : NULL;
        Page dpage = GenericXLogRegisterBuffer(st, dbuf, 0);
        drift_page_init(hot, DRIFT_PAGE_HOT, chain, 0);
        DriftHotHeader *h = drift_hot_header(hot);
        h->bucket = bucket;
        if (keep) {
            drift_page_init(cold, DRIFT_PAGE_COLD, chain, meta->vec_kind);
            h->ncold = 1;
            h->cold[0] = BufferGetBlockNumber(cbuf);
        }
        for (uint16 s2 = 0; i < n && s2 < (keep ? meta->cold_cap : meta->hot_cap); s2++, i++)
            drift_hot_put(meta, hot, cold, s2, (ItemPointer) &tids[i], codes + Size(i) * meta->code_bytes, vecs + Size(i) * dim);
        DriftPageGetOpaque(old)->next = BufferGetBlockNumber(nbuf);
        drift_dir_entry(dpage, dim, dir.slot)->tail = BufferGetBlockNumber(nbuf);
        GenericXLogFinish(st);
        UnlockReleaseBuffer(dbuf);
        if (keep) UnlockReleaseBuffer(cbuf);
        UnlockReleaseBuffer(buf);
        buf = nbuf;
    }
    UnlockReleaseBuffer(buf);
}

// Appends one fragment (offset, length, bytes of page) to a generic WAL delta.
static char *delta_fragment(char *out, Page page, Size offset, Size length) {
    OffsetNumber o = OffsetNumber(offset), n = OffsetNumber(length);
    memcpy(out, &o, sizeof(o));
    memcpy(out + sizeof(o), &n, sizeof(n));
    memcpy(out + 2 * sizeof(o), (char *) page + offset, length);
    return out + 2 * sizeof(o) + length;
}

// Stores (tid, vec) in slot s of L0 page buf (locked exclusively) and
// WAL-logs it. This is the hot path of every insert, so instead of
// GenericXLogStart/Finish (which copy the page twice and diff it byte by
// byte) it writes the generic WAL record they would write, whose block data
// is a list of fragments (OffsetNumber offset, OffsetNumber length, bytes)
// that generic redo copies into the page: the page header's bounds, the
// L0 header and the new entry are the only bytes that change. Redo then
// zeroes the free space between the bounds, as for any generic record.
static void l0_put_logged(Relation index, Buffer buf, uint32 dim, uint16 s, ItemPointer tid, const float *vec) {
    Page page = BufferGetPage(buf);
    PGAlignedBlock delta;
    START_CRIT_SECTION();
    drift_vec_put(page, dim, s, tid, vec);
    MarkBufferDirty(buf);
    if (RelationNeedsWAL(index)) {
        char *end = delta_fragment(delta.data, page, offsetof(PageHeaderData, pd_lower), 2 * sizeof(LocationIndex));
        end = delta_fragment(end, page, PageGetContents(page) - (char *) page, sizeof(DriftVecHeader));
        end = delta_fragment(end, page, (char *) drift_vec_entry(page, dim, s) - (char *) page,
                             drift_vec_stride(dim, drift_vec_header(page)->kind));
        XLogBeginInsert();
        XLogRegisterBuffer(0, buf, REGBUF_STANDARD);
        XLogRegisterBufData(0, delta.data, end - delta.data);
        XLogRecPtr lsn = XLogInsert(RM_GENERIC_ID, 0);  // PageSetLSN evaluates its argument twice
        PageSetLSN(page, lsn);
    }
    END_CRIT_SECTION();
}

uint32 drift_l0_append(Relation index, const DriftMetaPageData *meta, ItemPointer tid, const float *vec) {
    BlockNumber tail = meta->l0_tail;
    if (tail == InvalidBlockNumber) {
        // No L0 page yet: create the first one under the metapage lock.
        DriftMetaEdit e;
        drift_meta_begin(index, &e);
        tail = e.meta->l0_tail;
        if (tail == InvalidBlockNumber) {
            Buffer nbuf = drift_new_buffer(index, MAIN_FORKNUM);
            Page page = drift_meta_add(&e, nbuf, GENERIC_XLOG_FULL_IMAGE);
            drift_page_init(page, DRIFT_PAGE_L0, e.meta->l0_chain, e.meta->vec_kind);
            drift_vec_put(page, meta->dim, 0, tid, vec);
            e.meta->l0_head = e.meta->l0_tail = BufferGetBlockNumber(nbuf);
            uint32 pages = ++e.meta->l0_pages;
            drift_meta_finish(&e);
            UnlockReleaseBuffer(nbuf);
            return pages;
        }
        drift_meta_abort(&e);
    }
    Buffer buf = lock_l0_tail(index, tail, meta);
    // L0 never reuses a slot VACUUM freed: positions only grow (the memtable
    // graph records how far it has read).
    uint16 s = drift_vec_header(BufferGetPage(buf))->nslots;
    if (s < meta->cold_cap) {
        l0_put_logged(index, buf, meta->dim, s, tid, vec);
        UnlockReleaseBuffer(buf);
        return 0;
    }
    // The tail is full: a new tail page of the same chain.
    Buffer nbuf = drift_new_buffer(index, MAIN_FORKNUM);
    DriftMetaEdit e;
    drift_meta_begin(index, &e);
    Page page = drift_meta_add(&e, buf, 0);
    Page npage = drift_meta_add(&e, nbuf, GENERIC_XLOG_FULL_IMAGE);
    drift_page_init(npage, DRIFT_PAGE_L0, DriftPageGetOpaque(page)->chain, e.meta->vec_kind);
    drift_vec_put(npage, meta->dim, 0, tid, vec);
    DriftPageGetOpaque(page)->next = BufferGetBlockNumber(nbuf);
    e.meta->l0_tail = BufferGetBlockNumber(nbuf);
    uint32 pages = ++e.meta->l0_pages;
    drift_meta_finish(&e);
    UnlockReleaseBuffer(nbuf);
    UnlockReleaseBuffer(buf);
    return pages;
}

BlockNumber drift_l0_close(Relation index, const DriftMetaPageData *meta) {
    if (meta->l0_tail == InvalidBlockNumber) return InvalidBlockNumber;
    // Lock order as in drift_l0_append: tail page, then metapage.
    Buffer buf = lock_l0_tail(index, meta->l0_tail, meta);
    Buffer nbuf = drift_new_buffer(index, MAIN_FORKNUM);
    DriftMetaEdit e;
    drift_meta_begin(index, &e);
    Page page = drift_meta_add(&e, buf, 0);
    Page npage = drift_meta_add(&e, nbuf, GENERIC_XLOG_FULL_IMAGE);
    e.meta->l0_chain = e.meta->next_chain++;
    drift_page_init(npage, DRIFT_PAGE_L0, e.meta->l0_chain, e.meta->vec_kind);
    DriftPageGetOpaque(page)->next = BufferGetBlockNumber(nbuf);
    e.meta->l0_tail = BufferGetBlockNumber(nbuf);
    e.meta->l0_pages = 0;
    drift_meta_finish(&e);
    BlockNumber first = BufferGetBlockNumber(nbuf);
    UnlockReleaseBuffer(nbuf);
    UnlockReleaseBuffer(buf);
    return first;
}

void drift_free_pages(Relation index, Buffer *bufs, int n, uint64 xid) {
    for (int i = 0; i < n; i += MAX_GENERIC_XLOG_PAGES) {
        GenericXLogState *st = GenericXLogStart(index);
        for (int j = i; j < Min(n, i + MAX_GENERIC_XLOG_PAGES); j++)
            drift_page_set_free(GenericXLogRegisterBuffer(st, bufs[j], 0), xid);
        GenericXLogFinish(st);
    }
    for (int i = 0; i < n; i++) {
        BlockNumber blkno = BufferGetBlockNumber(bufs[i]);
        UnlockReleaseBuffer(bufs[i]);
        RecordFreeIndexPage(index, blkno);
    }
}

uint32 drift_release_chain(Relation index, const DriftMetaPageData *meta, BlockNumber head, uint32 chain, uint16 type,
                           uint64 xid) {
    uint32 freed = 0;
    DriftCursor c;
    drift_cursor_begin(&c, index, head, type, chain, meta, BUFFER_LOCK_EXCLUSIVE);
    c.own_only = true;
    for (Page page; (page = drift_cursor_next(&c)) != NULL;) {
        if (type == DRIFT_PAGE_HOT) {
            const DriftHotHeader *h = drift_hot_header(page);
            Buffer cold[DRIFT_MAX_COLD_PER_HOT];
            int n = 0;
            for (uint16 i = 0; i < h->ncold; i++) {
                if (!drift_block_exists(index, h->cold[i])) continue;
                Buffer cbuf = ReadBuffer(index, h->cold[i]);
                LockBuffer(cbuf, BUFFER_LOCK_EXCLUSIVE);
                Page cpage = BufferGetPage(cbuf);
                if (drift_page_type(cpage) == DRIFT_PAGE_COLD && DriftPageGetOpaque(cpage)->chain == chain)
                    cold[n++] = cbuf;
                else
                    UnlockReleaseBuffer(cbuf);
            }
            if (n > 0) drift_free_pages(index, cold, n, xid);
            freed += n;
        }
        GenericXLogState *st = GenericXLogStart(index);
        drift_page_set_free(GenericXLogRegisterBuffer(st, c.buf, 0), xid);  // keeps its next link for the walk
        GenericXLogFinish(st);
        RecordFreeIndexPage(index, drift_cursor_block(&c));
        freed++;
    }
    return freed;
}
