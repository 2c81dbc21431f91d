// Index build: sample rows, train centroids and quantizer, assign every row
// to its nearest centroid through a sort, and write bucket chains in order.
//
// Pages are written without per-page WAL and WAL-logged as whole pages at
// the end (log_newpage_range). An index built on no rows gets a metapage
// only: its rows go to L0 until it is trained.
#include "drift.h"

#include "../core/distance.hpp"
#include "../core/kmeans.hpp"
#include "../core/parallel.hpp"
#include "../core/routing.hpp"
#include "../storage/buffers.h"
#include "../storage/chains.h"

extern "C" {
#include <sys/stat.h>

#include "access/tableam.h"
#include "access/xloginsert.h"
#include "catalog/index.h"
#include "catalog/pg_operator_d.h"
#include "catalog/pg_type.h"
#include "commands/progress.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "utils/memutils.h"
#include "utils/tuplesort.h"
}

// Seed of the build's sampling and k-means (reproducible builds).
static const uint64 kBuildSeed = 0x5EEDD1F7ULL;
// Rows sampled to train per bucket, and at least in all. (On 100k x 768
// generated rows, 64 rows a bucket instead of 128 gave recall@10 0.920,
// 0.946, 0.980 at 2, 4, 8 probes against 0.888, 0.942, 0.974, in 60% of
// the k-means time; FAISS warns below 39.)
static const double kSamplePerList = 64, kSampleMin = 16384;
// Lloyd iterations of the build's k-means at most (pgvector's ivfflat runs
// 10 too): on 100k x 768 generated rows, 10 instead of 20 (which stopped
// at 17) take 72% of the time for recall@10 0.974 against 0.976 at 8
// probes, 0.942 against 0.944 at 4, 0.888 against 0.902 at 2.
static const int kBuildIterations = 10;
// Rows the assigning pass gathers before finding their buckets at once.
static const uint32 kAssignBatch = 1024;

// State of one build, plain data only (a Postgres ERROR may unwind it).
struct BuildState {
    Relation heap, index;
    drift::Metric metric;
    uint16 kind; /* DriftVecKind the index stores */
    uint16 codes; /* the codes option (DRIFT_CODES_*) */
    uint16 rerank; /* the rerank option (DriftRerank) */
    uint32 dim;
    int lists;
    float clip;
    MemoryContext tmpctx;
    // sampling pass
    float *sample;
    uint32 sample_cap, nsample;
    double rows;
    drift::Rng rng;
    // ... which also keeps every row (vector and TID) while the rows fit a
    // quarter of maintenance_work_mem (kept_max rows; 0 once they do not):
    // the assigning pass then reads them instead of the table.
    float *kept;
    ItemPointerData *kept_tids;
    uint32 nkept, kept_cap, kept_max;
    // assigning pass
    float *lo, *scale, *centroids; /* the quantizer's two arrays (drift::Quantizer), the centroids */
    uint32 k;
    unsigned threads;   /* for k-means and assignment: 1 + parallel maintenance workers the build may use */
    float *batch;       /* kAssignBatch rows waiting for their buckets, */
    ItemPointerData *batch_tids; /* their TIDs, */
    uint32 nbatch;      /* and how many */
    uint32 *batch_bucket; /* the buckets and distances of up to kAssignBatch rows */
    float *batch_dist;
    double lid; /* the sample's intrinsic dimension (0 = unknown) */
    const char *segment; /* the segment file to start from (the segment option), or NULL, */
    uint64 segment_rows; /* and the rows it held */
    Tuplesortstate *sort;
    TupleTableSlot *slot;
    double assigned;
};

// Reads one row's vector during the build (validated; unit length for cosine).
static float *build_vector(BuildState *bs, Datum value) {
    uint32 dim;
    float *v = drift_index_vector(bs->index, value, bs->dim, bs->metric, bs->kind, true, &dim);
    bs->dim = dim;
    return v;
}

