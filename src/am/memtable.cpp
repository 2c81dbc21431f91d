// drift's shared memory (shared_preload_libraries only): the janitor's
// latch, and the memtable graphs. Each index gets an HNSW graph over its L0
// rows (drift.memtable_mem for all of them), which the janitor extends and
// scans search.
//
// A graph is a cache, never trusted beyond what it can prove:
// - It covers a prefix of one L0 chain, named by the metapage's (l0_head,
//   l0_chain) when the graph started. Chain ids are never reused, so a
//   flush (which closes L0 under a new chain id and moves its head) makes
//   every older graph stale at once, and a scan uses a graph only if both
//   still match. The janitor then starts a new graph for the new L0.
// - It records the first L0 position (page, slot) it does not hold yet; a
//   scan brute-forces L0 from there, so a fresh row is always found. L0
//   appends never reuse a slot, so positions only grow.
// - Each node remembers its row's L0 page and slot. A scan checks that the
//   slot still holds the node's TID before returning it, so rows VACUUM
//   removed (on the primary or by replay on a standby) are never returned,
//   and the graph needs no hook into VACUUM.
// Shared memory is rebuilt empty after a crash or restart, and a standby
// starts with none: the janitor (which on a standby only builds graphs)
// rebuilds each graph from the L0 pages.
//
// Locking: one LWLock guards the slot table and the arena's allocation,
// one per slot guards that slot's graph. Only the janitor writes graphs
// (one worker at a time); scans read them in shared mode.
#include "drift.h"

#include "../core/hnsw.hpp"
#include "../storage/buffers.h"

extern "C" {
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/timestamp.h"
}

#define MEMTABLE_SLOTS 64
#define MEMTABLE_M 16
#define MEMTABLE_EF_CONSTRUCTION 64
#define MEMTABLE_MIN_ROWS 1000 /* a smaller graph is not worth its memory */

// Where a node's row lives in L0.
struct MemRef {
    ItemPointerData tid;
    uint16 slot;
    BlockNumber blkno;
};

// One index's graph. relid = InvalidOid: the slot is free.
struct MemSlot {
    Oid db, relid, relfilenode;
    uint32 dim;
    uint16 metric;
    bool full;                /* the graph had no room for the next row */
    Size off, bytes;          /* region of the arena: the graph, then cap MemRefs */
    uint32 cap;
    BlockNumber head;         /* L0 head and chain id the graph covers; */
    uint32 head_chain;        /* head = InvalidBlockNumber: no graph yet */
    BlockNumber next_blkno;   /* first L0 position not in the graph */
    uint16 next_slot;
    TimestampTz grew;         /* when the graph last took rows (or started) */
};

// A database the janitor launcher knows, and whether it is due a visit.
struct JanitorDb {
    Oid db;
    bool due;                 /* rows arrived, or its last visit left work */
    TimestampTz visited;      /* when a worker last started a visit */
};
#define JANITOR_DBS 64

struct MemShared {
    Latch *janitor;  /* the janitor launcher's latch, while it runs */
    bool wake;       /* a wake-up the launcher has not served yet */
    JanitorDb dbs[JANITOR_DBS];
    Size arena;
    MemSlot slots[MEMTABLE_SLOTS];
};

static MemShared *mem;
static char *mem_arena;
static LWLockPadded *mem_locks; /* [0] the table, [1 + i] slot i */
static shmem_request_hook_type prev_request_hook;
static shmem_startup_hook_type prev_startup_hook;

static Size shared_bytes() { return MAXALIGN(sizeof(MemShared)) + Size(drift_memtable_mem) * 1024; }

// Asks the postmaster for the table, the arena, the monitor and the locks.
static void memtable_request() {
    if (prev_request_hook) prev_request_hook();
    RequestAddinShmemSpace(shared_bytes());
    RequestNamedLWLockTranche("drift memtable", 1 + MEMTABLE_SLOTS);
    RequestAddinShmemSpace(drift_monitor_shmem_size());
    RequestNamedLWLockTranche("drift monitor", 1);
}

// Attaches to (or, first, creates) the shared table and the monitor.
static void memtable_startup() {
    if (prev_startup_hook) prev_startup_hook();
    LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
    bool found;
    mem = (MemShared *) ShmemInitStruct("drift memtable", shared_bytes(), &found);
    if (!found) {
        memset(mem, 0, sizeof(MemShared));
        mem->arena = Size(drift_memtable_mem) * 1024;
    }
    mem_arena = (char *) mem + MAXALIGN(sizeof(MemShared));
    mem_locks = GetNamedLWLockTranche("drift memtable");
    drift_monitor_shmem_init();
    LWLockRelease(AddinShmemInitLock);
}

