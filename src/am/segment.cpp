// SQL functions over .drift segment files (docs/segments.md): export an
// index's rows, describe a file, read its rows back, look up an id; and
// the opening of a segment the build uses to start an index from its
// centroids. The file itself is src/storage/segment.cpp's.
#include "drift.h"

#include "../core/codes.hpp"
#include "../core/distance.hpp"
#include "../core/kmeans.hpp"
#include "../core/parallel.hpp"
#include "../storage/segment.hpp"

extern "C" {
#include <fcntl.h>
#include <sys/stat.h>

#include "access/relation.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/index.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_type.h"
#include "executor/executor.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "storage/fd.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/tuplesort.h"

PG_FUNCTION_INFO_V1(drift_export_segment);
Datum drift_export_segment(PG_FUNCTION_ARGS);
PG_FUNCTION_INFO_V1(drift_segment_info);
Datum drift_segment_info(PG_FUNCTION_ARGS);
PG_FUNCTION_INFO_V1(drift_segment_rows);
Datum drift_segment_rows(PG_FUNCTION_ARGS);
PG_FUNCTION_INFO_V1(drift_segment_contains);
Datum drift_segment_contains(PG_FUNCTION_ARGS);
}

// Rows whose buckets the export finds at once.
static const uint32 kExportBatch = 1024;

// The C++ objects of one open segment file, deleted when their memory
// context goes (at the end of the call, or by an ERROR's cleanup), which
// also removes an export's unfinished file.
struct DriftSegmentFile {
    int fd;
    drift::FdSource *src;
    drift::SegmentReader *reader;
    drift::SegmentWriter *writer;
    drift::SegmentBlock *block; /* the rows of the block last read */
    char *partial; /* an export's file until it is renamed into place */
    MemoryContextCallback cb;
};

// Deletes what a DriftSegmentFile holds (a memory context reset callback).
static void segment_file_release(void *arg) {
    DriftSegmentFile *f = (DriftSegmentFile *) arg;
    delete f->reader;
    delete f->writer;
    delete f->block;
    delete f->src;
    f->reader = NULL;
    f->writer = NULL;
    f->block = NULL;
    f->src = NULL;
    if (f->partial) unlink(f->partial);
}

// A DriftSegmentFile in memory context cxt, released with it.
static DriftSegmentFile *segment_file_new(MemoryContext cxt) {
    DriftSegmentFile *f = (DriftSegmentFile *) MemoryContextAllocZero(cxt, sizeof(DriftSegmentFile));
    f->fd = -1;
    f->cb.func = segment_file_release;
    f->cb.arg = f;
    MemoryContextRegisterResetCallback(cxt, &f->cb);
    return f;
}

// The ERROR for a malformed segment file.
static void segment_malformed(const char *path, const char *msg) {
    ereport(ERROR, (errcode(ERRCODE_DATA_CORRUPTED), errmsg("\"%s\" is not a valid drift segment: %s", path, msg),
                    errhint("The file is damaged, truncated or not a .drift segment (drift-segment verify checks a "
                            "file); export the index again.")));
}

// Runs fn (C++ only: no PostgreSQL call inside); a malformed file raises
// the malformed-file ERROR for path, other exceptions an ERROR as
// drift_guard does.
template <class F>
static void segment_run(const char *path, F &&fn) {
    char msg[512];
    bool ok = true;
    drift_guard("segment file", [&]() -> void {
        try {
            fn();
        } catch (const drift::SegmentError &e) {
            ok = false;
            snprintf(msg, sizeof(msg), "%s", e.what());
        }
    });
    if (!ok) segment_malformed(path, msg);
}

