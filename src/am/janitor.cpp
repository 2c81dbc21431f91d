// The janitor: with shared_preload_libraries = 'drift', a launcher
// background worker wakes every drift.janitor_naptime (or when an insert
// finds L0 due for a flush) and starts one worker
// per database in turn; each worker runs a maintenance pass over every
// drift index of its database, extends its memtable graph, and exits. An
// index whose maintenance lock is taken (VACUUM, drift_maintain, an
// inserting backend's flush) gets no maintenance until the next round. On a
// hot standby the janitor only builds graphs: maintenance comes by replay.
#include "drift.h"

extern "C" {
#include "access/genam.h"
#include "catalog/index.h"
#include "access/heapam.h"
#include "access/xlog.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_class.h"
#include "catalog/pg_database.h"
#include "commands/defrem.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lmgr.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

PGDLLEXPORT void drift_janitor_launcher_main(Datum);
PGDLLEXPORT void drift_janitor_worker_main(Datum);
}

// A database with no drift work is still visited this often.
#define JANITOR_REVISIT_MS 60000
// Time the janitor spends on one index per round before it goes on.
#define JANITOR_VISIT_MS 10000

// Fills the fields the launcher and its workers share.
static void janitor_worker(BackgroundWorker *w, const char *fn, const char *name) {
    memset(w, 0, sizeof(*w));
    w->bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
    w->bgw_start_time = BgWorkerStart_ConsistentState;
    snprintf(w->bgw_library_name, BGW_MAXLEN, "drift");
    snprintf(w->bgw_function_name, BGW_MAXLEN, "%s", fn);
    snprintf(w->bgw_name, BGW_MAXLEN, "%s", name);
    snprintf(w->bgw_type, BGW_MAXLEN, "drift janitor");
}

void drift_janitor_register() {
    BackgroundWorker w;
    janitor_worker(&w, "drift_janitor_launcher_main", "drift janitor launcher");
    w.bgw_restart_time = 10;
    RegisterBackgroundWorker(&w);
}

// The OIDs of the rows of catalog relid that keep(row, arg) accepts, in
// ctx; the caller is in a transaction.
static Oid *catalog_oids(Oid relid, bool (*keep)(HeapTuple, Oid, Oid *), Oid arg, MemoryContext ctx, int *n) {
    *n = 0;
    int cap = 16;
    Oid *oids = (Oid *) MemoryContextAlloc(ctx, sizeof(Oid) * cap);
    Relation rel = table_open(relid, AccessShareLock);
    TableScanDesc scan = table_beginscan_catalog(rel, 0, NULL);
    HeapTuple tup;
    Oid oid;
    while ((tup = heap_getnext(scan, ForwardScanDirection)) != NULL) {
        if (!keep(tup, arg, &oid)) continue;
        if (*n == cap) {
            cap *= 2;
            oids = (Oid *) repalloc(oids, sizeof(Oid) * cap);
        }
        oids[(*n)++] = oid;
    }
    table_endscan(scan);
    table_close(rel, AccessShareLock);
    return oids;
}

// A database that accepts connections and is not a template.
static bool usable_database(HeapTuple tup, Oid, Oid *oid) {
    Form_pg_database db = (Form_pg_database) GETSTRUCT(tup);
    *oid = db->oid;
    return db->datallowconn && !db->datistemplate;
}

// An index of access method am, other than a temporary one (only its own
// session can read it; its inserting backend flushes it).
static bool index_of_am(HeapTuple tup, Oid am, Oid *oid) {
    Form_pg_class c = (Form_pg_class) GETSTRUCT(tup);
    *oid = c->oid;
    return c->relkind == RELKIND_INDEX && c->relam == am && c->relpersistence != RELPERSISTENCE_TEMP;
}

// Unpublishes the launcher's latch as it exits.
static void forget_latch(int, Datum) { drift_janitor_set_latch(NULL); }

