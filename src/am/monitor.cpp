// The monitor: what drift keeps in shared memory about its scans, and the
// recall they deliver. With shared_preload_libraries = 'drift':
// - hits: per index and bucket, how many of recent scans' first rows came
//   from the bucket (halved every HIT_HALF_LIFE_MS); drift.lambda's heat
//   reads them. They live in shared memory only: scans write no WAL and run
//   on standbys too, and a restart forgets them (the heat's arrivals half,
//   in the directory, stays).
// - samples: a share of scans (drift.recall_sample_rate) leaves its query
//   and settings here, within a budget of index rows per minute
//   (drift.recall_sample_budget); the janitor re-runs each one and compares
//   it with the exact answer over the index's rows, off the query's time,
//   and keeps a moving mean per index that drift_index_stats shows.
// drift_evaluate_recall does the same comparison for one query, at once.
#include "drift.h"

#include <cmath>

extern "C" {
#include "access/relation.h"
#include "catalog/index.h"
#include "common/pg_prng.h"
#include "funcapi.h"
#include "port/atomics.h"
#include "storage/lmgr.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/builtins.h"

PG_FUNCTION_INFO_V1(drift_evaluate_recall);
Datum drift_evaluate_recall(PG_FUNCTION_ARGS);
}

#define MONITOR_INDEXES 64
#define MONITOR_BUCKETS 8192 /* buckets past this get no hits counted */
#define MONITOR_SAMPLES 8
#define MONITOR_MAX_DIM 4000
#define HIT_HALF_LIFE_MS 60000
#define RECALL_MEAN_WEIGHT 0.1 /* a new sample's weight in the moving mean */
#define SAMPLE_EXPIRY_MS 600000 /* a sample no janitor took (its database gone, the janitor off) frees its slot */
#define EXACT_BYTES_PER_ROW 48  /* what the exact pass of a re-check holds per index row */

// One index's hits and measured recall. relid = InvalidOid: free.
struct MonitorIndex {
    Oid db, relid, relfilenode; /* (a REINDEX makes another index of the same relid) */
    TimestampTz used;    /* last use (the least recently used is replaced) */
    TimestampTz decayed; /* hits last halved */
    uint64 samples;      /* samples checked */
    double recall;       /* their moving mean */
    pg_atomic_uint32 hits[MONITOR_BUCKETS];
};

// A scan's query and settings, waiting for the janitor. relid = InvalidOid: free.
struct DriftRecallSample {
    Oid db, relid;
    TimestampTz queued;
    uint32 dim;
    DriftScanSettings set;
    float query[MONITOR_MAX_DIM];
};

struct MonitorShared {
    double budget;         /* index rows samples may still cost */
    TimestampTz refilled;  /* when the budget was last topped up */
    MonitorIndex idx[MONITOR_INDEXES];
    DriftRecallSample samples[MONITOR_SAMPLES];
};

static MonitorShared *mon;
static LWLock *mon_lock;

Size drift_monitor_shmem_size() { return sizeof(MonitorShared); }

void drift_monitor_shmem_init() {
    bool found;
    mon = (MonitorShared *) ShmemInitStruct("drift monitor", sizeof(MonitorShared), &found);
    if (!found) {
        memset(mon, 0, sizeof(MonitorShared));
        for (MonitorIndex &m : mon->idx)
            for (pg_atomic_uint32 &h : m.hits) pg_atomic_init_u32(&h, 0);
    }
    mon_lock = &GetNamedLWLockTranche("drift monitor")[0].lock;
}

// The entry of index in this database, or NULL; the caller holds the lock.
static MonitorIndex *find_index(Relation index) {
    for (MonitorIndex &m : mon->idx)
        if (m.relid == RelationGetRelid(index) && m.db == MyDatabaseId && m.relfilenode == index->rd_node.relNode)
            return &m;
    return NULL;
}