// Checks that the user may read (or write) server files and that path is
// absolute, as COPY does for a file.
static void segment_check_path(const char *path, bool write) {
    Oid role = write ? ROLE_PG_WRITE_SERVER_FILES : ROLE_PG_READ_SERVER_FILES;
    if (!superuser() && !has_privs_of_role(GetUserId(), role))
        ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
                        errmsg("permission denied to %s segment file \"%s\"", write ? "write" : "read", path),
                        errhint("Only superusers and roles with privileges of the %s role may %s files on the "
                                "server, as for COPY %s a file.",
                                write ? "pg_write_server_files" : "pg_read_server_files", write ? "write" : "read",
                                write ? "TO" : "FROM")));
    if (!is_absolute_path(path))
        ereport(ERROR, (errcode(ERRCODE_INVALID_NAME), errmsg("relative path not allowed for a segment file: \"%s\"", path),
                        errhint("Give the file's absolute path on the database server.")));
}

// Opens a segment file for reading and checks its footer, header, metadata
// and Bloom filter; the reader lives in f.
static void segment_open(DriftSegmentFile *f, const char *path) {
    segment_check_path(path, false);
    // (non-blocking, so a FIFO cannot hang the open; refused just below)
    f->fd = OpenTransientFile(path, O_RDONLY | O_NONBLOCK | PG_BINARY);
    if (f->fd < 0)
        ereport(ERROR, (errcode_for_file_access(), errmsg("could not open segment file \"%s\": %m", path)));
    struct stat st;
    if (fstat(f->fd, &st) != 0)
        ereport(ERROR, (errcode_for_file_access(), errmsg("could not stat segment file \"%s\": %m", path)));
    if (!S_ISREG(st.st_mode))
        ereport(ERROR, (errcode(ERRCODE_WRONG_OBJECT_TYPE), errmsg("\"%s\" is not a regular file", path),
                        errhint("Name a .drift file written by drift_export_segment.")));
    segment_run(path, [&]() {
        f->src = new drift::FdSource(f->fd);
        f->reader = new drift::SegmentReader(*f->src);
    });
}

// Ends a file's use: closes it and releases its objects.
static void segment_close(DriftSegmentFile *f) {
    segment_file_release(f);
    if (f->fd >= 0) CloseTransientFile(f->fd);
    f->fd = -1;
}

const char *drift_metric_name(drift::Metric m) {
    return m == drift::Metric::L2 ? "l2" : m == drift::Metric::InnerProduct ? "inner_product" : "cosine";
}

// The name of a code kind.
static const char *codes_name(uint16 kind) { return kind == DRIFT_CODE_RABITQ ? "rabitq" : "sq8"; }

// A name from a segment's metadata (UTF-8) in the server's encoding; an
// ERROR if it is not valid UTF-8.
static const char *segment_name(const std::string &s) {
    char *copy = pnstrdup(s.data(), s.size());
    if (memchr(s.data(), 0, s.size()) != NULL || !pg_verify_mbstr(PG_UTF8, copy, int(s.size()), true))
        ereport(ERROR, (errcode(ERRCODE_DATA_CORRUPTED), errmsg("a segment's name is not valid UTF-8"),
                        errhint("The file is damaged; export the index again.")));
    return pg_any_to_server(copy, int(s.size()), PG_UTF8);
}

// The kind of a segment's ids, by name.
static const char *ids_name(drift::SegmentIds k) {
    return k == drift::SegmentIds::PrimaryKey ? "primary_key" : k == drift::SegmentIds::Column ? "column" : "tid";
}

