// drift_index_stats(regclass) and drift_buckets(regclass): what an index
// holds and what maintenance has done, read from its pages.
#include "drift.h"

#include "../storage/buffers.h"

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

// Counts live and freed slots and pages of one bucket chain.
static void count_chain(Relation index, const DriftMetaPageData *meta, BlockNumber head, uint64 *live, uint64 *freed,
                        uint64 *pages) {
    for (BlockNumber blkno = head; blkno != InvalidBlockNumber;) {
        Buffer buf = drift_read_locked(index, blkno, BUFFER_LOCK_SHARE, DRIFT_PAGE_HOT, meta);
        DriftHotHeader *h = drift_hot_header(BufferGetPage(buf));
        *live += h->nlive;
        *freed += h->nslots - h->nlive;
        *pages += 1 + h->ncold;
        blkno = DriftPageGetOpaque(BufferGetPage(buf))->next;
        UnlockReleaseBuffer(buf);
    }
}

// Calls fn(b, entry) for every bucket in use, outside any page lock.
template <class F>
static void each_bucket(Relation index, const DriftMetaPageData *meta, F fn) {
    uint32 b = 0;
    Size stride = drift_dir_stride(meta->dim);
    for (BlockNumber blkno = meta->dir_head; blkno != InvalidBlockNumber;) {
        Buffer buf = drift_read_locked(index, blkno, BUFFER_LOCK_SHARE, DRIFT_PAGE_DIR, meta);
        Page page = BufferGetPage(buf);
        uint32 n = drift_dir_header(page)->nentries;
        char *copy = (char *) palloc(stride * Max(n, 1));
        memcpy(copy, drift_dir_entry(page, meta->dim, 0), stride * n);
        blkno = DriftPageGetOpaque(page)->next;
        UnlockReleaseBuffer(buf);
        for (uint32 i = 0; i < n; i++, b++) {
            DriftDirEntry e = (DriftDirEntry) (copy + stride * i);
            if (e->chain != 0) fn(b, e);
        }
        pfree(copy);
    }
}

Datum drift_index_stats(PG_FUNCTION_ARGS) {
    return drift_guard("drift_index_stats", [&]() -> Datum {
        Relation index = drift_open_index(PG_GETARG_OID(0), AccessShareLock);
        DriftMetaPageData meta;
        drift_read_meta(index, &meta);

        uint64 live = 0, freed = 0, l0 = 0, l0_pages = 0, bucket_pages = 0, minb = 0, maxb = 0;
        for (BlockNumber blkno = meta.l0_head; blkno != InvalidBlockNumber;) {
            Buffer buf = drift_read_locked(index, blkno, BUFFER_LOCK_SHARE, DRIFT_PAGE_L0, &meta);
            DriftVecHeader *h = drift_vec_header(BufferGetPage(buf));
            l0 += h->nlive;
            freed += h->nslots - h->nlive;
            l0_pages++;
            blkno = DriftPageGetOpaque(BufferGetPage(buf))->next;
            UnlockReleaseBuffer(buf);
        }
        bool first = true;
        if (meta.flags & DRIFT_META_TRAINED)
            each_bucket(index, &meta, [&](uint32, DriftDirEntry e) {
                uint64 blive = 0;
                count_chain(index, &meta, e->head, &blive, &freed, &bucket_pages);
                minb = first ? blive : Min(minb, blive);
                maxb = Max(maxb, blive);
                first = false;
                live += blive;
            });
        BlockNumber pages = RelationGetNumberOfBlocks(index);
        uint64 in_graph = drift_memtable_rows(index, &meta);
        relation_close(index, AccessShareLock);

        TupleDesc desc;
        if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE) elog(ERROR, "return type must be a row type");
        static const char *metrics[] = {"?", "l2", "inner_product", "cosine"};
        Datum v[23];
        bool nulls[23] = {false};
        v[0] = Int32GetDatum(int32(meta.dim));
        v[1] = CStringGetTextDatum(meta.metric <= 3 ? metrics[meta.metric] : "?");
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
        PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(desc, v, nulls)));
    });
}

Datum drift_buckets(PG_FUNCTION_ARGS) {
    return drift_guard("drift_buckets", [&]() -> Datum {
        InitMaterializedSRF(fcinfo, 0);
        ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
        Relation index = drift_open_index(PG_GETARG_OID(0), AccessShareLock);
        DriftMetaPageData meta;
        drift_read_meta(index, &meta);
        if (meta.flags & DRIFT_META_TRAINED)
            each_bucket(index, &meta, [&](uint32 b, DriftDirEntry e) {
                uint64 live = 0, freed = 0, pages = 0;
                count_chain(index, &meta, e->head, &live, &freed, &pages);
                Datum v[8] = {Int32GetDatum(int32(b)),         Int64GetDatum(int64(live)),
                              Int64GetDatum(int64(e->ndead)),  Int64GetDatum(int64(freed)),
                              Int64GetDatum(int64(pages)),     Float8GetDatum(e->temperature),
                              Float8GetDatum(e->radius),       Float8GetDatum(e->moved)};
                bool nulls[8] = {false};
                tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, v, nulls);
            });
        relation_close(index, AccessShareLock);
        return (Datum) 0;
    });
}