// The entry of index, claimed (its relid's old one, a free one or the least
// recently used, if that was last used before idle_before) if it has none;
// NULL if every other entry is in use. The caller holds the lock exclusively.
static MonitorIndex *claim_index(Relation index, TimestampTz now, TimestampTz idle_before) {
    MonitorIndex *m = find_index(index);
    if (m != NULL) return m;
    m = &mon->idx[0];
    for (MonitorIndex &c : mon->idx) {
        if (c.relid == RelationGetRelid(index) && c.db == MyDatabaseId) {
            m = &c;
            break;
        }
        if (c.relid == InvalidOid || c.used < m->used) m = &c;
    }
    if (m->relid != InvalidOid && m->relid != RelationGetRelid(index) && m->used >= idle_before) return NULL;
    m->db = MyDatabaseId;
    m->relid = RelationGetRelid(index);
    m->relfilenode = index->rd_node.relNode;
    m->decayed = now;
    m->samples = 0;
    m->recall = 0;
    for (pg_atomic_uint32 &h : m->hits) pg_atomic_write_u32(&h, 0);
    return m;
}

// Halvings of an entry's hits due at now (whole half-lives since the last).
static long halvings_due(const MonitorIndex *m, TimestampTz now) {
    return long((now - m->decayed) / (HIT_HALF_LIFE_MS * 1000L));
}

void drift_monitor_add_hits(Relation index, const uint32 *buckets, uint32 n) {
    if (mon == NULL || n == 0) return;
    TimestampTz now = GetCurrentTimestamp();
    // Most calls find their entry with nothing to halve: a shared lock
    // keeps the entry in place while the counts go up (the last-use time is
    // a hint for replacement; a racing write of it does no harm).
    LWLockAcquire(mon_lock, LW_SHARED);
    MonitorIndex *m = find_index(index);
    if (m == NULL || halvings_due(m, now) > 0) {
        LWLockRelease(mon_lock);
        LWLockAcquire(mon_lock, LW_EXCLUSIVE);
        // (more indexes scanned than entries: an entry in use within a
        // half-life is not taken over, so they do not evict each other
        // scan by scan; this index's hits go uncounted)
        m = claim_index(index, now, now - HIT_HALF_LIFE_MS * 1000L);
        if (m == NULL) {
            LWLockRelease(mon_lock);
            return;
        }
        long halvings = halvings_due(m, now);
        if (halvings > 0) {
            for (pg_atomic_uint32 &h : m->hits)
                pg_atomic_write_u32(&h, halvings >= 32 ? 0 : pg_atomic_read_u32(&h) >> halvings);
            m->decayed += halvings * HIT_HALF_LIFE_MS * 1000L;
        }
    }
    m->used = now;
    for (uint32 i = 0; i < n; i++)
        if (buckets[i] < MONITOR_BUCKETS) pg_atomic_fetch_add_u32(&m->hits[buckets[i]], 1);
    LWLockRelease(mon_lock);
}

bool drift_monitor_hit_shares(Relation index, uint32 nbuckets, float *share) {
    if (mon == NULL) return false;
    LWLockAcquire(mon_lock, LW_SHARED);
    MonitorIndex *m = find_index(index);
    uint32 n = Min(nbuckets, uint32(MONITOR_BUCKETS)), most = 0;
    if (m != NULL)
        for (uint32 b = 0; b < n; b++) {
            share[b] = float(pg_atomic_read_u32(&m->hits[b]));
            most = Max(most, uint32(share[b]));
        }
    LWLockRelease(mon_lock);
    if (most == 0) return false;
    for (uint32 b = 0; b < n; b++) share[b] /= float(most);
    for (uint32 b = n; b < nbuckets; b++) share[b] = 0;
    return true;
}

bool drift_monitor_draw() {
    return mon != NULL && drift_recall_sample_rate > 0 && pg_prng_double(&pg_global_prng_state) < drift_recall_sample_rate;
}