void drift_janitor_launcher_main(Datum) {
    pqsignal(SIGHUP, SignalHandlerForConfigReload);
    pqsignal(SIGTERM, die);
    BackgroundWorkerUnblockSignals();
    BackgroundWorkerInitializeConnection(NULL, NULL, 0);
    ereport(LOG, (errmsg("drift janitor launcher started")));
    drift_janitor_set_latch(MyLatch);
    before_shmem_exit(forget_latch, 0);
    MemoryContext ctx = AllocSetContextCreate(TopMemoryContext, "drift janitor", ALLOCSET_DEFAULT_SIZES);
    for (;;) {
        CHECK_FOR_INTERRUPTS();
        if (ConfigReloadPending) {
            ConfigReloadPending = false;
            ProcessConfigFile(PGC_SIGHUP);
        }
        MemoryContextReset(ctx);
        int n;
        StartTransactionCommand();
        (void) GetTransactionSnapshot();
        Oid *dbs = catalog_oids(DatabaseRelationId, usable_database, InvalidOid, ctx, &n);
        CommitTransactionCommand();
        drift_memtable_forget(InvalidOid, dbs, n);
        bool standby = RecoveryInProgress();  // (graphs follow replayed rows: every database, every round)
        for (int i = 0; i < n && drift_janitor_enabled; i++) {
            if (!standby && !drift_janitor_due(dbs[i], JANITOR_REVISIT_MS)) continue;
            BackgroundWorker w;
            janitor_worker(&w, "drift_janitor_worker_main", "drift janitor worker");
            w.bgw_restart_time = BGW_NEVER_RESTART;
            w.bgw_main_arg = ObjectIdGetDatum(dbs[i]);
            w.bgw_notify_pid = MyProcPid;
            BackgroundWorkerHandle *handle;
            if (!RegisterDynamicBackgroundWorker(&w, &handle)) {
                ereport(DEBUG1, (errmsg("drift janitor: no background worker slot free; retrying next round")));
                break;
            }
            if (WaitForBackgroundWorkerShutdown(handle) == BGWH_POSTMASTER_DIED) proc_exit(1);
        }
        // (A wake-up that came while a worker ran was taken by its wait.)
        if (!drift_janitor_take_wake())
            (void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, drift_janitor_naptime,
                             PG_WAIT_EXTENSION);
        ResetLatch(MyLatch);
        (void) drift_janitor_take_wake();
    }
}

// What the janitor does for one index over its transactions.
struct JanitorVisit {
    Oid oid;
    bool first;          /* the first slice, which may flush L0 */
    bool left;           /* work is left: come back next round */
    NameData name;
    DriftMaintenance sum;
};

// Opens index oid if it is there, ready and valid (a CREATE INDEX
// CONCURRENTLY still building or failed is left alone), else NULL. Its
// table is locked first, as queries lock them (maintenance may read its rows).
static Relation open_index(Oid oid) {
    Oid table = IndexGetRelation(oid, true);
    if (!OidIsValid(table) || !ConditionalLockRelationOid(table, AccessShareLock)) return NULL;
    if (!ConditionalLockRelationOid(oid, AccessShareLock)) return NULL;  // DROP or REINDEX under way
    if (!SearchSysCacheExists1(RELOID, ObjectIdGetDatum(oid))) return NULL;  // dropped meanwhile
    Relation index = index_open(oid, NoLock);
    if (index->rd_index->indisready && index->rd_index->indisvalid) return index;
    index_close(index, NoLock);
    return NULL;
}

// One slice of maintenance of v's index: at most one bucket step (the
// first slice also flushes L0 if it is due: past drift.l0_flush_rows, its
// graph full, or idle for drift.l0_idle_flush; always without graphs). The
// caller runs each slice in a transaction of its own with no snapshot, so
// a slice's reclaim releases the chains earlier slices retired as soon as
// older scans end, and their pages are reused. True if work is left.
static bool maintain_slice(JanitorVisit *v) {
    Relation index = open_index(v->oid);
    if (index == NULL) return false;
    bool more = false;
    strlcpy(NameStr(v->name), RelationGetRelationName(index), NAMEDATALEN);
    if (!RecoveryInProgress() && drift_lock_maintenance(index, false)) {
        DriftMetaPageData meta = drift_guard("janitor", [&]() { return drift_info(index)->meta; });
        bool flush = v->first && (!drift_memtable_enabled() || drift_l0_due(&meta) || drift_memtable_full(index, &meta) ||
                                  (drift_l0_idle_flush > 0 && drift_memtable_idle(index, &meta, drift_l0_idle_flush)));
        DriftMaintenance d = drift_guard(
            "janitor", [&]() { return drift_maintain_index(index, flush ? DRIFT_MAINTAIN_ALL : DRIFT_MAINTAIN_KEEP_L0, 1); });
        v->sum.flushed += d.flushed;
        v->sum.splits += d.splits;
        v->sum.merges += d.merges;
        v->sum.compactions += d.compactions;
        v->sum.seeded += d.seeded;
        v->sum.stolen += d.stolen;
        v->sum.released += d.released;
        more = d.more;
        // The graph needs no maintenance lock: let VACUUM and drift_maintain in.
        UnlockRelation(index, ShareUpdateExclusiveLock);
    } else {
        v->left = true;  // its lock was taken
    }
    index_close(index, NoLock);
    return more;
}

// Extends v's index's memtable graph, and notes whether work is left: rows
// in L0 (a graph to extend, an idle flush to come), chains waiting for old
// snapshots, or a shrink waiting to give the end back (its lock was taken).
// In recovery this is all the janitor does.
static bool extend_graph(JanitorVisit *v) {
    Relation index = open_index(v->oid);
    if (index == NULL) return false;
    // The graph reads L0 pages: a snapshot keeps them from being released.
    PushActiveSnapshot(GetTransactionSnapshot());
    TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), Max(drift_janitor_naptime, 500));
    drift_guard("janitor", [&]() { drift_memtable_extend(index, deadline); });
    DriftMetaPageData meta = drift_guard("janitor", [&]() { return drift_info(index)->meta; });
    v->left |= meta.l0_pages > 0 || meta.nretired > 0 || meta.overflow_chain != 0 || (meta.flags & DRIFT_META_SHRINKING);
    PopActiveSnapshot();
    index_close(index, NoLock);
    return false;
}

