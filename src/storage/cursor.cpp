// The chain cursor (see cursor.h).
#include "cursor.h"

#include "buffers.h"

extern "C" {
#include "miscadmin.h"
}

void drift_cursor_begin(DriftCursor *c, Relation index, BlockNumber head, uint16 type, uint32 chain,
                        const DriftMetaPageData *meta, int mode) {
    c->index = index;
    c->meta = meta;
    c->type = type;
    c->chain = chain;
    c->mode = mode;
    c->own_only = false;
    c->next = head;
    c->buf = InvalidBuffer;
    c->locked = false;
    c->steps = 0;
    c->limit = drift_known_blocks(index);
}

// Raises "corrupt" for blkno after releasing what the cursor holds.
static void cursor_corrupt(DriftCursor *c, BlockNumber blkno, const char *detail) pg_attribute_noreturn();
static void cursor_corrupt(DriftCursor *c, BlockNumber blkno, const char *detail) {
    drift_cursor_end(c);
    drift_corrupt(c->index, blkno, detail);
}

Page drift_cursor_next(DriftCursor *c) {
    for (;;) {
        BlockNumber from = InvalidBlockNumber;
        if (BufferIsValid(c->buf)) {
            from = BufferGetBlockNumber(c->buf);
            if (c->locked) c->next = DriftPageGetOpaque(BufferGetPage(c->buf))->next;  // as the caller leaves it
            if (c->locked) LockBuffer(c->buf, BUFFER_LOCK_UNLOCK);  // keep the pin until the next page is pinned
            c->locked = false;
        }
        BlockNumber blkno = c->next;
        if (blkno == InvalidBlockNumber) {
            drift_cursor_end(c);
            return NULL;
        }
        if (blkno == from) cursor_corrupt(c, from, "A page links to itself.");
        if (!drift_block_exists(c->index, blkno)) {
            if (c->own_only) {
                drift_cursor_end(c);
                return NULL;
            }
            cursor_corrupt(c, from, "A page link points outside the index.");
        }
        // A chain has no more pages than the index; the index may grow during the walk.
        if (++c->steps > c->limit) {
            c->limit = RelationGetNumberOfBlocks(c->index);
            if (c->steps > c->limit) cursor_corrupt(c, blkno, "A page chain loops back on itself.");
        }
        CHECK_FOR_INTERRUPTS();
        Buffer buf = ReadBuffer(c->index, blkno);
        if (BufferIsValid(c->buf)) ReleaseBuffer(c->buf);
        c->buf = buf;
        LockBuffer(buf, c->mode);
        c->locked = true;
        Page page = BufferGetPage(buf);
        c->next = drift_page_type(page) > 0 ? DriftPageGetOpaque(page)->next : InvalidBlockNumber;
        if (c->own_only && (drift_page_type(page) != c->type || (c->chain != 0 && DriftPageGetOpaque(page)->chain != c->chain))) {
            drift_cursor_end(c);
            return NULL;
        }
        if (from != InvalidBlockNumber && drift_page_type(page) == DRIFT_PAGE_FREE) continue;  // unlinked by VACUUM
        char detail[96];
        const char *problem = drift_page_problem(page, c->type, c->meta, detail, sizeof(detail));
        if (problem != NULL) cursor_corrupt(c, blkno, problem);
        if (c->chain != 0 && DriftPageGetOpaque(page)->chain != c->chain)
            cursor_corrupt(c, blkno, "A page of another chain is linked into this one.");
        if (c->type == DRIFT_PAGE_HOT && !drift_hot_links_ok(page, blkno))
            cursor_corrupt(c, blkno, "A bucket page links to itself, the metapage or one page twice as cold pages.");
        return page;
    }
}

void drift_cursor_end(DriftCursor *c) {
    if (BufferIsValid(c->buf)) {
        if (c->locked) LockBuffer(c->buf, BUFFER_LOCK_UNLOCK);
        ReleaseBuffer(c->buf);
    }
    c->buf = InvalidBuffer;
    c->locked = false;
    c->next = InvalidBlockNumber;
}