void drift_monitor_sample(Relation index, const float *query, uint32 dim, const DriftScanSettings *s, uint64 rows) {
    if (mon == NULL || dim > MONITOR_MAX_DIM) return;
    TimestampTz now = GetCurrentTimestamp();
    bool kept = false;
    LWLockAcquire(mon_lock, LW_EXCLUSIVE);
    double per_minute = double(drift_recall_sample_budget);
    mon->budget = Min(per_minute, mon->budget + per_minute * double(now - mon->refilled) / 60e6);
    mon->refilled = now;
    if (mon->budget >= double(rows)) {
        for (DriftRecallSample &p : mon->samples) {
            if (p.relid != InvalidOid && !TimestampDifferenceExceeds(p.queued, now, SAMPLE_EXPIRY_MS)) continue;
            p.db = MyDatabaseId;
            p.queued = now;
            p.relid = RelationGetRelid(index);
            p.dim = dim;
            p.set = *s;
            memcpy(p.query, query, sizeof(float) * dim);
            mon->budget -= double(rows);
            kept = true;
            break;
        }
    }
    LWLockRelease(mon_lock);
    if (kept) drift_janitor_mark(MyDatabaseId, true);
}

DriftRecallSample *drift_monitor_take_sample() {
    if (mon == NULL) return NULL;
    DriftRecallSample *out = (DriftRecallSample *) palloc(sizeof(DriftRecallSample));
    bool found = false;
    LWLockAcquire(mon_lock, LW_EXCLUSIVE);
    for (DriftRecallSample &p : mon->samples) {
        if (p.relid == InvalidOid || p.db != MyDatabaseId) continue;
        memcpy(out, &p, offsetof(DriftRecallSample, query) + sizeof(float) * p.dim);
        p.relid = InvalidOid;
        found = true;
        break;
    }
    LWLockRelease(mon_lock);
    if (found) return out;
    pfree(out);
    return NULL;
}

// True if an exact pass over rows index rows fits in maintenance_work_mem.
static bool exact_pass_fits(uint64 rows) {
    return double(rows) * EXACT_BYTES_PER_ROW <= double(maintenance_work_mem) * 1024;
}

// Recall of a scan of index (on heap, both locked by the caller) for query
// (dim floats) under settings s against the exact answer over the index's
// rows: the share of the exact first k rows' places the scan's first k rows
// take (a row as near as the k-th exact one counts, so ties do not); 1 for
// an index with no rows. Fills *report.
static double measure_recall(Relation heap, Relation index, const float *query, uint32 dim, uint32 k,
                             const DriftScanSettings *s, DriftScanReport *report) {
    ItemPointerData *tids = (ItemPointerData *) palloc(sizeof(ItemPointerData) * k);
    float *exact = (float *) palloc(sizeof(float) * k), *got = (float *) palloc(sizeof(float) * k);
    DriftScanSettings all = *s;
    all.exact = true;
    all.rerank = Max(all.rerank, 1000);
    DriftScanReport exact_report;
    uint32 nexact = drift_scan_top(heap, index, query, dim, k, &all, tids, exact, &exact_report);
    uint32 ngot = drift_scan_top(heap, index, query, dim, k, s, tids, got, report);
    if (nexact == 0) return 1.0;
    float limit = exact[nexact - 1] + 1e-6f * Max(1.0f, std::abs(exact[nexact - 1]));
    uint32 hits = 0;
    for (uint32 i = 0; i < ngot; i++) hits += got[i] <= limit;
    return double(Min(hits, nexact)) / nexact;
}

// Folds a sample's recall into index's moving mean.
static void record_recall(Relation index, double recall) {
    TimestampTz now = GetCurrentTimestamp();
    LWLockAcquire(mon_lock, LW_EXCLUSIVE);
    MonitorIndex *m = claim_index(index, now, DT_NOEND);  // (any entry makes room)
    m->used = now;
    m->recall = m->samples == 0 ? recall : (1 - RECALL_MEAN_WEIGHT) * m->recall + RECALL_MEAN_WEIGHT * recall;
    m->samples++;
    LWLockRelease(mon_lock);
}

