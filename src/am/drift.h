// Declarations shared by the access-method layer (everything Postgres calls).
#pragma once

#include "../core/codes.hpp"
#include "../storage/pages.h"

extern "C" {
#include "access/amapi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/latch.h"
#include "utils/array.h"
#include "utils/snapshot.h"
#include "utils/timestamp.h"
}

// GUCs.
extern int drift_probes;
extern int drift_rerank;
extern bool drift_strict_order;
extern int drift_max_probes;
extern int drift_l0_max_rows;
extern double drift_compact_dead_ratio;
extern int drift_steal_neighbours;
extern int drift_janitor_naptime;
extern bool drift_janitor_enabled;
extern int drift_memtable_mem;
extern int drift_ef_search;
extern int drift_l0_flush_rows;
extern int drift_l0_idle_flush;
extern double drift_lambda;
extern double drift_tau;
extern double drift_target_recall;
extern int drift_target_k;
extern int drift_max_scan_tuples;
extern double drift_scan_mem_multiplier;
extern double drift_recall_sample_rate;
extern int drift_recall_sample_budget;

// Registers the janitor's launcher (shared_preload_libraries only).
void drift_janitor_register();

// drift's shared memory (src/am/memtable.cpp): the janitor's latch, the
// memtable graphs, and the monitor's (src/am/monitor.cpp). Registers it
// (shared_preload_libraries only).
void drift_shmem_register();

// The janitor launcher's latch (NULL when it exits), and a wake-up call an
// inserting backend makes when L0 is due for a flush.
void drift_janitor_set_latch(Latch *latch);
void drift_janitor_wake();

// True (once) if a wake-up arrived since the last call: the launcher starts
// a round at once instead of sleeping.
bool drift_janitor_take_wake();

// Marks database db due a janitor visit (rows arrived, or work is left) or
// not (its last visit left nothing to do).
void drift_janitor_mark(Oid db, bool due);

// True if the launcher should visit database db now: it is due, new to the
// launcher, or was last visited every_ms ago; records the visit.
bool drift_janitor_due(Oid db, int every_ms);

// True if the janitor maintains this server's indexes (preloaded, on, and
// its launcher running).
bool drift_janitor_running();

// True if this server has memtable graphs.
bool drift_memtable_enabled();

// Extends index's graph with the L0 rows it lacks, starting a new graph if
// L0 was flushed since, until it covers L0, is full, or deadline passes.
// Only the janitor calls it; the caller holds a snapshot, which keeps the
// L0 pages it reads from being released.
void drift_memtable_extend(Relation index, TimestampTz deadline);

// True if index's graph of L0 as meta describes it ran out of room (L0
// should be flushed).
bool drift_memtable_full(Relation index, const DriftMetaPageData *meta);

// Frees graphs: of database db, those of indexes not in keep[0..n); with db
// invalid, those of databases not in keep[0..n).
void drift_memtable_forget(Oid db, const Oid *keep, int n);

// True if index's graph covers L0 as meta describes it, holds rows, and
// took none for idle_ms: no rows are arriving, so L0 may as well be flushed.
bool drift_memtable_idle(Relation index, const DriftMetaPageData *meta, int idle_ms);

// L0 rows in index's graph (0 if it has none covering L0 as meta describes it).
uint64 drift_memtable_rows(Relation index, const DriftMetaPageData *meta);

// An L0 row the graph found: its exact distance, TID and L0 position.
struct DriftL0Hit {
    float dist;
    ItemPointerData tid;
    BlockNumber blkno;
    uint16 slot;
};

// If index's graph covers L0 as meta describes it, writes its up to ef rows
// nearest to q into hits (ascending; not yet checked against L0), sets the
// first L0 position the graph does not hold, and returns true.
bool drift_memtable_search(Relation index, const DriftMetaPageData *meta, const float *q, uint32 ef, DriftL0Hit *hits,
                           uint32 *nhits, BlockNumber *from_blkno, uint16 *from_slot);

// What a drift scan does: the GUCs at its start, or settings given by a
// re-check of its recall (drift_evaluate_recall, the janitor's samples).
struct DriftScanSettings {
    int probes, max_probes, rerank, ef_search;
    float lambda, tau;
    double target_recall;
    int target_k;
    int max_scan_tuples; /* -1: no limit */
    double mem_limit;    /* bytes */
    bool exact;          /* every bucket and every L0 row, no limit: the exact order */
};