// Keeps row (tid, v) for the assigning pass while the rows fit kept_max,
// else gives them all up.
static void keep_row(BuildState *bs, ItemPointer tid, const float *v) {
    if (bs->kept_max == 0) return;
    if (bs->nkept == bs->kept_cap) {
        if (bs->nkept >= bs->kept_max) {
            if (bs->kept) pfree(bs->kept), pfree(bs->kept_tids);
            bs->kept = NULL;
            bs->kept_tids = NULL;
            bs->nkept = bs->kept_cap = bs->kept_max = 0;
            return;
        }
        uint32 cap = Min(bs->kept_max, Max(1024u, bs->kept_cap * 2));
        Size vbytes = Size(cap) * bs->dim * sizeof(float), tbytes = Size(cap) * sizeof(ItemPointerData);
        bs->kept = (float *) (bs->kept ? repalloc_huge(bs->kept, vbytes) : MemoryContextAllocHuge(CurrentMemoryContext, vbytes));
        bs->kept_tids = (ItemPointerData *) (bs->kept_tids ? repalloc_huge(bs->kept_tids, tbytes)
                                                           : MemoryContextAllocHuge(CurrentMemoryContext, tbytes));
        bs->kept_cap = cap;
    }
    memcpy(bs->kept + Size(bs->nkept) * bs->dim, v, sizeof(float) * bs->dim);
    bs->kept_tids[bs->nkept++] = *tid;
}

// Pass 1: counts rows and keeps a reservoir sample of their vectors (and
// every row, while they fit).
static void sample_callback(Relation, ItemPointer tid, Datum *values, bool *isnull, bool, void *state) {
    BuildState *bs = (BuildState *) state;
    if (isnull[0]) return;
    MemoryContext old = MemoryContextSwitchTo(bs->tmpctx);
    float *v = build_vector(bs, values[0]);
    MemoryContextSwitchTo(old);
    if (bs->sample == NULL) {
        double want = bs->lists > 0 ? Max(kSampleMin, kSamplePerList * bs->lists) : 4 * kSampleMin;
        double by_mem = double(maintenance_work_mem) * 1024.0 / 2 / (sizeof(float) * bs->dim);
        bs->sample_cap = uint32(Max(1.0, Min(want, by_mem)));
        bs->sample = (float *) MemoryContextAllocHuge(CurrentMemoryContext, Size(bs->sample_cap) * bs->dim * sizeof(float));
        double keep = double(maintenance_work_mem) * 1024.0 / 4 / (sizeof(float) * bs->dim + sizeof(ItemPointerData));
        bs->kept_max = uint32(Min(keep, double(PG_UINT32_MAX)));
    }
    keep_row(bs, tid, v);
    bs->rows += 1;
    int64 slot = -1;
    if (bs->nsample < bs->sample_cap)
        slot = bs->nsample++;
    else {
        uint64 r = bs->rng.below(uint64(bs->rows));
        if (r < bs->sample_cap) slot = int64(r);
    }
    if (slot >= 0) memcpy(bs->sample + Size(slot) * bs->dim, v, sizeof(float) * bs->dim);
    MemoryContextReset(bs->tmpctx);
    pgstat_progress_update_param(PROGRESS_CREATEIDX_TUPLES_DONE, int64(bs->rows));
}

// Pass 2, for n (at most kAssignBatch) rows and their TIDs: finds their
// buckets (on bs->threads threads) and sends (bucket, tid, vector) of each
// to the sort.
static void assign_rows(BuildState *bs, const float *rows, const ItemPointerData *tids, uint32 n) {
    uint32 dim = bs->dim;
    CHECK_FOR_INTERRUPTS();
    // (inside the heap scan's callback: no C++ exception may reach its C frames)
    drift_guard("build", [&]() -> void {
        drift::nearest_centroids(rows, n, bs->centroids, bs->k, dim, bs->batch_bucket, bs->batch_dist, bs->threads);
    });
    MemoryContext old = MemoryContextSwitchTo(bs->tmpctx);
    bytea *vb = (bytea *) palloc(VARHDRSZ + sizeof(float) * dim);
    SET_VARSIZE(vb, VARHDRSZ + sizeof(float) * dim);
    for (uint32 i = 0; i < n; i++) {
        const ItemPointerData *tid = &tids[i];
        memcpy(VARDATA(vb), rows + Size(i) * dim, sizeof(float) * dim);
        ExecClearTuple(bs->slot);
        bs->slot->tts_values[0] = Int32GetDatum(int32(bs->batch_bucket[i]));
        bs->slot->tts_values[1] =
            Int64GetDatum(int64(ItemPointerGetBlockNumber(tid)) << 16 | ItemPointerGetOffsetNumber(tid));
        bs->slot->tts_values[2] = PointerGetDatum(vb);
        bs->slot->tts_isnull[0] = bs->slot->tts_isnull[1] = bs->slot->tts_isnull[2] = false;
        ExecStoreVirtualTuple(bs->slot);
        tuplesort_puttupleslot(bs->sort, bs->slot);
    }
    MemoryContextSwitchTo(old);
    MemoryContextReset(bs->tmpctx);
    bs->assigned += n;
    pgstat_progress_update_param(PROGRESS_CREATEIDX_TUPLES_DONE, int64(bs->assigned));
}