void drift_shmem_register() {
    prev_request_hook = shmem_request_hook;
    shmem_request_hook = memtable_request;
    prev_startup_hook = shmem_startup_hook;
    shmem_startup_hook = memtable_startup;
}

static LWLock *table_lock() { return &mem_locks[0].lock; }
static LWLock *slot_lock(int i) { return &mem_locks[1 + i].lock; }

// The slot of index in this database, or -1; the caller holds the table lock.
static int find_slot(Relation index) {
    for (int i = 0; i < MEMTABLE_SLOTS; i++)
        if (mem->slots[i].relid == RelationGetRelid(index) && mem->slots[i].db == MyDatabaseId) return i;
    return -1;
}

// True if slot s holds a graph of L0 as meta describes it now.
static bool slot_matches(const MemSlot *s, Relation index, const DriftMetaPageData *meta) {
    return s->relfilenode == index->rd_node.relNode && s->dim == meta->dim && s->metric == meta->metric &&
           s->head != InvalidBlockNumber && s->head == meta->l0_head && s->head_chain == meta->l0_chain;
}

static void *slot_graph(const MemSlot *s) { return mem_arena + s->off; }
static MemRef *slot_refs(const MemSlot *s) {
    return (MemRef *) (mem_arena + s->off + MAXALIGN(drift::hnsw_bytes(s->dim, s->cap, MEMTABLE_M)));
}
static uint32 graph_rows(const MemSlot *s) { return ((const drift::HnswHeader *) slot_graph(s))->n; }
static Size region_bytes(uint32 dim, uint32 cap) {
    return MAXALIGN(drift::hnsw_bytes(dim, cap, MEMTABLE_M)) + MAXALIGN(sizeof(MemRef) * cap);
}

// Offset of a free gap of the arena of at least `bytes`, or -1; slot
// `except` counts as free. Caller holds the table lock exclusively.
static ssize_t find_gap(Size bytes, int except) {
    Size at = 0;
    for (;;) {
        Size next_end = 0;
        bool clash = false;
        for (int i = 0; i < MEMTABLE_SLOTS; i++) {
            const MemSlot *s = &mem->slots[i];
            if (i == except || s->relid == InvalidOid) continue;
            if (s->off < at + bytes && at < s->off + s->bytes) {
                clash = true;
                next_end = Max(next_end, s->off + s->bytes);
            }
        }
        if (!clash) return at + bytes <= mem->arena ? ssize_t(at) : -1;
        at = next_end;
        if (at + bytes > mem->arena) return -1;
    }
}

// The slot of index, given a region for a graph of its dimension; -1 if the
// table or the arena has no room. Takes the table lock.
static int claim_slot(Relation index, const DriftMetaPageData *meta) {
    LWLockAcquire(table_lock(), LW_EXCLUSIVE);
    int i = find_slot(index);
    if (i >= 0 && mem->slots[i].dim == meta->dim) {
        LWLockRelease(table_lock());
        return i;
    }
    if (i < 0)
        for (int j = 0; j < MEMTABLE_SLOTS && i < 0; j++)
            if (mem->slots[j].relid == InvalidOid) i = j;
    if (i < 0) {
        LWLockRelease(table_lock());
        return -1;
    }
    // As many rows as L0 may hold, or as fit.
    uint32 want = uint32(Min(int64(Max(drift_l0_max_rows, drift_l0_flush_rows)) * 5 / 4 + meta->cold_cap, int64(INT32_MAX)));
    uint32 cap = want;
    ssize_t off = -1;
    for (; cap >= MEMTABLE_MIN_ROWS; cap = cap * 3 / 4)
        if ((off = find_gap(region_bytes(meta->dim, cap), i)) >= 0) break;
    if (off < 0) {
        LWLockRelease(table_lock());
        return -1;
    }
    // A reader of the old region (another dimension) holds the slot lock.
    LWLockAcquire(slot_lock(i), LW_EXCLUSIVE);
    MemSlot *s = &mem->slots[i];
    memset(s, 0, sizeof(*s));
    s->db = MyDatabaseId;
    s->relid = RelationGetRelid(index);
    s->dim = meta->dim;
    s->cap = cap;
    s->off = Size(off);
    s->bytes = region_bytes(meta->dim, cap);
    s->head = InvalidBlockNumber;
    LWLockRelease(slot_lock(i));
    LWLockRelease(table_lock());
    return i;
}

// Starts an empty graph of slot s over L0 as meta describes it.
static void reset_graph(MemSlot *s, Relation index, const DriftMetaPageData *meta) {
    s->relfilenode = index->rd_node.relNode;
    s->metric = meta->metric;
    s->full = false;
    s->head = meta->l0_head;
    s->head_chain = meta->l0_chain;
    s->next_blkno = meta->l0_head;
    s->next_slot = 0;
    s->grew = GetCurrentTimestamp();
    drift::hnsw_init(slot_graph(s), s->dim, s->cap, MEMTABLE_M, drift::Metric(meta->metric), s->relid ^ meta->l0_chain);
}