// The settings the GUCs give now.
DriftScanSettings drift_scan_settings();

// What a scan did: buckets probed of those live, candidates read, and the
// recall it estimated for its first target_k rows (-1 without a target).
struct DriftScanReport {
    uint32 probed, buckets;
    uint64 candidates;
    double estimated_recall;
};

// Runs a scan of index (on heap) for query (dim floats, the index's
// dimension, else an ERROR; unit length for cosine) under settings s, under
// the active snapshot, and writes
// its first up to k TIDs and their distances into tids and dists and what
// it did into *report; returns how many rows it wrote.
uint32 drift_scan_top(Relation heap, Relation index, const float *query, uint32 dim, uint32 k,
                      const DriftScanSettings *s, ItemPointerData *tids, float *dists, DriftScanReport *report);

// drift's view of scans in shared memory (src/am/monitor.cpp; with
// shared_preload_libraries only, else these do nothing): recent hits per
// bucket, and the recall the janitor measured on sampled scans.

// The monitor's shared memory: its size, and attaching to (or, first,
// creating) it; drift_shmem_register's hooks call them.
Size drift_monitor_shmem_size();
void drift_monitor_shmem_init();

// Counts a hit for each of buckets[0..n) of index (where a scan's first rows came from).
void drift_monitor_add_hits(Relation index, const uint32 *buckets, uint32 n);

// Writes each of index's buckets' share of its recent hits (its hits over
// the most any bucket has) into share[0..nbuckets); false if none are kept.
bool drift_monitor_hit_shares(Relation index, uint32 nbuckets, float *share);

// True for the share drift.recall_sample_rate of calls, when the monitor
// runs: this scan is a sample.
bool drift_monitor_draw();

// Keeps the query of a scan starting now, with its settings, for the
// janitor to re-check, if drift.recall_sample_budget allows rows (about
// what the index holds: a re-check's cost) and a slot is free.
void drift_monitor_sample(Relation index, const float *query, uint32 dim, const DriftScanSettings *s, uint64 rows);

// A sampled scan waiting for the janitor: its index, query and settings.
struct DriftRecallSample;

// Takes a sample of this database off the queue (a palloc'd copy); NULL if none.
DriftRecallSample *drift_monitor_take_sample();

// Re-checks sample s under the active snapshot: the recall of its scan
// against the exact answer, folded into its index's moving mean. An index
// dropped or changed since (another dimension) is skipped.
void drift_monitor_check_sample(const DriftRecallSample *s);

// Recall of index's scans the janitor measured (a moving mean over recent
// samples) and how many samples it has checked; false if none.
bool drift_monitor_recall(Relation index, double *recall, uint64 *samples);

// Reloptions of a drift index.
struct DriftOptions {
    int32 vl_len_; /* varlena header (do not touch directly!) */
    int lists;     /* 0 = chosen from the row count at build */
    double clip_percentile;
    int max_bucket_size; /* 0 = 3x the mean bucket size at training */
    int precision;       /* DRIFT_PRECISION_*: how full vectors and centroids are stored */
    int codes;           /* DRIFT_CODES_*: what buckets keep for the first pass */
    int rerank;          /* DriftRerank: where exact distances come from */
    int segment;         /* offset of the segment file's path to start from, or 0 */
};
#define DRIFT_PRECISION_DEFAULT 0 /* the operator class's kind */
#define DRIFT_PRECISION_SINGLE 1
#define DRIFT_PRECISION_HALF 2

// Build phases reported to pg_stat_progress_create_index.
#define DRIFT_PHASE_SAMPLE 2
#define DRIFT_PHASE_TRAIN 3
#define DRIFT_PHASE_ASSIGN 4
#define DRIFT_PHASE_WRITE 5

