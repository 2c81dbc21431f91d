// Writing bucket chains and the L0 chain (generic WAL).
#pragma once

#include "pages.h"

// Where bucket b's directory entry lives.
struct DriftDirSlot {
    BlockNumber blkno;
    uint32 slot;
};

// Pages not yet reachable from the index (a build's, or a new chain's) are
// written without per-edit WAL, and locked only per edit: a content lock
// holds off interrupts, and a backend may hold only so many at once.

// A new page initialized as type with chain id chain (and vector kind
// `kind`, for cold, L0 and directory pages): pinned, unlocked.
Buffer drift_unlogged_page(Relation index, ForkNumber fork, uint16 type, uint32 chain, uint16 kind);

// Locks such a page for an edit and returns it.
Page drift_unlogged_edit(Buffer buf);

// Ends an edit: the page is dirty and unlocked.
void drift_unlogged_end(Buffer buf);

// Writes nbytes of data as a new blob chain with chain id chain (WAL-logged
// page by page with wal); returns its first page.
BlockNumber drift_write_blob(Relation index, ForkNumber fork, uint32 chain, const char *data, Size nbytes, bool wal);

// Writes a new bucket chain page by page. Its pages are unreachable until
// the caller links the chain into the directory, so they are built without
// per-edit WAL; with `wal`, each page is WAL-logged as a full image when
// the writer is done with it (a build logs all its pages at its end).
// Plain data: buffers are pinned, never locked between calls.
struct ChainWriter {
    Relation index;
    ForkNumber fork;
    const DriftMetaPageData *meta;
    bool wal;
    uint32 chain, bucket;
    Buffer hot, cold;
    BlockNumber head, tail;
    uint32 n;
};

// Starts a chain of one empty hot page for `bucket` with chain id `chain`;
// with RaBitQ codes, centre is the chain's rotated centre in halves
// (drift::rabitq_centre), kept on that page (NULL for SQ8 codes).
void drift_chain_start(ChainWriter *w, Relation index, ForkNumber fork, const DriftMetaPageData *meta, bool wal,
                       uint32 chain, uint32 bucket, const uint16 *centre);

// Appends one entry to the chain being written.
void drift_chain_add(ChainWriter *w, ItemPointer tid, const uint8 *code, const float *vec);

// Finishes the chain: w->head and w->tail name its first and last hot pages.
void drift_chain_finish(ChainWriter *w);

// Appends n entries (tids[i], codes + i*code_bytes, vecs + i*dim) to bucket chain
// `chain` whose directory entry is at dir, filling free slots of its tail
// page, then new tail pages. The caller holds the maintenance lock, so no
// one else appends to bucket chains.
void drift_bucket_append(Relation index, const DriftMetaPageData *meta, DriftDirSlot dir, uint32 chain, uint32 n,
                         const ItemPointerData *tids, const uint8 *codes, const float *vecs);

// Appends (tid, vec) to the L0 chain, creating or extending it as needed.
// When it linked a new L0 page, returns the pages L0 has gained since its
// last flush (metapage counter); else 0.
uint32 drift_l0_append(Relation index, const DriftMetaPageData *meta, ItemPointer tid, const float *vec);

// Closes the L0 chain for a flush: links a new empty L0 page with a new
// chain id after its tail and makes it the tail, so every later insert
// lands after it. Returns the first page after the closed part (the new
// page), or InvalidBlockNumber if L0 is empty.
BlockNumber drift_l0_close(Relation index, const DriftMetaPageData *meta);

// Stores an entry in slot s of hot page `hot`, its vector in cold page
// `cold` (the page for that slot; NULL in an index that keeps no vectors),
// keeping both pages' bounds.
void drift_hot_put(const DriftMetaPageData *meta, Page hot, Page cold, uint16 s, ItemPointer tid, const uint8 *code,
                   const float *vec);

// Stores tid and vec in slot `slot` of a cold or L0 page.
void drift_vec_put(Page page, uint32 dim, uint16 slot, ItemPointer tid, const float *vec);


// Marks n (at most DRIFT_MAX_COLD_PER_HOT) exclusively locked pages FREE,
// freed at xid (see DriftFreeData), four to a WAL record, unlocks and releases
// them, and records them in the free space map.
void drift_free_pages(Relation index, Buffer *bufs, int n, uint64 xid);

// Frees the pages of retired chain `chain` of page type `type` (a bucket's
// hot pages with their cold pages, L0 pages, or quantizer blob pages) from
// head on, marking them freed at xid; returns how many. The walk reads only
// pages of that chain, so releasing a chain a second time (after a crash
// between freeing its pages and dropping it from the retired list) frees
// nothing else. Cost: the chain's pages, not the index's.
uint32 drift_release_chain(Relation index, const DriftMetaPageData *meta, BlockNumber head, uint32 chain, uint16 type,
                           uint64 xid);
