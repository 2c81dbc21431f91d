// The drift access method handler: GUCs, options, cost estimate, validation.
#include "drift.h"

#include <cfloat>

#include "../core/distance.hpp"
#include "../storage/buffers.h"

extern "C" {
#include "access/amvalidate.h"
#include "access/htup_details.h"
#include "access/reloptions.h"
#include "catalog/pg_amop.h"
#include "catalog/pg_amproc.h"
#include "catalog/pg_opclass.h"
#include "catalog/pg_type.h"
#include "commands/progress.h"
#include "commands/vacuum.h"
#include "optimizer/optimizer.h"
#include "utils/catcache.h"
#include "utils/float.h"
#include "utils/guc.h"
#include "utils/selfuncs.h"
#include "utils/syscache.h"

PG_MODULE_MAGIC;

void _PG_init(void);
PG_FUNCTION_INFO_V1(drift_handler);
Datum drift_handler(PG_FUNCTION_ARGS);
}

int drift_probes = 10;
int drift_rerank = 32;
bool drift_strict_order = true;
int drift_max_probes = -1;
int drift_l0_max_rows = 20000;
double drift_compact_dead_ratio = 0.3;
int drift_steal_neighbours = 4;
int drift_janitor_naptime = 1000;
bool drift_janitor_enabled = true;
int drift_memtable_mem = 65536;
int drift_ef_search = 40;
int drift_l0_flush_rows = 10000;
int drift_l0_idle_flush = 10000;
double drift_lambda = 0;
double drift_tau = 0;
double drift_target_recall = 0;
int drift_target_k = 10;
int drift_max_scan_tuples = 50000;
double drift_scan_mem_multiplier = 1;
double drift_recall_sample_rate = 0.001;
int drift_recall_sample_budget = 2000000;

static relopt_kind drift_relopt_kind;
static relopt_enum_elt_def drift_precisions[] = {
    {"single", DRIFT_PRECISION_SINGLE},
    {"half", DRIFT_PRECISION_HALF},
    {NULL, 0},
};

static relopt_enum_elt_def drift_rerank_sources[] = {
    {"index", DRIFT_RERANK_INDEX},
    {"heap", DRIFT_RERANK_HEAP},
    {NULL, 0},
};

static relopt_enum_elt_def drift_code_kinds[] = {
    {"sq8", DRIFT_CODES_SQ8},
    {"rabitq", DRIFT_CODES_RABITQ},
    {NULL, 0},
};

// Checks the segment option's value: an absolute path (the file is read at build).
static void drift_validate_segment_option(const char *value) {
    if (value != NULL && !is_absolute_path(value))
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("segment must be an absolute path on the server, not \"%s\"", value),
                        errhint("Give the path drift_export_segment wrote the file to.")));
}