// The id column the export uses: the column named, else the table's
// single-column integer primary key, else none (0: the rows' TIDs).
static AttrNumber export_id_column(Relation heap, const char *named, drift::SegmentIds *kind) {
    AttrNumber attno = InvalidAttrNumber;
    if (named != NULL) {
        attno = get_attnum(RelationGetRelid(heap), named);
        if (attno == InvalidAttrNumber || attno < 0)
            ereport(ERROR, (errcode(ERRCODE_UNDEFINED_COLUMN),
                            errmsg("column \"%s\" of table \"%s\" does not exist", named, RelationGetRelationName(heap))));
        *kind = drift::SegmentIds::Column;
    } else {
        Oid pk = RelationGetPrimaryKeyIndex(heap);
        if (OidIsValid(pk)) {
            Relation pkrel = index_open(pk, AccessShareLock);
            if (pkrel->rd_index->indnatts == 1 && pkrel->rd_index->indkey.values[0] > 0) {
                AttrNumber a = pkrel->rd_index->indkey.values[0];
                Oid t = TupleDescAttr(RelationGetDescr(heap), a - 1)->atttypid;
                if (t == INT2OID || t == INT4OID || t == INT8OID) attno = a;
            }
            index_close(pkrel, AccessShareLock);
        }
        *kind = attno != InvalidAttrNumber ? drift::SegmentIds::PrimaryKey : drift::SegmentIds::Tid;
        return attno;
    }
    Oid t = TupleDescAttr(RelationGetDescr(heap), attno - 1)->atttypid;
    if (t != INT2OID && t != INT4OID && t != INT8OID)
        ereport(ERROR, (errcode(ERRCODE_DATATYPE_MISMATCH),
                        errmsg("column \"%s\" is of type %s, not an integer", named, format_type_be(t)),
                        errhint("Name a smallint, integer or bigint column for the ids, or none to use the table's "
                                "integer primary key or the rows' TIDs.")));
    return attno;
}

// One row's id: its id column's value, or its TID packed into 48 bits.
static int64 export_row_id(TupleTableSlot *slot, AttrNumber attno, const char *table) {
    if (attno == InvalidAttrNumber)
        return int64(ItemPointerGetBlockNumber(&slot->tts_tid)) << 16 | ItemPointerGetOffsetNumber(&slot->tts_tid);
    bool isnull;
    Datum d = slot_getattr(slot, attno, &isnull);
    if (isnull)
        ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
                        errmsg("a row of table \"%s\" has no id: its id column is NULL", table),
                        errhint("Name a NOT NULL integer column for the ids, or none to use the rows' TIDs.")));
    Oid t = TupleDescAttr(slot->tts_tupleDescriptor, attno - 1)->atttypid;
    return t == INT8OID ? DatumGetInt64(d) : t == INT4OID ? int64(DatumGetInt32(d)) : int64(DatumGetInt16(d));
}

// State of an export's pass over the table.
struct ExportState {
    uint32 dim, nb;
    drift::Metric metric;
    const float *centroids; /* the live buckets' centroids */
    unsigned threads;
    float *raw, *unit; /* kExportBatch rows as read, and as the index sees them */
    int64 *ids;
    uint32 n;
    uint32 *bucket;
    float *dist;
    Tuplesortstate *sort;
    TupleTableSlot *sslot;
    int64 rows;
};

// Finds the buckets of the batch's rows and sends them to the sort.
static void export_batch(ExportState *x) {
    if (x->n == 0) return;
    drift_guard("segment export", [&]() -> void {
        drift::nearest_centroids(x->unit, x->n, x->centroids, x->nb, x->dim, x->bucket, x->dist, x->threads);
    });
    bytea *vb = (bytea *) palloc(VARHDRSZ + sizeof(float) * x->dim);
    SET_VARSIZE(vb, VARHDRSZ + sizeof(float) * x->dim);
    for (uint32 i = 0; i < x->n; i++) {
        memcpy(VARDATA(vb), x->raw + Size(i) * x->dim, sizeof(float) * x->dim);
        ExecClearTuple(x->sslot);
        x->sslot->tts_values[0] = Int32GetDatum(int32(x->bucket[i]));
        x->sslot->tts_values[1] = Int64GetDatum(x->rows - x->n + i);
        x->sslot->tts_values[2] = Int64GetDatum(x->ids[i]);
        x->sslot->tts_values[3] = PointerGetDatum(vb);
        memset(x->sslot->tts_isnull, 0, 4 * sizeof(bool));
        ExecStoreVirtualTuple(x->sslot);
        tuplesort_puttupleslot(x->sort, x->sslot);
    }
    pfree(vb);
    x->n = 0;
}

