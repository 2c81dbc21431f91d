// Maintenance of one index, shared by its three levels: the steps on L0
// (src/am/flush.cpp: flush, seeding, requantization), the steps on buckets
// (src/am/buckets.cpp: split, steal, merge, compaction, completing a move
// cut short), and the scheduler with the SQL function (src/am/maintain.cpp).
// The helpers here (src/am/maintain_util.cpp) read and write bucket entries
// and commit directory changes. docs/maintenance.md describes each step.
//
// Entries are only ever removed from a chain by writing a new chain without
// them and pointing the directory at it (one WAL record with the metapage,
// which bumps the generation and retires the old chain), never by editing a
// chain in place. A row being moved is first added where it goes, then
// dropped from where it was: a scan reading either sees it, a scan reading
// both returns it once (scans skip TIDs they returned), and a move cut
// short is completed by the next pass.
#pragma once

#include "drift.h"

#include "../core/maintenance.hpp"
#include "../storage/chains.h"

namespace maint {

// Entries read from a chain or from L0 (plain palloc'd arrays).
struct Entries {
    uint32 n, cap, dim;
    ItemPointerData *tids;
    float *vecs;
};

// State of one maintenance pass.
struct Maint {
    Relation index;
    DriftInfo *info; /* refreshed after every change that bumps the generation */
    uint32 dim;
    bool wal;
    drift::MaintenanceLimits lim;
    bool held;       /* old snapshots hold back more replaced chains than the list keeps */
    bool truncate;   /* may give free pages at the end back (not an insert's flush) */
    DriftMaintenance done;
};

// New contents of one directory entry.
struct EntryUpdate {
    const float *centroid;    /* NULL: unchanged */
    uint32 bucket;
    DriftDirEntryData fields; /* head .. moved; the centroid is the pointer above */
};

// Metapage changes made in the same record as directory changes.
struct MetaChange {
    uint32 retire[2];
    int nretire;
    int live_delta;
    uint32 splits, merges, compactions;
    uint64 stolen;
    bool drop_old_quant; /* no bucket uses the previous quantizer any more */
    bool moved;          /* the move the metapage names is done */
};

// Re-reads the index's metadata.
inline void refresh(Maint *m) { m->info = drift_info(m->index); }

// Appends one entry: its vector given, or slot `slot` of cold/L0 page `page`.
void entries_add(Entries *e, const ItemPointerData *tid, const float *vec);
void entries_add(Entries *e, const ItemPointerData *tid, Page page, uint16 slot);

// Appends the TIDs of hot page `page`'s live slots to (*tids)[*n..),
// growing the palloc'd array (*cap entries) as needed.
void hot_live_tids(Page page, ItemPointerData **tids, uint32 *n, uint32 *cap);

// Adds the table's rows tids[0..n) (any version some snapshot may see) to
// out, for an index that keeps no vectors; rows the table no longer holds
// (dead to every snapshot) are left out.
void entries_from_heap(Relation index, const DriftMetaPageData *meta, const ItemPointerData *tids, uint32 n,
                       Entries *out);

// Reads every live entry of bucket chain `chain` starting at head (from
// the table, for an index that keeps no vectors: rows it no longer holds
// are left out).
void read_chain(Relation index, const DriftMetaPageData *meta, BlockNumber head, uint32 chain, Entries *out);

// The live buckets other than `exclude` (ids and centroids); returns how many.
uint32 live_centroids(Maint *m, uint32 exclude, uint32 **ids, float **cents);

// Hands out count new chain ids, durably, before any page carries them.
uint32 alloc_chains(Maint *m, uint32 count);

// Writes entries idx[0..n) of e as a new chain for bucket b.
void write_chain(Maint *m, uint32 chain, uint32 b, const Entries *e, const uint32 *idx, uint32 n, const float *c,
                 ChainWriter *w);

// A bucket's radius over entries idx[0..n) of e around c.
float radius_of(const Entries *e, const uint32 *idx, uint32 n, const float *c);

// The transaction id a chain retired now carries.
uint64 retire_xid();

// Adds a chain to the retired list of the metapage being edited (or its overflow).
void retire_chain(DriftMetaPage mp, uint32 chain, BlockNumber head, uint16 type, uint64 xid);

// Applies up to two directory entry updates and the metapage change in one
// WAL record, bumping the generation.
void commit(Maint *m, const EntryUpdate *u, int nu, const MetaChange &c);

// The directory entry of bucket b (fields only).
DriftDirEntryData entry_of(Maint *m, uint32 b);

// Adds entries idx[0..n) of e to the chains of the buckets target[i] and
// folds them into the buckets' running means, temperatures and radii.
void append_to_buckets(Maint *m, const Entries *e, const uint32 *idx, const uint32 *target, uint32 n, bool count_heat);

// Nearest live bucket (other than exclude) of each entry idx[0..n) of e,
// into target, and with dist the squared L2 distance to its centroid.
void route(Maint *m, const Entries *e, const uint32 *idx, uint32 n, uint32 exclude, uint32 *target, float *dist = NULL);

// 0, 1, ..., n-1.
uint32 *iota(uint32 n);

// Entry fields for a bucket rewritten with n members around centroid c.
DriftDirEntryData rewritten(const DriftDirEntryData &old, const ChainWriter &w, uint32 n, float radius, float moved);

// A free directory slot for a new bucket: a merged bucket's, or the next one.
uint32 free_slot(Maint *m);

// Drops from e the rows some bucket (other than exclude) already holds.
void drop_placed(Maint *m, Entries *e, uint32 exclude = PG_UINT32_MAX);

// Names bucket b's coming move of rows in the metapage.
void begin_move(Maint *m, uint32 b, uint16 kind);

// Flush: moves every L0 row into the bucket of its nearest centroid
// (src/am/flush.cpp). With force, an empty L0 is closed too, so that L0
// goes on in a new page (shrinking moves L0 this way).
void flush(Maint *m, bool force = false);

// Bucket steps (src/am/buckets.cpp).
bool split(Maint *m, uint32 b);
void compact(Maint *m, uint32 b);
void merge(Maint *m, uint32 b);
void complete_move(Maint *m);

// Shrinking: moves the bucket chains, directory pages, quantizers and L0
// at the end of the index into free pages before it (src/am/shrink.cpp).
void shrink(Maint *m);

}  // namespace maint