// Registers GUCs and reloptions, and picks the SIMD kernels once.
void _PG_init(void) {
    drift::kernels();
    drift_relopt_kind = add_reloption_kind();
    add_int_reloption(drift_relopt_kind, "lists", "Number of buckets (0 = chosen from the row count)", 0, 0, 32768,
                      AccessExclusiveLock);
    add_real_reloption(drift_relopt_kind, "clip_percentile",
                       "Percentile clipped at each end of every dimension's range by the SQ8 quantizer", 1.0, 0.0,
                       10.0, AccessExclusiveLock);
    add_int_reloption(drift_relopt_kind, "max_bucket_size",
                      "Entries above which maintenance splits a bucket (0 = 3x the mean bucket size at training)", 0, 0,
                      1000000, ShareUpdateExclusiveLock);
    add_enum_reloption(drift_relopt_kind, "precision",
                       "How the index stores full vectors and centroids (default: half for halfvec, else single)",
                       drift_precisions, DRIFT_PRECISION_DEFAULT, "Valid values are \"single\" and \"half\".",
                       AccessExclusiveLock);
    add_enum_reloption(drift_relopt_kind, "codes",
                       "What buckets keep of each row for a scan's first pass (default: chosen from the width)",
                       drift_code_kinds, DRIFT_CODES_AUTO, "Valid values are \"sq8\" and \"rabitq\".", AccessExclusiveLock);
    add_enum_reloption(drift_relopt_kind, "rerank",
                       "Where a scan reads the exact vectors it re-ranks candidates with: the index's own copy, or "
                       "the table's column (the index keeps codes only)",
                       drift_rerank_sources, DRIFT_RERANK_INDEX, "Valid values are \"index\" and \"heap\".",
                       AccessExclusiveLock);
    add_string_reloption(drift_relopt_kind, "segment",
                         "A .drift segment file (absolute path on the server) whose centroids and quantizer the "
                         "build starts from instead of training",
                         NULL, drift_validate_segment_option, AccessExclusiveLock);
    DefineCustomIntVariable("drift.probes", "Buckets scanned by a drift index scan before returning rows.", NULL,
                            &drift_probes, 10, 1, 32768, PGC_USERSET, 0, NULL, NULL, NULL);
    DefineCustomIntVariable("drift.rerank",
                            "Candidates re-ranked with exact distances in the first batch of a drift scan; each "
                            "later batch re-ranks twice as many as the one before.",
                            NULL, &drift_rerank, 32, 1, 1000000, PGC_USERSET, 0, NULL, NULL, NULL);
    DefineCustomBoolVariable("drift.strict_order",
                             "Whether a drift scan returns rows in exact distance order only: a row of a later batch "
                             "that is closer than one already returned is skipped.",
                             NULL, &drift_strict_order, true, PGC_USERSET, 0, NULL, NULL, NULL);
    DefineCustomIntVariable("drift.max_probes",
                            "Buckets a drift scan may probe in all when the executor keeps asking for rows "
                            "(-1 = every bucket).",
                            NULL, &drift_max_probes, -1, -1, 32768, PGC_USERSET, 0, NULL, NULL, NULL);
    DefineCustomIntVariable("drift.l0_max_rows",
                            "L0 rows past which an inserting backend flushes L0 into the buckets itself.", NULL,
                            &drift_l0_max_rows, 20000, 100, INT_MAX / 2, PGC_SIGHUP, 0, NULL, NULL, NULL);
    DefineCustomRealVariable("drift.compact_dead_ratio",
                             "Share of dead entries at which maintenance rewrites a bucket (0 = never).", NULL,
                             &drift_compact_dead_ratio, 0.3, 0.0, 1.0, PGC_SIGHUP, 0, NULL, NULL, NULL);
    DefineCustomIntVariable("drift.steal_neighbours",
                            "Neighbouring buckets whose entries a split may move to its new centroids (0 = none).",
                            NULL, &drift_steal_neighbours, 4, 0, 64, PGC_SIGHUP, 0, NULL, NULL, NULL);
    DefineCustomIntVariable("drift.janitor_naptime", "Time the janitor sleeps between maintenance passes.", NULL,
                            &drift_janitor_naptime, 1000, 10, 3600 * 1000, PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);
    DefineCustomBoolVariable("drift.janitor", "Whether the janitor maintains drift indexes (with shared_preload_libraries).",
                             NULL, &drift_janitor_enabled, true, PGC_SIGHUP, 0, NULL, NULL, NULL);
    DefineCustomIntVariable("drift.l0_flush_rows",
                            "L0 rows at which the janitor flushes L0 into the buckets; below it, the memtable "
                            "graph keeps L0 searchable (0 = flush on every pass).",
                            NULL, &drift_l0_flush_rows, 10000, 0, INT_MAX / 2, PGC_SIGHUP, 0, NULL, NULL, NULL);
    DefineCustomIntVariable("drift.l0_idle_flush",
                            "Time without new L0 rows after which the janitor flushes L0 whatever its size "
                            "(0 = never).",
                            NULL, &drift_l0_idle_flush, 10000, 0, INT_MAX, PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);
    DefineCustomIntVariable("drift.ef_search", "Candidate list size of a search of the memtable graph.", NULL,
                            &drift_ef_search, 40, 1, 10000, PGC_USERSET, 0, NULL, NULL, NULL);
    DefineCustomRealVariable("drift.lambda",
                             "Weight of bucket heat (recent arrivals and scan hits) in a drift scan's probe order, in "
                             "probe windows (0 = plain nearest-centroid order).",
                             NULL, &drift_lambda, 0, 0, 10, PGC_USERSET, 0, NULL, NULL, NULL);
    DefineCustomRealVariable("drift.tau",
                             "Members at which a bucket counts as fully dense in a drift scan's probe order; sparser "
                             "buckets rank later (0 = off).",
                             NULL, &drift_tau, 0, 0, 1e9, PGC_USERSET, 0, NULL, NULL, NULL);
    DefineCustomRealVariable("drift.target_recall",
                             "Recall a drift scan probes buckets for, by its own estimate, between drift.probes and "
                             "drift.max_probes buckets (0 = probe drift.probes buckets).",
                             NULL, &drift_target_recall, 0, 0, 1, PGC_USERSET, 0, NULL, NULL, NULL);
    DefineCustomIntVariable("drift.target_k", "Rows whose recall drift.target_recall estimates (set it to the LIMIT).",
                            NULL, &drift_target_k, 10, 1, 10000, PGC_USERSET, 0, NULL, NULL, NULL);
    DefineCustomIntVariable("drift.max_scan_tuples",
                            "Candidates a drift scan reads before it stops probing further buckets, once its first "
                            "buckets are read (-1 = no limit).",
                            NULL, &drift_max_scan_tuples, 50000, -1, INT_MAX, PGC_USERSET, 0, NULL, NULL, NULL);
    DefineCustomRealVariable("drift.scan_mem_multiplier",
                             "Multiple of work_mem a drift scan may use before it stops probing further buckets, once "
                             "its first buckets are read.",
                             NULL, &drift_scan_mem_multiplier, 1, 1, 1000, PGC_USERSET, 0, NULL, NULL, NULL);
    DefineCustomRealVariable("drift.recall_sample_rate",
                             "Share of drift scans whose recall the janitor re-checks exactly in the background "
                             "(with shared_preload_libraries; 0 = none).",
                             NULL, &drift_recall_sample_rate, 0.001, 0, 1, PGC_SUSET, 0, NULL, NULL, NULL);
    DefineCustomIntVariable("drift.recall_sample_budget",
                            "Index rows the janitor may compare per minute to re-check sampled scans, all drift "
                            "indexes together (a sample costs the rows of its index).",
                            NULL, &drift_recall_sample_budget, 2000000, 0, INT_MAX, PGC_SIGHUP, 0, NULL, NULL, NULL);
    // A server-start setting can only exist when loaded at server start.
    if (process_shared_preload_libraries_in_progress)
        DefineCustomIntVariable("drift.memtable_mem",
                                "Shared memory for the graphs over L0 rows, all drift indexes together (0 = none).",
                                NULL, &drift_memtable_mem, 65536, 0, INT_MAX / 2, PGC_POSTMASTER, GUC_UNIT_KB, NULL,
                                NULL, NULL);
    MarkGUCPrefixReserved("drift");
    if (process_shared_preload_libraries_in_progress) {
        drift_shmem_register();
        drift_janitor_register();
    }
}