Datum drift_export_segment(PG_FUNCTION_ARGS) {
    if (PG_ARGISNULL(0) || PG_ARGISNULL(1)) PG_RETURN_NULL();
    Oid indexoid = PG_GETARG_OID(0);
    char *path = text_to_cstring(PG_GETARG_TEXT_PP(1));
    char *id_name = PG_ARGISNULL(2) ? NULL : NameStr(*PG_GETARG_NAME(2));
    segment_check_path(path, true);
    Relation index = drift_open_index(indexoid, AccessShareLock, DRIFT_ACCESS_QUERY);
    Relation heap = table_open(index->rd_index->indrelid, AccessShareLock);
    drift::SegmentIds ids;
    AttrNumber id_attno = export_id_column(heap, id_name, &ids);
    // (info may be rebuilt by the time the rows are read: what is needed of
    // it is copied now)
    DriftInfo *info = drift_info(index);
    const DriftMetaPageData &meta = info->meta;
    uint16 code_kind = meta.code_kind, code_bytes = meta.code_bytes;
    if (!(meta.flags & DRIFT_META_TRAINED))
        ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                        errmsg("index \"%s\" has no centroids yet", RelationGetRelationName(index)),
                        errhint("A segment carries an index's centroids: REINDEX once the table holds rows, or let "
                                "maintenance train the index (it does once L0 holds 1000 rows).")));
    MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext, "drift segment export", ALLOCSET_DEFAULT_SIZES);
    MemoryContext old = MemoryContextSwitchTo(cxt);

    // The live buckets, in directory order: a segment's buckets 0..nb-1.
    ExportState x;
    memset(&x, 0, sizeof(x));
    x.dim = meta.dim;
    x.metric = info->metric;
    float *centroids = (float *) palloc(sizeof(float) * Max(meta.nbuckets, 1) * x.dim);
    for (uint32 b = 0; b < meta.nbuckets; b++)
        if (info->heads[b] != InvalidBlockNumber)
            memcpy(centroids + Size(x.nb++) * x.dim, info->centroids + Size(b) * x.dim, sizeof(float) * x.dim);
    float *quant = (float *) palloc(sizeof(float) * 2 * x.dim);
    memcpy(quant, info->quant, sizeof(float) * 2 * x.dim);
    x.centroids = centroids;
    x.threads = Min(drift::hardware_threads(), unsigned(1 + Max(0, max_parallel_maintenance_workers)));
    x.raw = (float *) palloc(sizeof(float) * x.dim * kExportBatch);
    x.unit = (float *) palloc(sizeof(float) * x.dim * kExportBatch);
    x.ids = (int64 *) palloc(sizeof(int64) * kExportBatch);
    x.bucket = (uint32 *) palloc(sizeof(uint32) * kExportBatch);
    x.dist = (float *) palloc(sizeof(float) * kExportBatch);

    TupleDesc desc = CreateTemplateTupleDesc(4);
    TupleDescInitEntry(desc, 1, "bucket", INT4OID, -1, 0);
    TupleDescInitEntry(desc, 2, "seq", INT8OID, -1, 0);
    TupleDescInitEntry(desc, 3, "id", INT8OID, -1, 0);
    TupleDescInitEntry(desc, 4, "vector", BYTEAOID, -1, 0);
    x.sort = drift_bucket_sort(desc);
    x.sslot = MakeSingleTupleTableSlot(desc, &TTSOpsVirtual);

    // The rows the calling statement's snapshot sees, each once, as the
    // index reads them (its expression and predicate, if any).
    IndexInfo *ii = BuildIndexInfo(index);
    EState *estate = CreateExecutorState();
    ExprContext *econtext = GetPerTupleExprContext(estate);
    TupleTableSlot *slot = table_slot_create(heap, NULL);
    econtext->ecxt_scantuple = slot;
    ExprState *predicate = ExecPrepareQual(ii->ii_Predicate, estate);
    const DriftOpclass *oc = drift_index_opclass(index);
    TableScanDesc scan = table_beginscan(heap, GetActiveSnapshot(), 0, NULL);
    while (table_scan_getnextslot(scan, ForwardScanDirection, slot)) {
        CHECK_FOR_INTERRUPTS();
        ResetPerTupleExprContext(estate);
        if (predicate != NULL && !ExecQual(predicate, econtext)) continue;
        Datum values[INDEX_MAX_KEYS];
        bool isnull[INDEX_MAX_KEYS];
        FormIndexDatum(ii, slot, estate, values, isnull);
        if (isnull[0]) continue;
        MemoryContext rowcxt = MemoryContextSwitchTo(GetPerTupleMemoryContext(estate));
        int n;
        float *v = oc->read(values[0], &n);
        MemoryContextSwitchTo(rowcxt);
        if (uint32(n) != x.dim)
            ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION),
                            errmsg("a row of table \"%s\" has %d dimensions, but index \"%s\" has %u",
                                   RelationGetRelationName(heap), n, RelationGetRelationName(index), x.dim)));
        x.ids[x.n] = export_row_id(slot, id_attno, RelationGetRelationName(heap));
        memcpy(x.raw + Size(x.n) * x.dim, v, sizeof(float) * x.dim);
        memcpy(x.unit + Size(x.n) * x.dim, v, sizeof(float) * x.dim);
        if (x.metric == drift::Metric::Cosine) drift::normalize(x.unit + Size(x.n) * x.dim, x.dim);
        x.n++;
        x.rows++;
        if (x.n == kExportBatch) export_batch(&x);
    }
    export_batch(&x);
    table_endscan(scan);
    ExecDropSingleTupleTableSlot(slot);
    FreeExecutorState(estate);
    tuplesort_performsort(x.sort);
    ExecDropSingleTupleTableSlot(x.sslot);
    x.sslot = MakeSingleTupleTableSlot(desc, &TTSOpsMinimalTuple);

    // The file, written beside its final name and renamed into place.
    DriftSegmentFile *f = segment_file_new(cxt);
    f->partial = psprintf("%s.partial.%d", path, MyProcPid);
    f->fd = OpenTransientFile(f->partial, O_WRONLY | O_CREAT | O_TRUNC | PG_BINARY);
    if (f->fd < 0)
        ereport(ERROR, (errcode_for_file_access(), errmsg("could not create segment file \"%s\": %m", f->partial)));
    drift::SegmentHeader h;
    h.dim = x.dim;
    h.metric = x.metric;
    h.code_kind = code_kind;
    h.buckets = x.nb;
    h.ids = ids;
    h.rows = uint64(x.rows);
    h.created_us = uint64(GetCurrentTimestamp() + (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * USECS_PER_DAY);
    // (names are stored in UTF-8)
    const char *index_name = RelationGetRelationName(index);
    const char *id_label = id_attno != InvalidAttrNumber ? get_attname(RelationGetRelid(heap), id_attno, false) : "";
    index_name = pg_server_to_any(index_name, int(strlen(index_name)), PG_UTF8);
    id_label = pg_server_to_any(id_label, int(strlen(id_label)), PG_UTF8);
    segment_run(path, [&]() {
        f->writer = new drift::SegmentWriter(f->fd, h, quant, centroids, index_name, id_label);
    });
    drift::Quantizer base{drift::CodeKind(code_kind), x.dim, quant, quant + x.dim};
    DriftCentre centre = {NULL, NULL};
    drift::Quantizer q = base;
    uint8 *code = (uint8 *) palloc(code_bytes);
    float *unit = (float *) palloc(sizeof(float) * x.dim);
    int64 cur = -1, done = 0;
    while (tuplesort_gettupleslot(x.sort, true, false, x.sslot, NULL)) {
        bool isnull;
        uint32 b = uint32(DatumGetInt32(slot_getattr(x.sslot, 1, &isnull)));
        int64 id = DatumGetInt64(slot_getattr(x.sslot, 3, &isnull));
        bytea *vb = DatumGetByteaPP(slot_getattr(x.sslot, 4, &isnull));
        const float *v = (const float *) VARDATA_ANY(vb);
        if (int64(b) != cur) {
            drift_free_centre(&centre);
            q = drift_chain_quantizer(base, centroids + Size(b) * x.dim, &centre);
            cur = b;
        }
        // (normalized again rather than sorted beside the row as read)
        memcpy(unit, v, sizeof(float) * x.dim);
        if (x.metric == drift::Metric::Cosine) drift::normalize(unit, x.dim);
        segment_run(path, [&]() {
            drift::encode(q, unit, code);
            f->writer->add(b, id, v, code);
        });
        if ((++done & 1023) == 0) CHECK_FOR_INTERRUPTS();
    }
    drift_free_centre(&centre);
    tuplesort_end(x.sort);
    uint64 bytes = 0;
    segment_run(path, [&]() { bytes = f->writer->finish(); });
    if (pg_fsync(f->fd) != 0)
        ereport(ERROR, (errcode_for_file_access(), errmsg("could not fsync segment file \"%s\": %m", f->partial)));
    CloseTransientFile(f->fd);
    f->fd = -1;
    durable_rename(f->partial, path, ERROR);
    f->partial = NULL;
    MemoryContextSwitchTo(old);
    MemoryContextDelete(cxt);
    table_close(heap, AccessShareLock);
    relation_close(index, AccessShareLock);

    TupleDesc rdesc;
    if (get_call_result_type(fcinfo, NULL, &rdesc) != TYPEFUNC_COMPOSITE) elog(ERROR, "return type must be a row type");
    Datum rv[2] = {Int64GetDatum(x.rows), Int64GetDatum(int64(bytes))};
    bool rn[2] = {false, false};
    PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(rdesc), rv, rn)));
}