// Pass 2: gathers each row's vector and TID, kAssignBatch rows at a time.
static void assign_callback(Relation, ItemPointer tid, Datum *values, bool *isnull, bool, void *state) {
    BuildState *bs = (BuildState *) state;
    if (isnull[0]) return;
    MemoryContext old = MemoryContextSwitchTo(bs->tmpctx);
    float *v = build_vector(bs, values[0]);
    memcpy(bs->batch + Size(bs->nbatch) * bs->dim, v, sizeof(float) * bs->dim);
    MemoryContextSwitchTo(old);
    MemoryContextReset(bs->tmpctx);
    bs->batch_tids[bs->nbatch++] = *tid;
    if (bs->nbatch == kAssignBatch) {
        assign_rows(bs, bs->batch, bs->batch_tids, bs->nbatch);
        bs->nbatch = 0;
    }
}

// Fills the metapage of a new index.
static void fill_meta(DriftMetaPage m, const BuildState *bs) {
    memset(m, 0, sizeof(*m));
    m->magic = DRIFT_MAGIC;
    m->version = DRIFT_FORMAT_VERSION;
    m->vec_kind = bs->kind;
    m->opt_codes = bs->codes;
    m->rerank = bs->rerank;
    drift_meta_set_dim(m, bs->dim);
    m->metric = uint16(bs->metric);
    m->generation = 1;
    m->quant_head = m->old_quant_head = m->dir_head = m->l0_head = m->l0_tail = InvalidBlockNumber;
    m->l0_chain = 1;
    m->next_chain = 2;
    m->opt_lists = bs->lists;
    m->opt_clip_pct = bs->clip;
}

// Records a finished bucket chain in its directory entry.
static void record_chain(Relation index, const BlockNumber *dir, const DriftMetaPageData *meta, uint32 b,
                         const ChainWriter *w, float radius) {
    Buffer dbuf = ReadBuffer(index, dir[b / meta->dir_cap]);
    DriftDirEntry e = drift_dir_entry(drift_unlogged_edit(dbuf), meta->dim, b % meta->dir_cap);
    e->head = w->head;
    e->tail = w->tail;
    e->chain = w->chain;
    e->nlive = w->n;
    e->radius = radius;
    drift_unlogged_end(dbuf);
    ReleaseBuffer(dbuf);
}

