// The per-index metadata cache (metapage, quantizer, directory) in rd_amcache.
#include "drift.h"

#include "../storage/buffers.h"
#include "../storage/chains.h"

extern "C" {
#include "access/relation.h"
#include "utils/memutils.h"
}

// Loads quantizer, directory block list and centroids into a new DriftInfo.
static DriftInfo *load_info(Relation index, const DriftMetaPageData *meta) {
    MemoryContext old = MemoryContextSwitchTo(index->rd_indexcxt);
    DriftInfo *info = (DriftInfo *) palloc0(sizeof(DriftInfo));
    info->meta = *meta;
    info->metric = drift::Metric(meta->metric);
    uint32 dim = meta->dim;
    if (meta->flags & DRIFT_META_TRAINED) {
        info->lo = (float *) palloc(sizeof(float) * dim * 2);
        info->scale = info->lo + dim;
        drift_read_blob(index, meta->quant_head, (char *) info->lo, sizeof(float) * dim * 2);
        if (meta->old_quant_head != InvalidBlockNumber) {
            info->old_lo = (float *) palloc(sizeof(float) * dim * 2);
            info->old_scale = info->old_lo + dim;
            drift_read_blob(index, meta->old_quant_head, (char *) info->old_lo, sizeof(float) * dim * 2);
        }
        info->centroids = (float *) palloc(sizeof(float) * dim * Max(meta->nbuckets, 1));
        info->heads = (BlockNumber *) palloc(sizeof(BlockNumber) * Max(meta->nbuckets, 1));
        info->chains = (uint32 *) palloc(sizeof(uint32) * Max(meta->nbuckets, 1));
        info->quants = (uint32 *) palloc(sizeof(uint32) * Max(meta->nbuckets, 1));
        info->dir_blocks = (BlockNumber *) palloc(sizeof(BlockNumber) * (meta->nbuckets / meta->dir_cap + 1));
        uint32 b = 0;
        for (BlockNumber blkno = meta->dir_head; blkno != InvalidBlockNumber;) {
            Buffer buf = drift_read_locked(index, blkno, BUFFER_LOCK_SHARE, DRIFT_PAGE_DIR, meta);
            Page page = BufferGetPage(buf);
            uint32 n = drift_dir_header(page)->nentries;
            if (b + n > meta->nbuckets) {
                UnlockReleaseBuffer(buf);
                drift_corrupt(index, blkno, "The directory holds more buckets than the metapage says.");
            }
            info->dir_blocks[info->ndir++] = blkno;
            for (uint32 i = 0; i < n; i++, b++) {
                DriftDirEntry e = drift_dir_entry(page, dim, i);
                memcpy(info->centroids + Size(b) * dim, e->centroid, sizeof(float) * dim);
                info->chains[b] = e->chain;
                info->quants[b] = e->quant;
                if (e->chain != 0 && e->quant != meta->quant_chain &&
                    (meta->old_quant_head == InvalidBlockNumber || e->quant != meta->old_quant_chain)) {
                    UnlockReleaseBuffer(buf);
                    drift_corrupt(index, blkno, "A bucket's codes name a quantizer the index does not have.");
                }
                info->heads[b] = e->chain != 0 ? e->head : InvalidBlockNumber;
            }
            blkno = DriftPageGetOpaque(page)->next;
            UnlockReleaseBuffer(buf);
        }
        if (b != meta->nbuckets) drift_corrupt(index, meta->dir_head, "The directory has fewer buckets than expected.");
    }
    MemoryContextSwitchTo(old);
    return info;
}

DriftInfo *drift_info(Relation index) {
    DriftInfo *info = (DriftInfo *) index->rd_amcache;
    if (info != NULL) {
        // Counters and L0 links move without a new generation; read in place,
        // since every insert comes here.
        uint32 loaded = info->meta.generation;
        drift_read_meta(index, &info->meta);
        if (info->meta.generation == loaded) return info;
    }
    DriftMetaPageData *meta = (DriftMetaPageData *) palloc(sizeof(DriftMetaPageData));
    if (info != NULL) {
        *meta = info->meta;
        index->rd_amcache = NULL;
        if (info->lo) pfree(info->lo);
        if (info->centroids) pfree(info->centroids);
        if (info->dir_blocks) pfree(info->dir_blocks);
        if (info->heads) pfree(info->heads);
        if (info->chains) pfree(info->chains);
        if (info->quants) pfree(info->quants);
        if (info->old_lo) pfree(info->old_lo);
        pfree(info);
    } else {
        drift_read_meta(index, meta);
    }
    info = load_info(index, meta);
    pfree(meta);
    if (info->metric != drift_index_metric(index))
        drift_corrupt(index, DRIFT_METAPAGE_BLKNO, "The metapage's metric does not match the operator class.");
    index->rd_amcache = info;
    return info;
}

DriftDirSlot drift_dir_slot(const DriftInfo *info, uint32 bucket) {
    DriftDirSlot s;
    s.blkno = info->dir_blocks[bucket / info->meta.dir_cap];
    s.slot = bucket % info->meta.dir_cap;
    return s;
}

void drift_set_dimension(Relation index, uint32 dim) {
    Buffer buf = drift_read_locked(index, DRIFT_METAPAGE_BLKNO, BUFFER_LOCK_EXCLUSIVE, DRIFT_PAGE_META, NULL);
    DriftMetaPage m = DriftPageGetMeta(BufferGetPage(buf));
    if (m->dim == 0) {
        GenericXLogState *st = GenericXLogStart(index);
        Page page = GenericXLogRegisterBuffer(st, buf, 0);
        m = DriftPageGetMeta(page);
        drift_meta_set_dim(m, dim);
        m->generation++;
        GenericXLogFinish(st);
    }
    uint32 now = DriftPageGetMeta(BufferGetPage(buf))->dim;
    UnlockReleaseBuffer(buf);
    if (now != dim)
        ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION),
                        errmsg("vector has %u dimensions, but index \"%s\" has %u", dim, RelationGetRelationName(index),
                               now),
                        errhint("Every vector in a drift index must have the same dimension.")));
}

Relation drift_open_index(Oid relid, LOCKMODE lockmode) {
    Relation index = relation_open(relid, lockmode);
    if (index->rd_rel->relkind != RELKIND_INDEX || index->rd_indam == NULL ||
        index->rd_indam->ambuild != drift_ambuild) {
        const char *name = pstrdup(RelationGetRelationName(index));
        relation_close(index, lockmode);
        ereport(ERROR, (errcode(ERRCODE_WRONG_OBJECT_TYPE), errmsg("\"%s\" is not a drift index", name),
                        errhint("Pass the name of an index created USING drift.")));
    }
    return index;
}
