// Appending entries to bucket chains and to the L0 chain (generic WAL).
#pragma once

#include "pages.h"

// Where bucket b's directory entry lives.
struct DriftDirSlot {
    BlockNumber blkno;
    uint32 slot;
};

// Appends (tid, code, vec) to bucket `bucket` (directory entry at `dir`):
// into a free slot of the chain's tail page, or onto a new tail page.
void drift_bucket_append(Relation index, const DriftMetaPageData *meta, DriftDirSlot dir, uint32 bucket,
                         ItemPointer tid, const uint8 *code, const float *vec);

// Appends (tid, vec) to the L0 chain, creating or extending it as needed.
void drift_l0_append(Relation index, const DriftMetaPageData *meta, ItemPointer tid, const float *vec);

// Stores an entry in slot s of hot page `hot`, its vector in cold page
// `cold` (the page for that slot), keeping both pages' bounds.
void drift_hot_put(const DriftMetaPageData *meta, Page hot, Page cold, uint16 s, ItemPointer tid, const uint8 *code,
                   const float *vec);

// Stores tid and vec in slot `slot` of a cold or L0 page.
void drift_vec_put(Page page, uint32 dim, uint16 slot, ItemPointer tid, const float *vec);

// A free slot of a vector page with cap slots, or -1 if it is full.
int drift_vec_free_slot(Page page, uint32 dim, uint16 cap);