// Writes quantizer, directory and bucket chains from the sorted rows.
static void write_trained(BuildState *bs, ForkNumber fork, DriftMetaPage meta) {
    Relation index = bs->index;
    uint32 dim = bs->dim;
    // Quantizer blob pages (chain id k + 2).
    Size qbytes = sizeof(float) * dim * 2;
    char *qdata = (char *) palloc(qbytes);
    memcpy(qdata, bs->lo, sizeof(float) * dim);
    memcpy(qdata + sizeof(float) * dim, bs->scale, sizeof(float) * dim);
    meta->quant_chain = bs->k + 2;
    meta->quant_head = drift_write_blob(index, fork, meta->quant_chain, qdata, qbytes, false);
    meta->old_quant_head = InvalidBlockNumber;

    // Directory pages, linked, with every bucket's centroid.
    uint32 ndir = (bs->k + meta->dir_cap - 1) / meta->dir_cap;
    BlockNumber *dir = (BlockNumber *) palloc(sizeof(BlockNumber) * ndir);
    Buffer dprev = InvalidBuffer;
    for (uint32 i = 0; i < ndir; i++) {
        Buffer buf = drift_unlogged_page(index, fork, DRIFT_PAGE_DIR, 0, meta->vec_kind);
        dir[i] = BufferGetBlockNumber(buf);
        Page page = drift_unlogged_edit(buf);
        uint32 n = Min(uint32(meta->dir_cap), bs->k - i * meta->dir_cap);
        drift_dir_header(page)->nentries = n;
        for (uint32 j = 0; j < n; j++) {
            DriftDirEntry e = drift_dir_entry(page, dim, j);
            e->head = e->tail = InvalidBlockNumber;
            e->quant = meta->quant_chain;
            drift_dir_set_centroid(page, dim, j, bs->centroids + Size(i * meta->dir_cap + j) * dim);
        }
        drift_page_set_bounds(page, dim);
        drift_unlogged_end(buf);
        if (BufferIsValid(dprev)) {
            Page ppage = drift_unlogged_edit(dprev);
            DriftPageGetOpaque(ppage)->next = dir[i];
            drift_unlogged_end(dprev);
            ReleaseBuffer(dprev);
        }
        dprev = buf;
    }
    ReleaseBuffer(dprev);
    meta->dir_head = dir[0];
    meta->nbuckets = bs->k;

    // Bucket chains in bucket order (chain id b + 1); every bucket gets at least one page.
    drift::Quantizer base{drift::CodeKind(meta->code_kind), dim, bs->lo, bs->scale}, q = base;
    DriftCentre centre = {NULL, NULL};
    uint8 *code = (uint8 *) palloc(meta->code_bytes);
    ChainWriter w;
    float radius = 0;
    int64 cur = -1;
    double written = 0;
    bool more = true;
    while (more) {
        more = tuplesort_gettupleslot(bs->sort, true, false, bs->slot, NULL);
        bool isnull;
        uint32 b = more ? uint32(DatumGetInt32(slot_getattr(bs->slot, 1, &isnull))) : bs->k;
        while (cur < int64(b)) {
            if (cur >= 0) {
                drift_chain_finish(&w);
                record_chain(index, dir, meta, uint32(cur), &w, radius);
            }
            cur++;
            radius = 0;
            if (cur < int64(bs->k)) {
                drift_free_centre(&centre);
                q = drift_chain_quantizer(base, bs->centroids + Size(cur) * dim, &centre);
                drift_chain_start(&w, index, fork, meta, false, uint32(cur) + 1, uint32(cur), centre.halves);
            }
        }
        if (!more) break;
        int64 t = DatumGetInt64(slot_getattr(bs->slot, 2, &isnull));
        bytea *vb = DatumGetByteaPP(slot_getattr(bs->slot, 3, &isnull));
        const float *v = (const float *) VARDATA_ANY(vb);
        ItemPointerData tid;
        ItemPointerSet(&tid, BlockNumber(t >> 16), OffsetNumber(t & 0xFFFF));
        drift::encode(q, v, code);
        drift_chain_add(&w, &tid, code, v);
        radius = Max(radius, std::sqrt(drift::order_distance(drift::Metric::L2, v, bs->centroids + Size(b) * dim, dim)));
        pgstat_progress_update_param(PROGRESS_CREATEIDX_TUPLES_DONE, int64(++written));
        CHECK_FOR_INTERRUPTS();
    }
    meta->flags |= DRIFT_META_TRAINED;
    meta->build_rows = uint64(written);
    meta->live_buckets = bs->k;
    meta->target_bucket = uint32(Max(1.0, Max(written, double(bs->segment_rows)) / bs->k));
    meta->data_lid = bs->lid > 0 ? drift_lid_store(bs->lid) : 0;
    meta->l0_chain = bs->k + 1;
    meta->next_chain = bs->k + 3;
}

Tuplesortstate *drift_bucket_sort(TupleDesc desc) {
    AttrNumber keys[2] = {1, 2};
    Oid ops[2] = {Int4LessOperator, Int8LessOperator};
    Oid colls[2] = {InvalidOid, InvalidOid};
    bool nullsfirst[2] = {false, false};
    return tuplesort_begin_heap(desc, 2, keys, ops, colls, nullsfirst, maintenance_work_mem, NULL, TUPLESORT_NONE);
}