Datum drift_segment_info(PG_FUNCTION_ARGS) {
    char *path = text_to_cstring(PG_GETARG_TEXT_PP(0));
    MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext, "drift segment info", ALLOCSET_DEFAULT_SIZES);
    DriftSegmentFile *f = segment_file_new(cxt);
    segment_open(f, path);
    drift::SegmentReader *r = f->reader;
    const drift::SegmentHeader &h = r->header();
    const drift::SegmentLayout &l = r->layout();
    char problem[512];
    drift::SegmentCodecCounts counts;
    drift_guard("segment file", [&]() -> void {
        std::string p = drift::segment_verify(*f->src, &counts, drift_interrupt());
        snprintf(problem, sizeof(problem), "%s", p.c_str());
    });
    bool ok = problem[0] == '\0';
    TupleDesc desc;
    if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE) elog(ERROR, "return type must be a row type");
    uint64 cold = l.meta_offset - l.cold_offset, raw = h.rows * h.dim * sizeof(float);
    Datum v[22];
    bool nulls[22] = {false};
    v[0] = Int32GetDatum(int32(drift::kSegmentVersion));
    v[1] = TimestampTzGetDatum(TimestampTz(h.created_us) - (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * USECS_PER_DAY);
    v[2] = CStringGetTextDatum(segment_name(r->index_name()));
    v[3] = CStringGetTextDatum(ids_name(h.ids));
    v[4] = CStringGetTextDatum(segment_name(r->id_name()));
    nulls[4] = r->id_name().empty();
    v[5] = Int32GetDatum(int32(h.dim));
    v[6] = CStringGetTextDatum(drift_metric_name(h.metric));
    v[7] = CStringGetTextDatum(codes_name(h.code_kind));
    v[8] = Int64GetDatum(int64(h.rows));
    v[9] = Int32GetDatum(int32(h.buckets));
    v[10] = Int64GetDatum(int64(l.file_bytes));
    v[11] = Int64GetDatum(int64(l.cold_offset - l.hot_offset));
    v[12] = Int64GetDatum(int64(cold));
    v[13] = Int64GetDatum(int64(l.bloom_offset - l.meta_offset));
    v[14] = Int64GetDatum(int64(l.file_bytes - drift::kSegmentFooterBytes - l.bloom_offset));
    v[15] = Int64GetDatum(int64(raw));
    v[16] = Float8GetDatum(cold > 0 ? double(raw) / double(cold) : 0.0);
    nulls[16] = cold == 0;
    v[17] = Int64GetDatum(int64(counts.alp));
    v[18] = Int64GetDatum(int64(counts.alp_rd));
    v[19] = Int64GetDatum(int64(counts.raw));
    v[20] = BoolGetDatum(ok);
    v[21] = ok ? (Datum) 0 : CStringGetTextDatum(problem);
    nulls[21] = ok;
    // (counts are of the blocks read: all of them when every checksum holds)
    HeapTuple tuple = heap_form_tuple(BlessTupleDesc(desc), v, nulls);
    segment_close(f);
    MemoryContextDelete(cxt);
    PG_RETURN_DATUM(HeapTupleGetDatum(tuple));
}