// L0 rows read from one page for the graph.
struct PageRows {
    uint32 n;
    MemRef *refs; /* cold_cap of each */
    float *vecs;
    uint16 nslots;
    BlockNumber next;
};

// Reads the live rows of L0 page blkno from slot `from` on.
static void read_page_rows(Relation index, const DriftMetaPageData *meta, BlockNumber blkno, uint16 from, PageRows *out) {
    Buffer buf = drift_read_locked(index, blkno, BUFFER_LOCK_SHARE, DRIFT_PAGE_L0, meta);
    Page page = BufferGetPage(buf);
    out->n = 0;
    out->nslots = drift_vec_header(page)->nslots;
    out->next = DriftPageGetOpaque(page)->next;
    for (uint16 s = from; s < out->nslots; s++) {
        DriftVecEntry e = drift_vec_entry(page, meta->dim, s);
        if (!ItemPointerIsValid(&e->tid)) continue;
        out->refs[out->n] = MemRef{e->tid, s, blkno};
        drift_vec_copy(page, meta->dim, s, out->vecs + Size(out->n) * meta->dim);
        out->n++;
    }
    UnlockReleaseBuffer(buf);
}

void drift_memtable_extend(Relation index, TimestampTz deadline) {
    if (!drift_memtable_enabled()) return;
    DriftMetaPageData meta = drift_info(index)->meta;
    if (meta.dim == 0 || meta.l0_head == InvalidBlockNumber) return;
    int i = claim_slot(index, &meta);
    if (i < 0) return;
    MemSlot *s = &mem->slots[i];
    LWLockAcquire(slot_lock(i), LW_EXCLUSIVE);
    if (!slot_matches(s, index, &meta)) reset_graph(s, index, &meta);
    LWLockRelease(slot_lock(i));

    PageRows *rows = (PageRows *) palloc(sizeof(PageRows));
    rows->refs = (MemRef *) palloc(sizeof(MemRef) * meta.cold_cap);
    rows->vecs = (float *) palloc(sizeof(float) * meta.dim * meta.cold_cap);
    // Only this worker moves the position, so it is read without the lock.
    while (!s->full && s->next_blkno != InvalidBlockNumber && GetCurrentTimestamp() < deadline) {
        CHECK_FOR_INTERRUPTS();
        // L0 due for a flush: the graph would be dropped with it.
        if (drift_l0_flush_rows > 0 && drift_l0_due(&drift_info(index)->meta)) break;
        BlockNumber blkno = s->next_blkno;
        read_page_rows(index, &meta, blkno, s->next_slot, rows);
        if (rows->n == 0 && rows->next == InvalidBlockNumber && rows->nslots == s->next_slot) break;  // caught up
        LWLockAcquire(slot_lock(i), LW_EXCLUSIVE);
        uint32 added = 0;
        for (; added < rows->n; added++) {
            uint32 id = graph_rows(s);
            if (!drift::hnsw_add(slot_graph(s), rows->vecs + Size(added) * meta.dim, MEMTABLE_EF_CONSTRUCTION)) break;
            slot_refs(s)[id] = rows->refs[added];
        }
        if (added > 0) s->grew = GetCurrentTimestamp();
        if (added < rows->n) {
            s->full = true;
            s->next_slot = rows->refs[added].slot;
        } else if (rows->next != InvalidBlockNumber) {
            s->next_blkno = rows->next;
            s->next_slot = 0;
        } else {
            s->next_slot = rows->nslots;
        }
        LWLockRelease(slot_lock(i));
    }
    pfree(rows->refs);
    pfree(rows->vecs);
    pfree(rows);
}

bool drift_memtable_enabled() { return mem != NULL && mem->arena > 0; }

void drift_janitor_set_latch(Latch *latch) {
    if (mem != NULL) mem->janitor = latch;
}

void drift_janitor_wake() {
    if (mem == NULL) return;
    drift_janitor_mark(MyDatabaseId, true);
    mem->wake = true;  // kept even if the latch is reset while the launcher waits for a worker
    Latch *latch = mem->janitor;
    if (latch != NULL) SetLatch(latch);
}

bool drift_janitor_running() { return mem != NULL && mem->janitor != NULL && drift_janitor_enabled; }

bool drift_janitor_take_wake() {
    if (mem == NULL || !mem->wake) return false;
    mem->wake = false;
    return true;
}

// The entry of database db, or NULL. (Entries change only in the launcher;
// the flags are single bytes, read and written without a lock: a stale read
// costs at most one visit or one round of delay.)
static JanitorDb *janitor_db(Oid db) {
    for (int i = 0; i < JANITOR_DBS; i++)
        if (mem->dbs[i].db == db) return &mem->dbs[i];
    return NULL;
}