void drift_monitor_check_sample(const DriftRecallSample *p) {
    // The table, then its index, as a query locks them; without waiting, so
    // that a DDL lock holds up this sample only (the transaction's end
    // releases what was taken).
    Oid heapoid = IndexGetRelation(p->relid, true);
    if (!OidIsValid(heapoid) || !ConditionalLockRelationOid(heapoid, AccessShareLock) ||
        !ConditionalLockRelationOid(p->relid, AccessShareLock))
        return;
    Relation heap = try_relation_open(heapoid, NoLock), index = try_relation_open(p->relid, NoLock);
    if (heap == NULL || index == NULL) {  // (dropped meanwhile)
        if (heap != NULL) relation_close(heap, NoLock);
        if (index != NULL) relation_close(index, NoLock);
        return;
    }
    if (index->rd_rel->relkind == RELKIND_INDEX && index->rd_indam != NULL &&
        index->rd_indam->ambuild == drift_ambuild && index->rd_index->indisvalid &&
        drift_guard("recall sample", [&]() {
            DriftInfo *info = drift_info(index);
            return info->meta.dim == p->dim && exact_pass_fits(drift_info_rows(info));
        })) {
        DriftScanReport report;
        double recall = drift_guard("recall sample", [&]() {
            return measure_recall(heap, index, p->query, p->dim, uint32(p->set.target_k), &p->set, &report);
        });
        record_recall(index, recall);
    }
    relation_close(index, NoLock);
    relation_close(heap, NoLock);
}

bool drift_monitor_recall(Relation index, double *recall, uint64 *samples) {
    if (mon == NULL) return false;
    LWLockAcquire(mon_lock, LW_SHARED);
    MonitorIndex *m = find_index(index);
    bool found = m != NULL && m->samples > 0;
    if (found) {
        *recall = m->recall;
        *samples = m->samples;
    }
    LWLockRelease(mon_lock);
    return found;
}

// drift_evaluate_recall(index, query, k): the recall of this query through
// the index with the current settings, against the exact answer over the
// index's own rows, and what the scan did.
Datum drift_evaluate_recall(PG_FUNCTION_ARGS) {
    return drift_guard("drift_evaluate_recall", [&]() -> Datum {
        if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2)) PG_RETURN_NULL();
        int32 k = PG_GETARG_INT32(2);
        if (k < 1 || k > 10000)
            ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("k must be between 1 and 10000"),
                            errhint("k is the number of nearest rows whose recall is measured, as in LIMIT k.")));
        Relation index = drift_open_index(PG_GETARG_OID(0), AccessShareLock, DRIFT_ACCESS_QUERY);
        const DriftOpclass *oc = drift_index_opclass(index);
        Oid qtype = get_fn_expr_argtype(fcinfo->flinfo, 1);
        if (drift_opclass_type_problem(oc, qtype) != NULL)
            ereport(ERROR, (errcode(ERRCODE_DATATYPE_MISMATCH),
                            errmsg("query is of type %s, but index \"%s\" is on %s", format_type_be(qtype),
                                   RelationGetRelationName(index), oc->type),
                            errhint("Cast the query to the indexed column's type, as in '{1,2,3}'::real[].")));
        DriftInfo *info = drift_info(index);
        uint32 dim;
        float *query = drift_index_vector(index, PG_GETARG_DATUM(1), info->meta.dim, info->metric,
                                          info->meta.vec_kind, false, &dim);
        uint64 rows = drift_info_rows(info);
        if (!exact_pass_fits(rows))
            ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
                            errmsg("index \"%s\" holds about %llu rows: too many for an exact pass in maintenance_work_mem",
                                   RelationGetRelationName(index), (unsigned long long) rows),
                            errhint("The exact pass needs about %d bytes per row; raise maintenance_work_mem.",
                                    EXACT_BYTES_PER_ROW)));
        DriftScanSettings s = drift_scan_settings();
        DriftScanReport report;
        Relation heap = relation_open(index->rd_index->indrelid, NoLock);  // (drift_open_index locked it)
        double recall = measure_recall(heap, index, query, dim, uint32(k), &s, &report);
        relation_close(heap, NoLock);
        relation_close(index, AccessShareLock);

        TupleDesc desc;
        if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE) elog(ERROR, "return type must be a row type");
        Datum v[5] = {Float8GetDatum(recall), Int32GetDatum(int32(report.probed)), Int32GetDatum(int32(report.buckets)),
                      Int64GetDatum(int64(report.candidates)), Float8GetDatum(report.estimated_recall)};
        bool nulls[5] = {false, false, false, false, report.estimated_recall < 0};
        return HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), v, nulls));
    });
}