// Parses and checks WITH (...) options.
static bytea *drift_amoptions(Datum reloptions, bool validate) {
    return drift_guard("options", [&]() -> bytea * {
        static const relopt_parse_elt tab[] = {
            {"lists", RELOPT_TYPE_INT, offsetof(DriftOptions, lists)},
            {"clip_percentile", RELOPT_TYPE_REAL, offsetof(DriftOptions, clip_percentile)},
            {"max_bucket_size", RELOPT_TYPE_INT, offsetof(DriftOptions, max_bucket_size)},
            {"precision", RELOPT_TYPE_ENUM, offsetof(DriftOptions, precision)},
            {"codes", RELOPT_TYPE_ENUM, offsetof(DriftOptions, codes)},
            {"rerank", RELOPT_TYPE_ENUM, offsetof(DriftOptions, rerank)},
            {"segment", RELOPT_TYPE_STRING, offsetof(DriftOptions, segment)},
        };
        return (bytea *) build_reloptions(reloptions, validate, drift_relopt_kind, sizeof(DriftOptions), tab,
                                          lengthof(tab));
    });
}

// Names of the build phases in pg_stat_progress_create_index.
static char *drift_ambuildphasename(int64 phase) {
    switch (phase) {
        case PROGRESS_CREATEIDX_SUBPHASE_INITIALIZE: return (char *) "initializing";
        case DRIFT_PHASE_SAMPLE: return (char *) "sampling rows";
        case DRIFT_PHASE_TRAIN: return (char *) "training centroids and quantizer";
        case DRIFT_PHASE_ASSIGN: return (char *) "assigning rows to buckets";
        case DRIFT_PHASE_WRITE: return (char *) "writing bucket pages";
        default: return NULL;
    }
}