void drift_janitor_mark(Oid db, bool due) {
    static JanitorDb *last;  // this backend's database's entry, looked up once
    if (mem == NULL) return;
    if (last == NULL || last->db != db) last = janitor_db(db);
    if (last != NULL && last->due != due) last->due = due;
}

bool drift_janitor_due(Oid db, int every_ms) {
    if (mem == NULL) return true;
    JanitorDb *d = janitor_db(db);
    if (d == NULL) {
        for (int i = 0; i < JANITOR_DBS && d == NULL; i++)
            if (mem->dbs[i].db == InvalidOid) d = &mem->dbs[i];
        if (d == NULL) return true;  // more databases than entries: always visited
        d->db = db;
        d->due = true;  // unknown yet
    }
    TimestampTz now = GetCurrentTimestamp();
    if (!d->due && !TimestampDifferenceExceeds(d->visited, now, every_ms)) return false;
    d->visited = now;
    return true;
}

// Frees slot i; the caller holds the table lock exclusively.
static void free_slot(int i) {
    LWLockAcquire(slot_lock(i), LW_EXCLUSIVE);
    memset(&mem->slots[i], 0, sizeof(MemSlot));
    LWLockRelease(slot_lock(i));
}

void drift_memtable_forget(Oid db, const Oid *keep, int n) {
    if (mem != NULL && !OidIsValid(db))
        for (int i = 0; i < JANITOR_DBS; i++) {  // and the launcher's entries of dropped databases
            bool kept = false;
            for (int j = 0; j < n && !kept; j++) kept = mem->dbs[i].db == keep[j];
            if (!kept) memset(&mem->dbs[i], 0, sizeof(JanitorDb));
        }
    if (mem == NULL) return;
    LWLockAcquire(table_lock(), LW_EXCLUSIVE);
    for (int i = 0; i < MEMTABLE_SLOTS; i++) {
        const MemSlot *s = &mem->slots[i];
        if (s->relid == InvalidOid || (OidIsValid(db) && s->db != db)) continue;
        Oid key = OidIsValid(db) ? s->relid : s->db;  // what keep[] lists
        bool kept = false;
        for (int j = 0; j < n && !kept; j++) kept = keep[j] == key;
        if (!kept) free_slot(i);
    }
    LWLockRelease(table_lock());
}

// Runs fn(slot) under the shared lock of index's graph if it covers L0 as
// meta describes it; false (fn not run) otherwise.
template <class F>
static bool with_graph(Relation index, const DriftMetaPageData *meta, F fn) {
    if (!drift_memtable_enabled() || meta->l0_head == InvalidBlockNumber) return false;
    LWLockAcquire(table_lock(), LW_SHARED);
    int i = find_slot(index);
    if (i >= 0) LWLockAcquire(slot_lock(i), LW_SHARED);
    LWLockRelease(table_lock());
    if (i < 0) return false;
    const MemSlot *s = &mem->slots[i];
    bool ok = slot_matches(s, index, meta);
    if (ok) fn(s);
    LWLockRelease(slot_lock(i));
    return ok;
}

bool drift_memtable_full(Relation index, const DriftMetaPageData *meta) {
    bool full = false;
    with_graph(index, meta, [&](const MemSlot *s) { full = s->full; });
    return full;
}

bool drift_memtable_idle(Relation index, const DriftMetaPageData *meta, int idle_ms) {
    bool idle = false;
    with_graph(index, meta, [&](const MemSlot *s) {
        idle = graph_rows(s) > 0 && TimestampDifferenceExceeds(s->grew, GetCurrentTimestamp(), idle_ms);
    });
    return idle;
}

uint64 drift_memtable_rows(Relation index, const DriftMetaPageData *meta) {
    uint64 n = 0;
    with_graph(index, meta, [&](const MemSlot *s) { n = graph_rows(s); });
    return n;
}

bool drift_memtable_search(Relation index, const DriftMetaPageData *meta, const float *q, uint32 ef, DriftL0Hit *hits,
                           uint32 *nhits, BlockNumber *from_blkno, uint16 *from_slot) {
    drift::Candidate *found = (drift::Candidate *) palloc(sizeof(drift::Candidate) * ef);
    bool ok = with_graph(index, meta, [&](const MemSlot *s) {
        *nhits = uint32(drift::hnsw_search(slot_graph(s), q, ef, ef, found));
        const MemRef *refs = slot_refs(s);
        for (uint32 k = 0; k < *nhits; k++) {
            const MemRef &r = refs[found[k].id];
            hits[k] = DriftL0Hit{found[k].dist, r.tid, r.blkno, r.slot};
        }
        *from_blkno = s->next_blkno;
        *from_slot = s->next_slot;
    });
    pfree(found);
    return ok;
}
