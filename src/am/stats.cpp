// drift_index_stats(regclass): what an index holds, read from its pages.
#include "drift.h"

#include "../storage/buffers.h"

extern "C" {
#include "access/htup_details.h"
#include "access/relation.h"
#include "catalog/pg_am.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

PG_FUNCTION_INFO_V1(drift_index_stats);
Datum drift_index_stats(PG_FUNCTION_ARGS);
}

// Counts live and freed slots of one bucket chain.
static void count_chain(Relation index, const DriftMetaPageData *meta, BlockNumber head, uint64 *live, uint64 *dead,
                        uint64 *pages) {
    for (BlockNumber blkno = head; blkno != InvalidBlockNumber;) {
        Buffer buf = drift_read_locked(index, blkno, BUFFER_LOCK_SHARE, DRIFT_PAGE_HOT, meta);
        DriftHotHeader *h = drift_hot_header(BufferGetPage(buf));
        *live += h->nlive;
        *dead += h->nslots - h->nlive;
        *pages += 1 + h->ncold;
        blkno = DriftPageGetOpaque(BufferGetPage(buf))->next;
        UnlockReleaseBuffer(buf);
    }
}

Datum drift_index_stats(PG_FUNCTION_ARGS) {
    return drift_guard("drift_index_stats", [&]() -> Datum {
        Relation index = drift_open_index(PG_GETARG_OID(0), AccessShareLock);
        DriftMetaPageData meta;
        drift_read_meta(index, &meta);

        uint64 live = 0, dead = 0, l0 = 0, bucket_pages = 0, minb = 0, maxb = 0;
        for (BlockNumber blkno = meta.l0_head; blkno != InvalidBlockNumber;) {
            Buffer buf = drift_read_locked(index, blkno, BUFFER_LOCK_SHARE, DRIFT_PAGE_L0, &meta);
            DriftVecHeader *h = drift_vec_header(BufferGetPage(buf));
            l0 += h->nlive;
            dead += h->nslots - h->nlive;
            blkno = DriftPageGetOpaque(BufferGetPage(buf))->next;
            UnlockReleaseBuffer(buf);
        }
        uint32 b = 0;
        for (BlockNumber blkno = meta.dir_head; blkno != InvalidBlockNumber; b++) {
            Buffer buf = drift_read_locked(index, blkno, BUFFER_LOCK_SHARE, DRIFT_PAGE_DIR, &meta);
            Page page = BufferGetPage(buf);
            uint32 n = drift_dir_header(page)->nentries;
            BlockNumber *heads = (BlockNumber *) palloc(sizeof(BlockNumber) * Max(n, 1));
            for (uint32 i = 0; i < n; i++) heads[i] = drift_dir_entry(page, meta.dim, i)->head;
            blkno = DriftPageGetOpaque(page)->next;
            UnlockReleaseBuffer(buf);
            for (uint32 i = 0; i < n; i++) {
                uint64 blive = 0;
                count_chain(index, &meta, heads[i], &blive, &dead, &bucket_pages);
                minb = (b == 0 && i == 0) ? blive : Min(minb, blive);
                maxb = Max(maxb, blive);
                live += blive;
            }
            pfree(heads);
        }
        BlockNumber pages = RelationGetNumberOfBlocks(index);
        int64 size = int64(pages) * BLCKSZ;
        relation_close(index, AccessShareLock);

        TupleDesc desc;
        if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE) elog(ERROR, "return type must be a row type");
        static const char *metrics[] = {"?", "l2", "inner_product", "cosine"};
        Datum v[12];
        bool nulls[12] = {false};
        v[0] = Int32GetDatum(int32(meta.dim));
        v[1] = CStringGetTextDatum(meta.metric <= 3 ? metrics[meta.metric] : "?");
        v[2] = Int32GetDatum(int32(meta.nbuckets));
        v[3] = BoolGetDatum((meta.flags & DRIFT_META_TRAINED) != 0);
        v[4] = Int64GetDatum(int64(live + l0));
        v[5] = Int64GetDatum(int64(dead));
        v[6] = Int64GetDatum(int64(l0));
        v[7] = Int64GetDatum(int64(pages));
        v[8] = Int64GetDatum(size);
        v[9] = Int64GetDatum(int64(minb));
        v[10] = Float8GetDatum(meta.nbuckets ? double(live) / meta.nbuckets : 0.0);
        v[11] = Int64GetDatum(int64(maxb));
        if (meta.nbuckets == 0) nulls[9] = nulls[10] = nulls[11] = true;
        PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(desc, v, nulls)));
    });
}