// Runs fn(arg) in a transaction of its own and returns its result; an
// error is reported and sets *failed, and then the result is false.
template <class T>
static bool in_transaction(bool (*fn)(T *), T *arg, bool *failed) {
    MemoryContext ctx = CurrentMemoryContext;
    volatile bool result = false;
    StartTransactionCommand();
    PG_TRY();
    {
        result = fn(arg);
        CommitTransactionCommand();
    }
    PG_CATCH();
    {
        MemoryContextSwitchTo(ctx);
        EmitErrorReport();
        FlushErrorState();
        AbortCurrentTransaction();
        *failed = true;
    }
    PG_END_TRY();
    return result;
}

// Maintains index oid slice by slice (for at most JANITOR_VISIT_MS; the
// next round goes on), then extends its graph. True if work is left.
static bool visit_index(Oid oid) {
    JanitorVisit v;
    memset(&v, 0, sizeof(v));
    v.oid = oid;
    v.first = true;
    TimestampTz start = GetCurrentTimestamp();
    while (in_transaction(maintain_slice, &v, &v.left)) {
        v.first = false;
        CHECK_FOR_INTERRUPTS();
        if (TimestampDifferenceExceeds(start, GetCurrentTimestamp(), JANITOR_VISIT_MS)) {
            v.left = true;
            break;
        }
    }
    const DriftMaintenance &d = v.sum;
    if (d.flushed || d.splits || d.merges || d.compactions || d.released) {
        long secs;
        int usecs;
        TimestampDifference(start, GetCurrentTimestamp(), &secs, &usecs);
        ereport(d.splits || d.merges || d.compactions || d.seeded ? LOG : DEBUG1,
                (errmsg("drift janitor: index \"%s\": flushed %llu rows, %u splits, %u merges, %u compactions, "
                        "%u buckets seeded, %llu rows stolen, %u chains released in %.3f s",
                        NameStr(v.name), (unsigned long long) d.flushed, d.splits, d.merges, d.compactions, d.seeded,
                        (unsigned long long) d.stolen, d.released, secs + usecs / 1e6)));
    }
    in_transaction(extend_graph, &v, &v.left);
    return v.left;
}

// Re-checks a sampled scan's recall (in the caller's transaction).
static bool check_sample(DriftRecallSample *s) {
    PushActiveSnapshot(GetTransactionSnapshot());
    drift_monitor_check_sample(s);
    PopActiveSnapshot();
    return false;
}

void drift_janitor_worker_main(Datum arg) {
    pqsignal(SIGTERM, die);
    BackgroundWorkerUnblockSignals();
    BackgroundWorkerInitializeConnectionByOid(DatumGetObjectId(arg), InvalidOid, 0);
    pgstat_report_activity(STATE_RUNNING, "drift janitor: maintaining drift indexes");
    ereport(DEBUG1, (errmsg("drift janitor: visiting database %u", MyDatabaseId)));
    StartTransactionCommand();
    PushActiveSnapshot(GetTransactionSnapshot());
    Oid am = get_am_oid("drift", true);
    int n = 0;
    Oid *oids = OidIsValid(am) ? catalog_oids(RelationRelationId, index_of_am, am, TopMemoryContext, &n) : NULL;
    PopActiveSnapshot();
    CommitTransactionCommand();
    // Not due again unless an index has work left, or rows arrive meanwhile.
    drift_janitor_mark(MyDatabaseId, false);
    bool left = false;
    for (int i = 0; i < n; i++) {
        left |= visit_index(oids[i]);
        CHECK_FOR_INTERRUPTS();
    }
    // Sampled scans' recall, within the time a round may take. (Samples the
    // time left none for bring the janitor back next round; a check that
    // fails took its sample off the queue, so it leaves nothing to retry.)
    TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), Max(drift_janitor_naptime, 1000));
    for (DriftRecallSample *s; (s = drift_monitor_take_sample()) != NULL; pfree(s)) {
        CHECK_FOR_INTERRUPTS();
        bool failed = false;  // (nothing to retry)
        in_transaction(check_sample, s, &failed);
        if (GetCurrentTimestamp() >= deadline) {
            pfree(s);
            left = true;
            break;
        }
    }
    if (left) drift_janitor_mark(MyDatabaseId, true);
    drift_memtable_forget(MyDatabaseId, oids, n);
    pgstat_report_activity(STATE_IDLE, NULL);
    proc_exit(0);
}