// Costs only ordered scans; the fraction of buckets probed scales the work.
static void drift_amcostestimate(PlannerInfo *root, IndexPath *path, double loop_count, Cost *startup, Cost *total,
                                 Selectivity *selectivity, double *correlation, double *pages) {
    return drift_guard("cost estimate", [&]() -> void {
        if (path->indexorderbys == NIL) {
            // Without ORDER BY <op> the index can do nothing useful.
            *startup = *total = get_float8_infinity();
            *selectivity = 0;
            *correlation = 0;
            *pages = 0;
            return;
        }
        GenericCosts costs;
        memset(&costs, 0, sizeof(costs));
        genericcostestimate(root, path, loop_count, &costs);

        Relation index = index_open(path->indexinfo->indexoid, NoLock);
        DriftMetaPageData meta;
        drift_read_meta_fields(index, &meta);
        index_close(index, NoLock);
        double ratio = 1.0;
        if ((meta.flags & DRIFT_META_TRAINED) && meta.nbuckets > 0)
            ratio = Min(1.0, double(drift_probes) / double(meta.nbuckets));
        double tuples = Max(1.0, path->indexinfo->tuples * ratio);
        double npages = Max(1.0, costs.numIndexPages * ratio);
        // All the work happens before the first row is returned.
        *startup = npages * seq_page_cost + tuples * cpu_operator_cost * 2 + drift_rerank * cpu_operator_cost * 4;
        *total = *startup + tuples * cpu_index_tuple_cost;
        *selectivity = 1.0;
        *correlation = 0;
        *pages = npages;
    });
}