// Trains centroids and quantizer on the build's sample.
static void train(BuildState *bs, const DriftMetaPageData *meta) {
    bs->k = drift::choose_lists(bs->lists, double(bs->rows), bs->nsample);
    bs->centroids = (float *) MemoryContextAllocHuge(CurrentMemoryContext, sizeof(float) * bs->dim * bs->k);
    bs->lo = (float *) palloc(sizeof(float) * bs->dim);
    bs->scale = (float *) palloc(sizeof(float) * bs->dim);
    // k-means trains on kSamplePerList rows per bucket: a uniform subset
    // of the reservoir (which was sized before the bucket count was known).
    uint32 ntrain = uint32(Min(double(bs->nsample), Max(kSampleMin, kSamplePerList * bs->k)));
    float *row = (float *) palloc(sizeof(float) * bs->dim);
    for (uint32 i = 0; i < ntrain; i++) {
        uint32 j = i + uint32(bs->rng.below(bs->nsample - i));
        memcpy(row, bs->sample + Size(i) * bs->dim, sizeof(float) * bs->dim);
        memmove(bs->sample + Size(i) * bs->dim, bs->sample + Size(j) * bs->dim, sizeof(float) * bs->dim);
        memcpy(bs->sample + Size(j) * bs->dim, row, sizeof(float) * bs->dim);
    }
    pfree(row);
    drift::KMeansParams p{bs->k, bs->metric, kBuildSeed, kBuildIterations, drift_interrupt(), bs->threads};
    drift::kmeans(bs->sample, ntrain, bs->dim, p, bs->centroids);
    drift::quantizer_fit(drift::CodeKind(meta->code_kind), bs->sample, bs->nsample, bs->dim, bs->clip, bs->lo, bs->scale,
                         bs->threads);
    bs->lid = drift::sample_dimension(bs->sample, ntrain, bs->dim);
}

// Reads the segment option's file and checks it fits the index: same
// metric, same dimension as the rows (or the column's type), codes of the
// kind asked (its kind when none is). False if the build trains instead.
static bool take_segment(BuildState *bs, DriftSegmentCentroids *seg) {
    const char *name = RelationGetRelationName(bs->index);
    // An index rebuilt (REINDEX, TRUNCATE, VACUUM FULL, CREATE INDEX
    // CONCURRENTLY's build) whose file is gone trains instead.
    struct stat st;
    if (bs->index->rd_createSubid == InvalidSubTransactionId && stat(bs->segment, &st) != 0 && errno == ENOENT) {
        ereport(WARNING, (errmsg("segment file \"%s\" of index \"%s\" does not exist: the index is trained on its "
                                 "rows instead", bs->segment, name),
                          errhint("ALTER INDEX ... RESET (segment) stops the index from looking for it.")));
        return false;
    }
    drift_segment_load(bs->segment, seg);
    if (seg->metric != bs->metric)
        ereport(ERROR, (errcode(ERRCODE_DATATYPE_MISMATCH),
                        errmsg("segment \"%s\" was exported from an index of %s distance, index \"%s\" has %s",
                               bs->segment, drift_metric_name(seg->metric), name, drift_metric_name(bs->metric)),
                        errhint("Use the operator class of the segment's metric.")));
    int32 typmod = TupleDescAttr(RelationGetDescr(bs->index), 0)->atttypmod;
    if (bs->rows == 0 && typmod > 0 && uint32(typmod) != seg->dim)
        ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION),
                        errmsg("segment \"%s\" has %u dimensions, but the column of index \"%s\" has %d", bs->segment,
                               seg->dim, name, typmod),
                        errhint("Start an index from a segment of vectors of the same dimension.")));
    if (bs->rows > 0 && seg->dim != bs->dim)
        ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION),
                        errmsg("segment \"%s\" has %u dimensions, but the rows of index \"%s\" have %u", bs->segment,
                               seg->dim, name, bs->dim),
                        errhint("Start an index from a segment of vectors of the same dimension.")));
    if (seg->dim > drift_max_dim(bs->kind))
        ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
                        errmsg("segment \"%s\" has %u dimensions, more than index \"%s\" can store", bs->segment,
                               seg->dim, name),
                        errhint("Index WITH (precision = half) for up to 4000 dimensions.")));
    uint16 codes = seg->code_kind == DRIFT_CODE_RABITQ ? DRIFT_CODES_RABITQ : DRIFT_CODES_SQ8;
    if (bs->codes != DRIFT_CODES_AUTO && bs->codes != codes)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("segment \"%s\" holds %s codes, but index \"%s\" asks for others", bs->segment,
                               seg->code_kind == DRIFT_CODE_RABITQ ? "rabitq" : "sq8", name),
                        errhint("Drop the codes option: an index started from a segment takes the segment's kind.")));
    bs->codes = codes;
    bs->dim = seg->dim;
    bs->segment_rows = seg->rows;
    return true;
}

