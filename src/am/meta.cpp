// The per-index metadata cache (metapage, quantizer, directory) in rd_amcache.
#include "drift.h"

#include "../storage/buffers.h"
#include "../storage/chains.h"
#include "../storage/directory.h"

extern "C" {
#include "access/relation.h"
#include "catalog/index.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_class.h"
#include "utils/acl.h"
#include "utils/lsyscache.h"
#include "utils/rls.h"
#include "utils/memutils.h"
#include "utils/syscache.h"
}

// Carves n bytes, MAXALIGNed, from *cursor.
static void *carve(char **cursor, Size n) {
    void *p = *cursor;
    *cursor += MAXALIGN(n);
    return p;
}

// Loads a consistent metapage, quantizers, directory block list and
// centroids into a new DriftInfo: one chunk of rd_indexcxt, since a
// relcache rebuild frees rd_amcache with a single pfree.
static DriftInfo *load_info(Relation index) {
    DriftDirectory dir;
    for (;;) {
        drift_read_directory(index, &dir, true);
        const DriftMetaPageData *meta = &dir.meta;
        uint32 dim = meta->dim, n = Max(meta->nbuckets, 1u);
        bool trained = (meta->flags & DRIFT_META_TRAINED) != 0;
        bool old = trained && meta->old_quant_head != InvalidBlockNumber;
        Size quant = sizeof(float) * dim * 2;
        Size size = MAXALIGN(sizeof(DriftInfo)) + MAXALIGN(quant) * (1 + old) + MAXALIGN(sizeof(BlockNumber) * dir.nblocks) +
                    MAXALIGN(sizeof(float) * Size(dim) * n) + MAXALIGN(sizeof(BlockNumber) * n) + 3 * MAXALIGN(sizeof(uint32) * n) +
                    2 * MAXALIGN(sizeof(float) * n);
        char *chunk = (char *) MemoryContextAllocExtended(index->rd_indexcxt, size, MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
        char *at = chunk;
        DriftInfo *info = (DriftInfo *) carve(&at, sizeof(DriftInfo));
        info->meta = *meta;
        info->metric = drift::Metric(meta->metric);
        if (trained) {
            info->quant = (float *) carve(&at, quant);
            drift_read_blob(index, meta->quant_head, (char *) info->quant, quant);
            if (old) {
                info->old_quant = (float *) carve(&at, quant);
                drift_read_blob(index, meta->old_quant_head, (char *) info->old_quant, quant);
            }
        }
        info->ndir = dir.nblocks;
        info->dir_blocks = (BlockNumber *) carve(&at, sizeof(BlockNumber) * dir.nblocks);
        memcpy(info->dir_blocks, dir.blocks, sizeof(BlockNumber) * dir.nblocks);
        info->centroids = (float *) carve(&at, sizeof(float) * Size(dim) * n);
        memcpy(info->centroids, dir.centroids, sizeof(float) * Size(dim) * meta->nbuckets);
        info->heads = (BlockNumber *) carve(&at, sizeof(BlockNumber) * n);
        info->chains = (uint32 *) carve(&at, sizeof(uint32) * n);
        info->quants = (uint32 *) carve(&at, sizeof(uint32) * n);
        info->nlive = (uint32 *) carve(&at, sizeof(uint32) * n);
        info->temperature = (float *) carve(&at, sizeof(float) * n);
        info->radius = (float *) carve(&at, sizeof(float) * n);
        for (uint32 b = 0; b < meta->nbuckets; b++) {
            const DriftDirEntryData &e = dir.entries[b];
            info->chains[b] = e.chain;
            info->quants[b] = e.quant;
            info->heads[b] = e.chain != 0 ? e.head : InvalidBlockNumber;
            info->nlive[b] = e.nlive;
            info->temperature[b] = e.temperature;
            info->radius[b] = e.radius;
        }
        uint32 generation = meta->generation;
        drift_free_directory(&dir);
        // The quantizers were read after the directory: still the same view?
        if (drift_meta_generation(index) == generation) return info;
        pfree(chunk);
        CHECK_FOR_INTERRUPTS();
    }
}

DriftInfo *drift_info(Relation index) {
    DriftInfo *info = (DriftInfo *) index->rd_amcache;
    if (info != NULL) {
        // Counters and L0 links move without a new generation; read in place,
        // since every insert comes here.
        uint32 loaded = info->meta.generation;
        drift_read_meta(index, &info->meta);
        if (info->meta.generation == loaded) return info;
        index->rd_amcache = NULL;
        pfree(info);
    }
    info = load_info(index);
    if (info->metric != drift_index_metric(index)) {
        pfree(info);
        drift_corrupt(index, DRIFT_METAPAGE_BLKNO, "The metapage's metric does not match the operator class.");
    }
    index->rd_amcache = info;
    return info;
}

uint64 drift_info_rows(const DriftInfo *info) {
    uint64 rows = drift_l0_estimate(&info->meta, info->meta.l0_pages);
    for (uint32 b = 0; b < info->meta.nbuckets; b++) rows += info->nlive[b];
    return rows;
}

DriftDirSlot drift_dir_slot(const DriftInfo *info, uint32 bucket) {
    DriftDirSlot s;
    s.blkno = info->dir_blocks[bucket / info->meta.dir_cap];
    s.slot = bucket % info->meta.dir_cap;
    return s;
}

void drift_set_dimension(Relation index, uint32 dim) {
    DriftMetaEdit e;
    drift_meta_begin(index, &e);
    uint32 now = e.meta->dim;
    if (now == 0) {
        drift_meta_set_dim(e.meta, dim);
        e.meta->generation++;
        now = dim;
        drift_meta_finish(&e);
    } else {
        drift_meta_abort(&e);
    }
    if (now != dim)
        ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION),
                        errmsg("vector has %u dimensions, but index \"%s\" has %u", dim, RelationGetRelationName(index),
                               now),
                        errhint("Every vector in a drift index must have the same dimension.")));
}