// What an index's scans and inserts need from its metapage, quantizer and
// directory; cached in rd_amcache and reloaded when the generation changes.
struct DriftInfo {
    DriftMetaPageData meta;
    drift::Metric metric;
    float *quant;            /* current quantizer: two arrays of dim floats (drift::Quantizer) */
    float *old_quant;        /* previous quantizer (meta.old_quant_head), or NULL */
    BlockNumber *dir_blocks; /* directory pages in chain order */
    uint32 ndir;
    float *centroids;        /* nbuckets x dim */
    BlockNumber *heads;      /* first hot page of each bucket; InvalidBlockNumber for a free slot */
    uint32 *chains;          /* chain id of each bucket; 0 for a free slot */
    uint32 *quants;          /* quantizer version of each bucket's codes */
    uint32 *nlive;           /* each bucket's members, temperature and radius */
    float *temperature;      /* (as of the last change of generation) */
    float *radius;
};

// True if bucket b's codes were made with the previous quantizer.
inline bool drift_bucket_old_quant(const DriftInfo *info, uint32 b) {
    return info->old_quant != NULL && info->quants[b] == info->meta.old_quant_chain;
}

// The index's current quantizer, or with old its previous one (for RaBitQ
// codes, only its kind: each chain has its own centre).
inline drift::Quantizer drift_quantizer(const DriftInfo *info, bool old) {
    const float *q = old ? info->old_quant : info->quant;
    return drift::Quantizer{drift::CodeKind(info->meta.code_kind), info->meta.dim, q, q + info->meta.dim};
}

// A RaBitQ chain's rotated centre, in halves for its first page and as
// floats for its codes (palloc'd; NULL for SQ8 codes).
struct DriftCentre {
    uint16 *halves;
    float *rc;
};

// The quantizer that codes a new chain whose centroid is c: base itself
// for SQ8, else one on the chain's centre (filled into *centre).
drift::Quantizer drift_chain_quantizer(drift::Quantizer base, const float *c, DriftCentre *centre);

// Frees what drift_chain_quantizer allocated in *centre.
inline void drift_free_centre(DriftCentre *centre) {
    if (centre->halves) pfree(centre->halves);
    if (centre->rc) pfree(centre->rc);
}

// The quantizer bucket b's existing chain was coded with (for RaBitQ codes,
// its centre, read from its first page into palloc'd memory at q.a).
drift::Quantizer drift_bucket_quantizer(Relation index, const DriftInfo *info, uint32 b);

// The index's current metadata (valid until the next call on this index).
DriftInfo *drift_info(Relation index);

// About how many rows an index holds: its buckets' members and L0's pages
// counted full.
uint64 drift_info_rows(const DriftInfo *info);

// Who may call a SQL function on an index: maintenance needs ownership of
// the table (as VACUUM does); inspection ownership or pg_stat_scan_tables;
// querying SELECT on the table.
enum DriftAccess { DRIFT_ACCESS_INSPECT, DRIFT_ACCESS_MAINTAIN, DRIFT_ACCESS_QUERY };

// Opens relid in lockmode after checking, before the lock is taken, that it
// is a drift index and that the user may access it as `access` says.
Relation drift_open_index(Oid relid, LOCKMODE lockmode, DriftAccess access);

// What an operator class tells drift, through its support function 2
// (DRIFT_SUPPORT_OPCLASS): the column type it reads, its metric, the vector
// kind its indexes store unless the precision option says otherwise, and
// how to read a datum (a palloc'd copy of its floats; a clear ERROR for bad
// input). Each class has its own; support function 1 is its distance
// function, for the catalog's sake.
struct DriftOpclass {
    const char *type;
    drift::Metric metric;
    uint16 kind;
    float *(*read)(Datum value, int *dim);
};
#define DRIFT_SUPPORT_DISTANCE 1
#define DRIFT_SUPPORT_OPCLASS 2

// The descriptor a support function 2 returns.
const DriftOpclass *drift_opclass_of(FmgrInfo *support);

// Why descriptor oc cannot serve an operator class for type `type`, or NULL.
const char *drift_opclass_type_problem(const DriftOpclass *oc, Oid type);

// The descriptor of index's operator class (an ERROR with a hint if the
// class predates support function 2). The build checks that it reads the
// column's type.
const DriftOpclass *drift_index_opclass(Relation index);

// The metric of an index, from its operator class.
inline drift::Metric drift_index_metric(Relation index) { return drift_index_opclass(index)->metric; }

// Where bucket b's directory entry is.
struct DriftDirSlot drift_dir_slot(const DriftInfo *info, uint32 bucket);

