// The chain cursor: the one way drift walks a chain of pages.
#pragma once

#include "pages.h"

// Walks one chain from its head, one share- or exclusive-locked page at a
// time. Every page it yields is checked: a drift page of the expected type
// whose counts fit meta's capacities, carrying the expected chain id when
// one is given. A link outside the index, a link to the page itself, or a
// walk longer than the index has pages (a cycle) is an ERROR naming the
// index and block, so a corrupt chain never loops. The cursor keeps the
// page it leaves pinned until the next one is pinned (VACUUM takes a
// cleanup lock before it unlinks a page, so it cannot unlink the page a
// cursor is about to enter) and polls for interrupts with no lock held.
// A page VACUUM freed while the cursor was on its way keeps its next link
// and is stepped over. Plain data: no destructor, safe across ERROR.
struct DriftCursor {
    Relation index;
    const DriftMetaPageData *meta; /* capacities to check pages against; NULL: none */
    uint16 type;
    uint32 chain;     /* every page's chain id must be this; 0: any */
    int mode;         /* BUFFER_LOCK_SHARE or BUFFER_LOCK_EXCLUSIVE */
    bool own_only;    /* a page of another type or chain (or a FREE one) ends the walk instead of being an error */
    BlockNumber next; /* page to enter next, or InvalidBlockNumber at the end */
    Buffer buf;       /* current page, pinned; InvalidBuffer before and after */
    bool locked;      /* buf is locked */
    BlockNumber steps, limit;
};

// Starts a walk of the chain beginning at head (InvalidBlockNumber: empty).
void drift_cursor_begin(DriftCursor *c, Relation index, BlockNumber head, uint16 type, uint32 chain,
                        const DriftMetaPageData *meta, int mode);

// Enters the next page and returns it, locked in the cursor's mode; NULL at
// the end of the chain (the cursor then holds nothing).
Page drift_cursor_next(DriftCursor *c);

// The block number of the current page.
inline BlockNumber drift_cursor_block(const DriftCursor *c) { return BufferGetBlockNumber(c->buf); }

// Ends a walk early, releasing the current page.
void drift_cursor_end(DriftCursor *c);
