// The janitor: with shared_preload_libraries = 'drift', a launcher
// background worker wakes every drift.janitor_naptime and starts one worker
// per database in turn; each worker runs a maintenance pass over every
// drift index of its database and exits. An index whose maintenance lock is
// taken (VACUUM, drift_maintain, an inserting backend's flush) is skipped
// until the next round. The launcher starts once recovery has finished, so
// a standby runs no janitor: it replays the primary's.
#include "drift.h"

extern "C" {
#include "access/genam.h"
#include "access/heapam.h"
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

// Fills the fields the launcher and its workers share.
static void janitor_worker(BackgroundWorker *w, const char *fn, const char *name) {
    memset(w, 0, sizeof(*w));
    w->bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
    w->bgw_start_time = BgWorkerStart_RecoveryFinished;
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

// The databases that accept connections and are not templates (in ctx).
static Oid *database_list(MemoryContext ctx, int *n) {
    *n = 0;
    int cap = 16;
    Oid *dbs = (Oid *) MemoryContextAlloc(ctx, sizeof(Oid) * cap);
    StartTransactionCommand();
    (void) GetTransactionSnapshot();
    Relation rel = table_open(DatabaseRelationId, AccessShareLock);
    TableScanDesc scan = table_beginscan_catalog(rel, 0, NULL);
    HeapTuple tup;
    while ((tup = heap_getnext(scan, ForwardScanDirection)) != NULL) {
        Form_pg_database db = (Form_pg_database) GETSTRUCT(tup);
        if (!db->datallowconn || db->datistemplate) continue;
        if (*n == cap) {
            cap *= 2;
            dbs = (Oid *) repalloc(dbs, sizeof(Oid) * cap);
        }
        dbs[(*n)++] = db->oid;
    }
    table_endscan(scan);
    table_close(rel, AccessShareLock);
    CommitTransactionCommand();
    return dbs;
}

void drift_janitor_launcher_main(Datum) {
    pqsignal(SIGHUP, SignalHandlerForConfigReload);
    pqsignal(SIGTERM, die);
    BackgroundWorkerUnblockSignals();
    BackgroundWorkerInitializeConnection(NULL, NULL, 0);
    ereport(LOG, (errmsg("drift janitor launcher started")));
    MemoryContext ctx = AllocSetContextCreate(TopMemoryContext, "drift janitor", ALLOCSET_DEFAULT_SIZES);
    for (;;) {
        CHECK_FOR_INTERRUPTS();
        if (ConfigReloadPending) {
            ConfigReloadPending = false;
            ProcessConfigFile(PGC_SIGHUP);
        }
        MemoryContextReset(ctx);
        int n;
        Oid *dbs = database_list(ctx, &n);
        for (int i = 0; i < n; i++) {
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
        (void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, drift_janitor_naptime,
                         PG_WAIT_EXTENSION);
        ResetLatch(MyLatch);
    }
}

// The drift indexes of the current database.
static Oid *drift_indexes(Oid am, int *n) {
    *n = 0;
    int cap = 16;
    Oid *oids = (Oid *) MemoryContextAlloc(TopMemoryContext, sizeof(Oid) * cap);
    Relation rel = table_open(RelationRelationId, AccessShareLock);
    TableScanDesc scan = table_beginscan_catalog(rel, 0, NULL);
    HeapTuple tup;
    while ((tup = heap_getnext(scan, ForwardScanDirection)) != NULL) {
        Form_pg_class c = (Form_pg_class) GETSTRUCT(tup);
        if (c->relkind != RELKIND_INDEX || c->relam != am) continue;
        if (*n == cap) {
            cap *= 2;
            oids = (Oid *) repalloc(oids, sizeof(Oid) * cap);
        }
        oids[(*n)++] = c->oid;
    }
    table_endscan(scan);
    table_close(rel, AccessShareLock);
    return oids;
}

// One maintenance pass over index oid, if its maintenance lock is free.
static void maintain_one(Oid oid) {
    if (!ConditionalLockRelationOid(oid, ShareUpdateExclusiveLock)) return;
    if (!SearchSysCacheExists1(RELOID, ObjectIdGetDatum(oid))) return;  // dropped meanwhile
    Relation index = index_open(oid, NoLock);
    TimestampTz start = GetCurrentTimestamp();
    DriftMaintenance d = drift_guard("janitor", [&]() { return drift_maintain_index(index, DRIFT_MAINTAIN_ALL); });
    long secs;
    int usecs;
    TimestampDifference(start, GetCurrentTimestamp(), &secs, &usecs);
    if (d.flushed || d.splits || d.merges || d.compactions || d.released)
        ereport(d.splits || d.merges || d.compactions ? LOG : DEBUG1,
                (errmsg("drift janitor: index \"%s\": flushed %llu rows, %u splits, %u merges, %u compactions, "
                        "%llu rows stolen, %u chains released in %.3f s",
                        RelationGetRelationName(index), (unsigned long long) d.flushed, d.splits, d.merges,
                        d.compactions, (unsigned long long) d.stolen, d.released, secs + usecs / 1e6)));
    index_close(index, NoLock);
}

// maintain_one in a transaction of its own; an error is reported and the
// janitor goes on with the next index.
static void maintain_in_transaction(Oid oid) {
    MemoryContext ctx = CurrentMemoryContext;
    StartTransactionCommand();
    PG_TRY();
    {
        PushActiveSnapshot(GetTransactionSnapshot());
        maintain_one(oid);
        PopActiveSnapshot();
        CommitTransactionCommand();
    }
    PG_CATCH();
    {
        MemoryContextSwitchTo(ctx);
        EmitErrorReport();
        FlushErrorState();
        AbortCurrentTransaction();
    }
    PG_END_TRY();
}

void drift_janitor_worker_main(Datum arg) {
    pqsignal(SIGTERM, die);
    BackgroundWorkerUnblockSignals();
    BackgroundWorkerInitializeConnectionByOid(DatumGetObjectId(arg), InvalidOid, 0);
    pgstat_report_activity(STATE_RUNNING, "drift janitor: maintaining drift indexes");
    StartTransactionCommand();
    PushActiveSnapshot(GetTransactionSnapshot());
    Oid am = get_am_oid("drift", true);
    int n = 0;
    Oid *oids = OidIsValid(am) ? drift_indexes(am, &n) : NULL;
    PopActiveSnapshot();
    CommitTransactionCommand();
    for (int i = 0; i < n; i++) {
        maintain_in_transaction(oids[i]);
        CHECK_FOR_INTERRUPTS();
    }
    pgstat_report_activity(STATE_IDLE, NULL);
    proc_exit(0);
}