// Builds the index into fork (MAIN, or INIT for unlogged tables' empty index).
static void build_index(BuildState *bs, IndexInfo *indexInfo, ForkNumber fork) {
    Buffer mbuf = drift_unlogged_page(bs->index, fork, DRIFT_PAGE_META, 0, 0);
    Assert(BufferGetBlockNumber(mbuf) == DRIFT_METAPAGE_BLKNO);

    if (bs->heap != NULL) {
        pgstat_progress_update_param(PROGRESS_CREATEIDX_SUBPHASE, DRIFT_PHASE_SAMPLE);
        pgstat_progress_update_param(PROGRESS_CREATEIDX_TUPLES_TOTAL, int64(Max(bs->heap->rd_rel->reltuples, 0)));
        table_index_build_scan(bs->heap, bs->index, indexInfo, true, true, sample_callback, bs, NULL);
    }
    DriftSegmentCentroids seg;
    bool from_segment = bs->segment != NULL && bs->heap != NULL;
    if (from_segment) from_segment = take_segment(bs, &seg);
    DriftMetaPageData meta;
    fill_meta(&meta, bs);
    if (bs->rows > 0 || from_segment) {
        pgstat_progress_update_param(PROGRESS_CREATEIDX_SUBPHASE, DRIFT_PHASE_TRAIN);
        if (from_segment) {
            bs->k = seg.buckets;
            bs->centroids = seg.centroids;
            bs->lo = seg.quantizer;
            bs->scale = seg.quantizer + bs->dim;
            if (bs->nsample > 0) bs->lid = drift::sample_dimension(bs->sample, Min(bs->nsample, uint32(kSampleMin)), bs->dim);
        } else
            train(bs, &meta);
        if (bs->sample != NULL) pfree(bs->sample);
        bs->sample = NULL;

        pgstat_progress_update_param(PROGRESS_CREATEIDX_SUBPHASE, DRIFT_PHASE_ASSIGN);
        pgstat_progress_update_param(PROGRESS_CREATEIDX_TUPLES_TOTAL, int64(bs->rows));
        TupleDesc desc = CreateTemplateTupleDesc(3);
        TupleDescInitEntry(desc, 1, "bucket", INT4OID, -1, 0);
        TupleDescInitEntry(desc, 2, "tid", INT8OID, -1, 0);
        TupleDescInitEntry(desc, 3, "vector", BYTEAOID, -1, 0);
        bs->sort = drift_bucket_sort(desc);
        bs->slot = MakeSingleTupleTableSlot(desc, &TTSOpsVirtual);
        bs->batch_bucket = (uint32 *) palloc(sizeof(uint32) * kAssignBatch);
        bs->batch_dist = (float *) palloc(sizeof(float) * kAssignBatch);
        if (bs->kept != NULL) {
            // Every row was kept: no second pass over the table.
            for (uint32 i = 0; i < bs->nkept; i += kAssignBatch)
                assign_rows(bs, bs->kept + Size(i) * bs->dim, bs->kept_tids + i, Min(kAssignBatch, bs->nkept - i));
            pfree(bs->kept);
            pfree(bs->kept_tids);
            bs->kept = NULL;
        } else {
            bs->batch = (float *) palloc(sizeof(float) * bs->dim * kAssignBatch);
            bs->batch_tids = (ItemPointerData *) palloc(sizeof(ItemPointerData) * kAssignBatch);
            table_index_build_scan(bs->heap, bs->index, indexInfo, true, true, assign_callback, bs, NULL);
            if (bs->nbatch > 0) assign_rows(bs, bs->batch, bs->batch_tids, bs->nbatch);
        }
        tuplesort_performsort(bs->sort);
        ExecDropSingleTupleTableSlot(bs->slot);
        bs->slot = MakeSingleTupleTableSlot(desc, &TTSOpsMinimalTuple);

        pgstat_progress_update_param(PROGRESS_CREATEIDX_SUBPHASE, DRIFT_PHASE_WRITE);
        write_trained(bs, fork, &meta);
        tuplesort_end(bs->sort);
        ExecDropSingleTupleTableSlot(bs->slot);
    } else if (bs->heap != NULL) {
        ereport(NOTICE, (errmsg("drift index \"%s\" was built on no rows", RelationGetRelationName(bs->index)),
                         errdetail("Rows inserted from now on wait in L0 until maintenance trains the index on "
                                   "them, once L0 holds 1000 rows."),
                         errhint("A REINDEX once the table holds representative data gives a better start.")));
    }
    Page mpage = drift_unlogged_edit(mbuf);
    *DriftPageGetMeta(mpage) = meta;
    drift_unlogged_end(mbuf);
    ReleaseBuffer(mbuf);

    if (fork == INIT_FORKNUM || RelationNeedsWAL(bs->index))
        log_newpage_range(bs->index, fork, 0, RelationGetNumberOfBlocksInFork(bs->index, fork), true);
}

