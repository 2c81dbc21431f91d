// drift_index_stats(regclass) and drift_buckets(regclass): what an index
// holds and what maintenance has done, read from its pages.
#include "drift.h"

#include "../storage/buffers.h"
#include "../storage/cursor.h"
#include "../storage/directory.h"

extern "C" {
#include "access/htup_details.h"
#include "access/relation.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

PG_FUNCTION_INFO_V1(drift_index_stats);
Datum drift_index_stats(PG_FUNCTION_ARGS);
PG_FUNCTION_INFO_V1(drift_buckets);
Datum drift_buckets(PG_FUNCTION_ARGS);
}

// Counts live and freed slots and pages of bucket chain `chain` from head.
static void count_chain(Relation index, const DriftMetaPageData *meta, BlockNumber head, uint32 chain, uint64 *live,
                        uint64 *freed, uint64 *pages) {
    DriftCursor c;
    drift_cursor_begin(&c, index, head, DRIFT_PAGE_HOT, chain, meta, BUFFER_LOCK_SHARE);
    for (Page page; (page = drift_cursor_next(&c)) != NULL;) {
        DriftHotHeader *h = drift_hot_header(page);
        *live += h->nlive;
        *freed += h->nslots - h->nlive;
        *pages += 1 + h->ncold;
    }
}

Datum drift_index_stats(PG_FUNCTION_ARGS) {
    return drift_guard("drift_index_stats", [&]() -> Datum {
        Relation index = drift_open_index(PG_GETARG_OID(0), AccessShareLock, DRIFT_ACCESS_INSPECT);
        DriftDirectory dir;
        drift_read_directory(index, &dir, false);
        const DriftMetaPageData &meta = dir.meta;

        uint64 live = 0, freed = 0, l0 = 0, l0_pages = 0, bucket_pages = 0, minb = 0, maxb = 0;
        DriftCursor c;
        drift_cursor_begin(&c, index, meta.l0_head, DRIFT_PAGE_L0, 0, &meta, BUFFER_LOCK_SHARE);
        for (Page page; (page = drift_cursor_next(&c)) != NULL;) {
            DriftVecHeader *h = drift_vec_header(page);
            l0 += h->nlive;
            freed += h->nslots - h->nlive;
            l0_pages++;
        }
        bool first = true;
        for (uint32 b = 0; b < meta.nbuckets; b++) {
            const DriftDirEntryData &e = dir.entries[b];
            if (e.chain == 0) continue;
            uint64 blive = 0;
            count_chain(index, &meta, e.head, e.chain, &blive, &freed, &bucket_pages);
            minb = first ? blive : Min(minb, blive);
            maxb = Max(maxb, blive);
            first = false;
            live += blive;
        }
        BlockNumber pages = RelationGetNumberOfBlocks(index);
        uint64 in_graph = drift_memtable_rows(index, &meta);
        double recall = 0;
        uint64 samples = 0;
        bool measured = drift_monitor_recall(index, &recall, &samples);
        relation_close(index, AccessShareLock);

        TupleDesc desc;
        if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE) elog(ERROR, "return type must be a row type");
        Datum v[27];
        bool nulls[27] = {false};
        v[0] = Int32GetDatum(int32(meta.dim));
        v[1] = CStringGetTextDatum(meta.metric >= 1 && meta.metric <= 3 ? drift_metric_name(drift::Metric(meta.metric)) : "?");
        v[2] = Int32GetDatum(int32(meta.live_buckets));
        v[3] = BoolGetDatum((meta.flags & DRIFT_META_TRAINED) != 0);
        v[4] = Int64GetDatum(int64(live + l0));
        v[5] = Int64GetDatum(int64(freed));
        v[6] = Int64GetDatum(int64(l0));
        v[7] = Int64GetDatum(int64(l0_pages));
        v[8] = Int64GetDatum(int64(pages));
        v[9] = Int64GetDatum(int64(pages) * BLCKSZ);
        v[10] = Int64GetDatum(int64(minb));
        v[11] = Float8GetDatum(meta.live_buckets ? double(live) / meta.live_buckets : 0.0);
        v[12] = Int64GetDatum(int64(maxb));
        if (first) nulls[10] = nulls[11] = nulls[12] = true;
        v[13] = Int64GetDatum(int64(meta.flushes));
        v[14] = Int64GetDatum(int64(meta.flushed_rows));
        v[15] = Int64GetDatum(int64(meta.splits));
        v[16] = Int64GetDatum(int64(meta.merges));
        v[17] = Int64GetDatum(int64(meta.compactions));
        v[18] = Int64GetDatum(int64(meta.stolen));
        v[19] = Int32GetDatum(int32(meta.nretired));
        v[20] = TimestampTzGetDatum(TimestampTz(meta.last_maintenance));
        nulls[20] = meta.last_maintenance == 0;
        v[21] = Int32GetDatum(int32(meta.requantized + ((meta.flags & DRIFT_META_TRAINED) ? 1 : 0)));
        v[22] = Int64GetDatum(int64(in_graph));
        v[23] = Float8GetDatum(recall);
        nulls[23] = !measured;
        v[24] = Int64GetDatum(int64(samples));
        v[25] = Float8GetDatum(drift_lid_load(meta.data_lid));
        nulls[25] = meta.data_lid == 0;
        v[26] = CStringGetTextDatum(meta.code_kind == DRIFT_CODE_RABITQ ? "rabitq" : "sq8");
        nulls[26] = meta.dim == 0;  // (the kind is fixed with the dimension)
        PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(desc, v, nulls)));
    });
}

Datum drift_buckets(PG_FUNCTION_ARGS) {
    return drift_guard("drift_buckets", [&]() -> Datum {
        InitMaterializedSRF(fcinfo, 0);
        ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
        Relation index = drift_open_index(PG_GETARG_OID(0), AccessShareLock, DRIFT_ACCESS_INSPECT);
        DriftDirectory dir;
        drift_read_directory(index, &dir, false);
        for (uint32 b = 0; b < dir.meta.nbuckets; b++) {
            const DriftDirEntryData &e = dir.entries[b];
            if (e.chain == 0) continue;
            uint64 live = 0, freed = 0, pages = 0;
            count_chain(index, &dir.meta, e.head, e.chain, &live, &freed, &pages);
            Datum v[8] = {Int32GetDatum(int32(b)),        Int64GetDatum(int64(live)),
                          Int64GetDatum(int64(e.ndead)),  Int64GetDatum(int64(freed)),
                          Int64GetDatum(int64(pages)),    Float8GetDatum(e.temperature),
                          Float8GetDatum(e.radius),       Float8GetDatum(e.moved)};
            bool nulls[8] = {false};
            tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, v, nulls);
        }
        relation_close(index, AccessShareLock);
        return (Datum) 0;
    });
}