// A sort of rows whose first two columns are a bucket (int4) and an int8
// that orders rows within it, in maintenance_work_mem (the build's and an
// export's way to group rows by bucket).
struct Tuplesortstate *drift_bucket_sort(TupleDesc desc);

// The name of a metric ("l2", "inner_product", "cosine").
const char *drift_metric_name(drift::Metric m);

// What an index started from a segment file takes from it (palloc'd).
struct DriftSegmentCentroids {
    uint32 dim, buckets;
    drift::Metric metric;
    uint16 code_kind;
    uint64 rows;
    float *quantizer; /* 2 x dim */
    float *centroids; /* buckets x dim */
};

// Reads the centroids and quantizer of the segment file at path (with the
// checks and permissions of the segment functions) into *out.
void drift_segment_load(const char *path, DriftSegmentCentroids *out);

// Reads a column value or query for index `index` through its operator
// class into dim palloc'd floats (unit length for cosine), checked against
// expected_dim (0: any, up to what vector kind `kind` allows); with
// `stored`, every element must also fit kind's precision. Raises a clear
// ERROR for bad input. Sets *dim to the vector's dimension.
float *drift_index_vector(Relation index, Datum value, uint32 expected_dim, drift::Metric metric, uint16 kind,
                          bool stored, uint32 *dim);

// Reads the indexed column of table rows by TID, as the index's vectors
// (unit length for cosine): for a scan's re-rank under its snapshot, or for
// maintenance, every version some snapshot may still see (a row dead to
// all reads as none). The caller holds a lock on the table. Plain data.
struct DriftHeapReader {
    Relation index, heap;
    Snapshot snapshot;
    SnapshotData nonvacuumable; /* maintenance's snapshot, */
    Snapshot registered;        /* and the MVCC one registered meanwhile */
    struct IndexFetchTableData *fetch;
    struct TupleTableSlot *slot;
    AttrNumber attno;
    BlockNumber nblocks;
    MemoryContext tmp;
    uint32 dim;
    uint16 kind;
    drift::Metric metric;
};

// Starts reading the rows of index's table (heap) under snapshot (NULL:
// maintenance's view, above); meta is the index's.
void drift_heap_reader_begin(DriftHeapReader *r, Relation index, Relation heap, Snapshot snapshot,
                             const DriftMetaPageData *meta);

// Row tid's vector (valid until the next call), or NULL if the snapshot
// sees no version of it (deleted, not yet committed, pruned away).
const float *drift_heap_vector(DriftHeapReader *r, ItemPointer tid);

// Ends the reads: releases the pins and memory they held.
void drift_heap_reader_end(DriftHeapReader *r);

// Checks a real[] and returns its floats (inside the array) and dimension.
const float *drift_array_floats(ArrayType *a, int *dim);

// Fixes the dimension of an index built on no rows, on its first insert.
void drift_set_dimension(Relation index, uint32 dim);

// What one maintenance pass did.
struct DriftMaintenance {
    uint64 flushed;   /* L0 rows moved into buckets */
    uint32 splits, merges, compactions;
    uint32 seeded;    /* buckets started for flushed rows no bucket reached */
    uint64 stolen;    /* rows moved to a new bucket from a neighbour */
    uint32 released;  /* retired chains whose pages were freed */
    uint64 freed;     /* their pages */
    uint32 truncated; /* free pages at the end of the index given back */
    bool requantized; /* rows far outside the quantizer's range made it fit a new one */
    bool more;        /* stopped after its budget of steps with work left */
};

// How much a maintenance pass does.
enum DriftMaintainMode {
    DRIFT_MAINTAIN_FLUSH, /* flush L0 only (an insert past drift.l0_max_rows) */
    DRIFT_MAINTAIN_ALL,   /* flush, then every bucket that needs work */
    DRIFT_MAINTAIN_KEEP_L0, /* every bucket that needs work; L0 stays (the janitor, while a graph holds it) */
    DRIFT_MAINTAIN_SHRINK,  /* move what lies at the end of the index before it (VACUUM; reads every page) */
};