Datum drift_segment_rows(PG_FUNCTION_ARGS) {
    char *path = text_to_cstring(PG_GETARG_TEXT_PP(0));
    ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
    InitMaterializedSRF(fcinfo, 0);
    MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext, "drift segment rows", ALLOCSET_DEFAULT_SIZES);
    MemoryContext rowcxt = AllocSetContextCreate(cxt, "drift segment row", ALLOCSET_DEFAULT_SIZES);
    DriftSegmentFile *f = segment_file_new(cxt);
    segment_open(f, path);
    uint32 dim = f->reader->header().dim;
    segment_run(path, [&]() { f->block = new drift::SegmentBlock(); });
    drift::SegmentBlock *block = f->block;
    Datum *elems = (Datum *) MemoryContextAlloc(cxt, sizeof(Datum) * dim);
    for (;;) {
        CHECK_FOR_INTERRUPTS();
        bool more = false;
        segment_run(path, [&]() { more = f->reader->next(block); });
        if (!more) break;
        for (uint32 i = 0; i < block->rows; i++) {
            MemoryContext old = MemoryContextSwitchTo(rowcxt);
            for (uint32 d = 0; d < dim; d++) elems[d] = Float4GetDatum(block->vectors[Size(i) * dim + d]);
            Datum v[3] = {Int64GetDatum(block->ids[i]), Int32GetDatum(int32(block->bucket)),
                          PointerGetDatum(construct_array(elems, int(dim), FLOAT4OID, sizeof(float4), true, TYPALIGN_INT))};
            bool nulls[3] = {false, false, false};
            MemoryContextSwitchTo(old);
            tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, v, nulls);
            MemoryContextReset(rowcxt);
        }
    }
    segment_close(f);
    MemoryContextDelete(cxt);
    return (Datum) 0;
}