// Checks that an operator class provides what drift needs.
static bool drift_amvalidate(Oid opclassoid) {
    return drift_guard("validate", [&]() -> bool {
        HeapTuple tup = SearchSysCache1(CLAOID, ObjectIdGetDatum(opclassoid));
        if (!HeapTupleIsValid(tup)) elog(ERROR, "cache lookup failed for operator class %u", opclassoid);
        Form_pg_opclass form = (Form_pg_opclass) GETSTRUCT(tup);
        Oid family = form->opcfamily, type = form->opcintype;
        ReleaseSysCache(tup);

        bool ok = true, has_proc = false, has_support = false, has_op = false;
        CatCList *procs = SearchSysCacheList1(AMPROCNUM, ObjectIdGetDatum(family));
        for (int i = 0; i < procs->n_members; i++) {
            Form_pg_amproc p = (Form_pg_amproc) GETSTRUCT(&procs->members[i]->tuple);
            if (p->amproclefttype != type) continue;
            if (p->amprocnum == DRIFT_SUPPORT_DISTANCE) {
                has_proc = true;
            } else if (p->amprocnum == DRIFT_SUPPORT_OPCLASS &&
                       check_amproc_signature(p->amproc, INTERNALOID, true, 1, 1, INTERNALOID)) {
                FmgrInfo f;
                fmgr_info(p->amproc, &f);
                const char *problem = drift_opclass_type_problem(drift_opclass_of(&f), type);
                if (problem) {
                    ereport(INFO, (errmsg("%s", problem)));
                    ok = false;
                }
                has_support = true;
            } else {
                ereport(INFO, (errmsg("drift operator family has support function %d with a wrong signature, or "
                                      "one drift does not define", p->amprocnum)));
                ok = false;
            }
        }
        ReleaseSysCacheList(procs);
        CatCList *ops = SearchSysCacheList1(AMOPSTRATEGY, ObjectIdGetDatum(family));
        for (int i = 0; i < ops->n_members; i++) {
            Form_pg_amop o = (Form_pg_amop) GETSTRUCT(&ops->members[i]->tuple);
            if (o->amoplefttype != type) continue;
            if (o->amoppurpose != AMOP_ORDER || o->amopstrategy != 1) {
                ereport(INFO, (errmsg("drift supports only one ordering operator, as strategy 1")));
                ok = false;
            }
            has_op = true;
        }
        ReleaseSysCacheList(ops);
        if (!has_proc || !has_support || !has_op) {
            ereport(INFO, (errmsg("drift operator class needs a distance function (1), a drift support function (2) "
                                  "and an ordering operator")));
            ok = false;
        }
        return ok;
    });
}

// True if a query cancel or backend termination is pending. Other
// interrupts also set InterruptPending (a memory-context dump, a barrier):
// they are served by CHECK_FOR_INTERRUPTS and must not stop a computation.
static bool interrupt_pending(void *) { return InterruptPending && (QueryCancelPending || ProcDiePending); }

drift::Interrupt drift_interrupt() {
    drift::Interrupt i;
    i.pending = interrupt_pending;
    return i;
}

// The index access method handler: every field set, NULLs included.
Datum drift_handler(PG_FUNCTION_ARGS) {
    return drift_guard("handler", [&]() -> Datum {
        IndexAmRoutine *am = makeNode(IndexAmRoutine);
        am->amstrategies = 0;
        am->amsupport = 2;
        am->amoptsprocnum = 0;
        am->amcanorder = false;
        am->amcanorderbyop = true;
        am->amcanbackward = false;
        am->amcanunique = false;
        am->amcanmulticol = false;
        am->amoptionalkey = true;
        am->amsearcharray = false;
        am->amsearchnulls = false;
        am->amstorage = false;
        am->amclusterable = false;
        am->ampredlocks = false;
        am->amcanparallel = false;
        am->amcaninclude = false;
        am->amusemaintenanceworkmem = true;
        am->amparallelvacuumoptions = VACUUM_OPTION_PARALLEL_BULKDEL;
        am->amkeytype = InvalidOid;

        am->ambuild = drift_ambuild;
        am->ambuildempty = drift_ambuildempty;
        am->aminsert = drift_aminsert;
        am->ambulkdelete = drift_ambulkdelete;
        am->amvacuumcleanup = drift_amvacuumcleanup;
        am->amcanreturn = NULL;
        am->amcostestimate = drift_amcostestimate;
        am->amoptions = drift_amoptions;
        am->amproperty = NULL;
        am->ambuildphasename = drift_ambuildphasename;
        am->amvalidate = drift_amvalidate;
        am->amadjustmembers = NULL;
        am->ambeginscan = drift_ambeginscan;
        am->amrescan = drift_amrescan;
        am->amgettuple = drift_amgettuple;
        am->amgetbitmap = NULL;
        am->amendscan = drift_amendscan;
        am->ammarkpos = NULL;
        am->amrestrpos = NULL;
        am->amestimateparallelscan = NULL;
        am->aminitparallelscan = NULL;
        am->amparallelrescan = NULL;
        PG_RETURN_POINTER(am);
    });
}