// One maintenance pass over an index whose maintenance lock the caller
// holds (drift_lock_maintenance), or with steps > 0 a slice of one: it
// stops after that many bucket steps (d.more then says work is left). A
// caller that runs each slice in a transaction of its own lets every slice
// release the chains the earlier ones retired.
DriftMaintenance drift_maintain_index(Relation index, DriftMaintainMode mode, uint32 steps = 0);

// Takes the index's maintenance lock (ShareUpdateExclusiveLock: one
// maintainer or VACUUM at a time; inserts and scans go on). Without wait,
// returns false instead of waiting.
bool drift_lock_maintenance(Relation index, bool wait);

// Rows an L0 of `pages` pages holds back from the buckets, each page
// counted full (the metapage counts L0 pages appended since the last flush).
uint64 drift_l0_estimate(const DriftMetaPageData *meta, uint32 pages);

// True if L0 holds drift.l0_flush_rows rows: due for the janitor's flush.
inline bool drift_l0_due(const DriftMetaPageData *meta) {
    return drift_l0_estimate(meta, meta->l0_pages) >= uint64(drift_l0_flush_rows);
}

// Physical pass over every page: frees pages of chains that are neither
// live nor retired, and with cb, clears entries whose TID cb says are dead
// and records live counts in the directory. Caller holds the maintenance lock.
void drift_sweep(Relation index, BufferAccessStrategy strategy, IndexBulkDeleteCallback cb, void *cbstate,
                 IndexBulkDeleteResult *stats);

// Runs fn, the body of a function PostgreSQL calls, and returns its result:
// a C++ exception becomes an ERROR raised after the handler has finished, so
// no exception is in flight when PostgreSQL longjmps. drift::Cancelled (core
// saw drift_interrupt true) becomes the pending cancel or termination with
// its own SQLSTATE, std::bad_alloc "out of memory"; anything else is a bug
// (XX000). fn may call PostgreSQL (an ERROR longjmps through the try block,
// which is safe) as long as its frames hold no object with a destructor.
template <class F>
inline auto drift_guard(const char *what, F &&fn) -> decltype(fn()) {
    char msg[256];
    int kind = 0; /* 1 cancelled, 2 out of memory, 3 other */
    try {
        return fn();
    } catch (const drift::Cancelled &) {
        kind = 1;
    } catch (const std::bad_alloc &) {
        kind = 2;
    } catch (const std::exception &e) {
        kind = 3;
        snprintf(msg, sizeof(msg), "%s", e.what());
    } catch (...) {
        kind = 3;
        snprintf(msg, sizeof(msg), "unknown exception");
    }
    if (kind == 1) {
        CHECK_FOR_INTERRUPTS();  // raises the pending cancel or termination
        ereport(ERROR, (errcode(ERRCODE_QUERY_CANCELED), errmsg("canceling statement due to user request")));
    }
    if (kind == 2)
        ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory"),
                        errdetail("drift: %s could not allocate memory.", what)));
    ereport(ERROR, (errcode(ERRCODE_INTERNAL_ERROR), errmsg("drift: %s failed: %s", what, msg)));
    pg_unreachable();
}

// An interrupt predicate for core computations: a cancel or termination is pending.
drift::Interrupt drift_interrupt();

// Access-method callbacks.
IndexBuildResult *drift_ambuild(Relation heap, Relation index, IndexInfo *indexInfo);
void drift_ambuildempty(Relation index);
bool drift_aminsert(Relation index, Datum *values, bool *isnull, ItemPointer heap_tid, Relation heap,
                    IndexUniqueCheck checkUnique, bool indexUnchanged, IndexInfo *indexInfo);
IndexBulkDeleteResult *drift_ambulkdelete(IndexVacuumInfo *info, IndexBulkDeleteResult *stats,
                                          IndexBulkDeleteCallback callback, void *callback_state);
IndexBulkDeleteResult *drift_amvacuumcleanup(IndexVacuumInfo *info, IndexBulkDeleteResult *stats);
IndexScanDesc drift_ambeginscan(Relation index, int nkeys, int norderbys);
void drift_amrescan(IndexScanDesc scan, ScanKey keys, int nkeys, ScanKey orderbys, int norderbys);
bool drift_amgettuple(IndexScanDesc scan, ScanDirection dir);
void drift_amendscan(IndexScanDesc scan);