Datum drift_segment_contains(PG_FUNCTION_ARGS) {
    char *path = text_to_cstring(PG_GETARG_TEXT_PP(0));
    int64 id = PG_GETARG_INT64(1);
    MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext, "drift segment lookup", ALLOCSET_DEFAULT_SIZES);
    DriftSegmentFile *f = segment_file_new(cxt);
    segment_open(f, path);
    bool maybe = false;
    segment_run(path, [&]() { maybe = f->reader->maybe_contains(id); });
    segment_close(f);
    MemoryContextDelete(cxt);
    PG_RETURN_BOOL(maybe);
}

void drift_segment_load(const char *path, DriftSegmentCentroids *out) {
    MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext, "drift segment centroids", ALLOCSET_DEFAULT_SIZES);
    DriftSegmentFile *f = segment_file_new(cxt);
    segment_open(f, path);
    const drift::SegmentHeader &h = f->reader->header();
    if (h.buckets == 0)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("segment \"%s\" has no centroids", path),
                        errhint("Export a trained index.")));
    out->dim = h.dim;
    out->metric = h.metric;
    out->code_kind = h.code_kind;
    out->buckets = h.buckets;
    out->rows = h.rows;
    out->quantizer = (float *) MemoryContextAllocHuge(CurrentMemoryContext, sizeof(float) * 2 * h.dim);
    out->centroids = (float *) MemoryContextAllocHuge(CurrentMemoryContext, sizeof(float) * Size(h.buckets) * h.dim);
    memcpy(out->quantizer, f->reader->quantizer(), sizeof(float) * 2 * h.dim);
    memcpy(out->centroids, f->reader->centroids(), sizeof(float) * Size(h.buckets) * h.dim);
    segment_close(f);
    MemoryContextDelete(cxt);
}