Relation drift_open_index(Oid relid, LOCKMODE lockmode, DriftAccess access) {
    // Checked before the lock is taken: a lock request on another relation
    // could queue behind other sessions' locks, and hold them up in turn.
    HeapTuple tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
    if (!HeapTupleIsValid(tup))
        ereport(ERROR, (errcode(ERRCODE_UNDEFINED_TABLE), errmsg("relation with OID %u does not exist", relid)));
    Form_pg_class form = (Form_pg_class) GETSTRUCT(tup);
    char *name = pstrdup(NameStr(form->relname));
    bool drift = false;
    if (form->relkind == RELKIND_INDEX) {
        IndexAmRoutine *am = GetIndexAmRoutineByAmId(form->relam, true);
        drift = am != NULL && am->ambuild == drift_ambuild;
    }
    ReleaseSysCache(tup);
    if (!drift)
        ereport(ERROR, (errcode(ERRCODE_WRONG_OBJECT_TYPE), errmsg("\"%s\" is not a drift index", name),
                        errhint("Pass the name of an index created USING drift.")));
    Oid table = IndexGetRelation(relid, false);
    if (access == DRIFT_ACCESS_QUERY) {
        if (pg_class_aclcheck(table, GetUserId(), ACL_SELECT) != ACLCHECK_OK)
            aclcheck_error(ACLCHECK_NO_PRIV, OBJECT_TABLE, get_rel_name(table));
        // It reads every row the index holds, past row-level security.
        if (check_enable_rls(table, InvalidOid, true) == RLS_ENABLED)
            ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE), errmsg("permission denied for index %s", name),
                            errhint("Row-level security applies to you on table \"%s\", and the function reads every row "
                                    "its index holds.",
                                    get_rel_name(table))));
        LockRelationOid(table, lockmode);  // the table before its index, as every query locks them
    } else if (!pg_class_ownercheck(table, GetUserId())) {
        if (access == DRIFT_ACCESS_MAINTAIN) aclcheck_error(ACLCHECK_NOT_OWNER, OBJECT_TABLE, get_rel_name(table));
        if (!has_privs_of_role(GetUserId(), ROLE_PG_STAT_SCAN_TABLES))
            ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE), errmsg("permission denied for index %s", name),
                            errhint("Only the owner of table \"%s\" and members of pg_stat_scan_tables may inspect its drift indexes.",
                                    get_rel_name(table))));
    }
    // Maintenance may read the table's rows (an index that re-ranks from it).
    if (access == DRIFT_ACCESS_MAINTAIN) LockRelationOid(table, AccessShareLock);
    Relation index = relation_open(relid, lockmode);
    if (index->rd_index != NULL && !index->rd_index->indisready) {
        relation_close(index, lockmode);
        ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE), errmsg("drift index \"%s\" is not built", name),
                        errhint("CREATE INDEX CONCURRENTLY is building it, or such a build failed: then drop it or REINDEX it.")));
    }
    // Dropped and its OID reused between the check and the lock?
    if (index->rd_rel->relkind != RELKIND_INDEX || index->rd_indam == NULL ||
        index->rd_indam->ambuild != drift_ambuild) {
        relation_close(index, lockmode);
        ereport(ERROR, (errcode(ERRCODE_WRONG_OBJECT_TYPE), errmsg("\"%s\" is not a drift index", name),
                        errhint("Pass the name of an index created USING drift.")));
    }
    return index;
}

drift::Quantizer drift_chain_quantizer(drift::Quantizer base, const float *c, DriftCentre *centre) {
    centre->halves = NULL;
    centre->rc = NULL;
    if (base.kind != drift::CodeKind::RaBitQ) return base;
    Size padded = drift::rabitq_padded(base.dim);
    centre->halves = (uint16 *) palloc(sizeof(uint16) * padded);
    centre->rc = (float *) palloc(sizeof(float) * padded);
    drift::rabitq_centre(c, base.dim, centre->halves, centre->rc);
    return drift::Quantizer{base.kind, base.dim, centre->rc, NULL};
}

drift::Quantizer drift_bucket_quantizer(Relation index, const DriftInfo *info, uint32 b) {
    drift::Quantizer q = drift_quantizer(info, drift_bucket_old_quant(info, b));
    if (q.kind != drift::CodeKind::RaBitQ) return q;
    float *rc = (float *) palloc(sizeof(float) * drift::rabitq_padded(q.dim));
    Buffer buf = drift_read_locked(index, info->heads[b], BUFFER_LOCK_SHARE, DRIFT_PAGE_HOT, &info->meta);
    bool found = drift_hot_centre(&info->meta, BufferGetPage(buf), rc);
    UnlockReleaseBuffer(buf);
    if (!found) drift_corrupt(index, info->heads[b], "A chain's first page has no centre.");
    q.a = rc;
    q.b = NULL;
    return q;
}