// Sets up the plain build state for an index.
static void init_state(BuildState *bs, Relation heap, Relation index) {
    memset(bs, 0, sizeof(*bs));
    bs->heap = heap;
    bs->index = index;
    // The class must read the column's type (checked once, here: inserts
    // and scans then trust the index's class).
    const DriftOpclass *oc = drift_index_opclass(index);
    if (const char *problem = drift_opclass_type_problem(oc, index->rd_opcintype[0]))
        ereport(ERROR, (errcode(ERRCODE_WRONG_OBJECT_TYPE),
                        errmsg("index \"%s\": %s", RelationGetRelationName(index), problem),
                        errhint("Use one of the drift operator classes for the column's type.")));
    bs->metric = oc->metric;
    DriftOptions *opts = (DriftOptions *) index->rd_options;
    int precision = opts ? opts->precision : DRIFT_PRECISION_DEFAULT;
    bs->kind = oc->kind;
    if (precision == DRIFT_PRECISION_HALF) bs->kind = DRIFT_VEC_HALF;
    if (precision == DRIFT_PRECISION_SINGLE) bs->kind = DRIFT_VEC_FLOAT4;
    bs->codes = uint16(opts ? opts->codes : DRIFT_CODES_AUTO);
    bs->rerank = uint16(opts ? opts->rerank : DRIFT_RERANK_INDEX);
    if (bs->rerank == DRIFT_RERANK_HEAP && index->rd_index->indkey.values[0] == 0)
        ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                        errmsg("index \"%s\" cannot re-rank from the table: it indexes an expression",
                               RelationGetRelationName(index)),
                        errhint("Index a column (a generated column can hold the expression), or use rerank = index.")));
    bs->lists = opts ? opts->lists : 0;
    // (a copy: the relcache may parse the options again while the build runs)
    bs->segment = opts && opts->segment != 0 ? pstrdup((const char *) opts + opts->segment) : NULL;
    if (bs->segment != NULL && bs->lists != 0)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("index \"%s\" cannot take both lists and segment", RelationGetRelationName(index)),
                        errhint("An index started from a segment has the segment's buckets: drop the lists option.")));
    bs->clip = opts ? float(opts->clip_percentile) : 1.0f;
    bs->rng.state = kBuildSeed;
    // Threads for k-means and assignment: one, plus as many as a parallel
    // build may have workers (the table's parallel_workers if set, else
    // max_parallel_maintenance_workers), up to the machine's cores. (Not
    // scaled by the table's size, as a parallel heap scan is: the work is
    // the vectors' arithmetic, and large vectors live out of line.)
    int workers = heap != NULL ? RelationGetParallelWorkers(heap, max_parallel_maintenance_workers) : 0;
    bs->threads = Min(drift::hardware_threads(), unsigned(1 + Max(0, Min(workers, max_parallel_maintenance_workers))));
    bs->tmpctx = AllocSetContextCreate(CurrentMemoryContext, "drift build row", ALLOCSET_DEFAULT_SIZES);
}

IndexBuildResult *drift_ambuild(Relation heap, Relation index, IndexInfo *indexInfo) {
    return drift_guard("build", [&]() -> IndexBuildResult * {
        if (RelationGetNumberOfBlocks(index) != 0)
            elog(ERROR, "index \"%s\" already contains data", RelationGetRelationName(index));
        BuildState bs;
        init_state(&bs, heap, index);
        build_index(&bs, indexInfo, MAIN_FORKNUM);
        MemoryContextDelete(bs.tmpctx);
        IndexBuildResult *res = (IndexBuildResult *) palloc(sizeof(IndexBuildResult));
        res->heap_tuples = bs.rows;
        res->index_tuples = bs.rows;
        return res;
    });
}

void drift_ambuildempty(Relation index) {
    return drift_guard("build", [&]() -> void {
        BuildState bs;
        init_state(&bs, NULL, index);
        build_index(&bs, NULL, INIT_FORKNUM);
        MemoryContextDelete(bs.tmpctx);
    });
}
