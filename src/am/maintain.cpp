// Maintenance of one index: the scheduler (release, complete, flush, then
// bucket work by urgency), maintenance locking and drift_maintain(). The
// steps live in src/am/flush.cpp and src/am/buckets.cpp (see maintain.h).
#include "maintain.h"

#include "../storage/buffers.h"

extern "C" {
#include "access/transam.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "storage/lmgr.h"
#include "storage/proc.h"
#include "tcop/utility.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
}

using namespace maint;

// Releases the retired chains no snapshot can still be reading: frees
// their pages by walking each chain (the cost is the pages released), then
// drops them from the list. When the overflow (chains retired while the
// list was full) is old enough, a sweep frees its pages.
static void reclaim(Maint *m) {
    const DriftMetaPageData *meta = &m->info->meta;
    if (meta->nretired == 0 && meta->overflow_chain == 0) return;
    uint64 horizon = drift_xid_horizon();  // (a janitor pass has no snapshot to refresh a cached one)
    bool overflow = meta->overflow_chain != 0 && drift_xid64(meta->overflow_xid_hi, meta->overflow_xid_lo) < horizon;
    uint32 n = meta->nretired, released = 0;
    bool *gone = (bool *) palloc0(sizeof(bool) * Max(n, 1));
    uint64 latest = drift_xid64(meta->released_xid_hi, meta->released_xid_lo), newest = 0;
    bool unseen = false;  // a chain retired under an xid no transaction has taken yet
    uint64 next = U64FromFullTransactionId(ReadNextFullTransactionId());
    for (uint32 i = 0; i < n; i++) {
        uint64 xid = drift_xid64(meta->retired[i].xid_hi, meta->retired[i].xid_lo);
        gone[i] = xid < horizon;
        if (gone[i]) newest = Max(newest, xid);
        unseen |= xid >= next;
    }
    // VACUUM retires under the next xid (it may not take one). Until some
    // transaction takes it, the horizon cannot pass it: on an idle server,
    // never. So this pass takes it, and the next one releases the chains.
    if (unseen && !(MyProc->statusFlags & PROC_IN_VACUUM) && !IsInParallelMode()) (void) GetTopTransactionId();
    if (overflow) newest = Max(newest, drift_xid64(meta->overflow_xid_hi, meta->overflow_xid_lo));
    // Standby queries as old as these chains' retirement may be reading them.
    if (newest != 0) drift_log_conflict(m->index, DRIFT_METAPAGE_BLKNO, newest);
    for (uint32 i = 0; i < n; i++) {
        if (!gone[i]) continue;
        const DriftRetired &r = meta->retired[i];
        uint64 xid = drift_xid64(r.xid_hi, r.xid_lo);
        CHECK_FOR_INTERRUPTS();
        m->done.freed += drift_release_chain(m->index, meta, r.head, r.chain, r.type, xid);
        released++;
        latest = Max(latest, xid);
    }
    if (released == 0 && !overflow) {
        pfree(gone);
        return;
    }
    // Only maintenance edits the list, and this pass holds its lock.
    DriftMetaEdit e;
    drift_meta_begin(m->index, &e);
    uint32 kept = 0;
    for (uint32 i = 0; i < e.meta->nretired; i++)
        if (i >= n || !gone[i]) e.meta->retired[kept++] = e.meta->retired[i];
    e.meta->nretired = kept;
    if (overflow) {
        latest = Max(latest, drift_xid64(e.meta->overflow_xid_hi, e.meta->overflow_xid_lo));
        e.meta->overflow_chain = e.meta->overflow_xid_hi = e.meta->overflow_xid_lo = 0;
    }
    e.meta->released_xid_hi = uint32(latest >> 32);
    e.meta->released_xid_lo = uint32(latest);
    drift_meta_finish(&e);
    m->done.released += released;
    pfree(gone);
    // Make the pages just recorded free findable (the map's upper levels),
    // and give back those at the end of the index before anyone reuses them.
    if (released > 0) {
        IndexFreeSpaceMapVacuum(m->index);
        if (m->truncate) m->done.truncated += drift_truncate_free_tail(m->index);
    }
    if (overflow) drift_sweep(m->index, NULL, NULL, NULL, NULL);
    refresh(m);
}

// The limits of an index: its max_bucket_size option or 3x the mean bucket
// size at training; merge below a twelfth of that.
static drift::MaintenanceLimits limits(Relation index, const DriftMetaPageData *meta) {
    DriftOptions *opts = (DriftOptions *) index->rd_options;
    uint32 max = opts && opts->max_bucket_size > 0 ? uint32(opts->max_bucket_size) : 3 * Max(meta->target_bucket, 16u);
    return drift::MaintenanceLimits{max, Max(max / 12, 1u), float(drift_compact_dead_ratio)};
}

// Does the most urgent bucket work until no bucket needs any.
static void work_buckets(Maint *m, uint32 steps) {
    uint32 cap = 4 * m->info->meta.nbuckets + 64, done = 0;
    uint32 nskip = 2 * cap + m->info->meta.nbuckets;
    bool *skip = (bool *) palloc0(sizeof(bool) * nskip);
    for (uint32 round = 0; round < cap; round++) {
        CHECK_FOR_INTERRUPTS();
        // Inserting backends cannot flush while this pass holds the lock:
        // keep L0 within drift.l0_max_rows for them.
        const DriftMetaPageData *mt = &m->info->meta;
        if (drift_l0_estimate(mt, mt->l0_pages) > uint64(drift_l0_max_rows)) flush(m);
        // Chains earlier steps replaced are freed as soon as no scan can be
        // on them, so the next steps reuse their pages.
        reclaim(m);
        const DriftInfo *info = m->info;
        m->held = info->meta.overflow_chain != 0;
        drift::Need best{drift::Work::None, 0};
        uint32 which = 0;
        for (uint32 pi = 0; pi < info->ndir; pi++) {
            Buffer buf = drift_read_locked(m->index, info->dir_blocks[pi], BUFFER_LOCK_SHARE, DRIFT_PAGE_DIR, &info->meta);
            Page page = BufferGetPage(buf);
            for (uint32 i = 0; i < drift_dir_header(page)->nentries; i++) {
                uint32 b = pi * info->meta.dir_cap + i;
                if (b >= info->meta.nbuckets || info->chains[b] == 0 || (b < nskip && skip[b])) continue;
                DriftDirEntry e = drift_dir_entry(page, m->dim, i);
                drift::BucketHealth h{e->nlive, e->ndead, e->temperature};
                drift::Need need = drift::bucket_need(h, m->lim, info->meta.live_buckets > 1);
                // Buckets coded with the previous quantizer are rewritten with the current one.
                if (need.work == drift::Work::None && drift_bucket_old_quant(info, b)) need = {drift::Work::Compact, 0.5};
                if (m->held) need = drift::held_back_need(need, h, m->lim);
                if (need.work != drift::Work::None && need.urgency > best.urgency) {
                    best = need;
                    which = b;
                }
            }
            UnlockReleaseBuffer(buf);
        }
        if (best.work == drift::Work::None) {
            bool used = false;
            for (uint32 b = 0; b < info->meta.nbuckets && !used; b++)
                used = info->chains[b] != 0 && drift_bucket_old_quant(info, b);
            if (info->old_quant != NULL && !used) {
                MetaChange mc = {{0, 0}, 0, 0, 0, 0, 0, 0, true};
                commit(m, NULL, 0, mc);
            }
            break;
        }
        if (steps > 0 && done == steps) {
            m->done.more = true;  // the caller goes on in a new transaction
            break;
        }
        switch (best.work) {
            case drift::Work::Split:
                if (split(m, which))
                    done++;
                else if (which < nskip)
                    skip[which] = true;
                break;
            case drift::Work::Compact: compact(m, which), done++; break;
            case drift::Work::Merge: merge(m, which), done++; break;
            case drift::Work::None: break;
        }
    }
    pfree(skip);
}

// Stamps the time of this pass in the metapage.
static void stamp(Maint *m) {
    DriftMetaEdit e;
    drift_meta_begin(m->index, &e);
    e.meta->last_maintenance = GetCurrentTimestamp();
    drift_meta_finish(&e);
}

DriftMaintenance drift_maintain_index(Relation index, DriftMaintainMode mode, uint32 steps) {
    Maint m;
    memset(&m, 0, sizeof(m));
    m.index = index;
    m.wal = RelationNeedsWAL(index);
    // (an insert's transaction may be long, and standbys hold the lock a
    // truncation takes until it ends)
    m.truncate = mode != DRIFT_MAINTAIN_FLUSH;
    refresh(&m);
    m.dim = m.info->meta.dim;
    if (m.dim == 0 || RecoveryInProgress()) return m.done;
    MemoryContext ctx = AllocSetContextCreate(CurrentMemoryContext, "drift maintenance", ALLOCSET_DEFAULT_SIZES);
    MemoryContext old = MemoryContextSwitchTo(ctx);
    reclaim(&m);
    if (m.info->meta.flags & DRIFT_META_TRAINED) complete_move(&m);
    if (mode == DRIFT_MAINTAIN_SHRINK) {
        if (m.info->meta.flags & DRIFT_META_TRAINED) shrink(&m);
    } else {
        if (mode != DRIFT_MAINTAIN_KEEP_L0) flush(&m);
        if (m.info->meta.flags & DRIFT_META_TRAINED) {
            m.lim = limits(index, &m.info->meta);
            if (mode != DRIFT_MAINTAIN_FLUSH) work_buckets(&m, steps);
            // A shrink VACUUM began goes on each time the end is given back,
            // or pages were freed and no bucket work is left (the janitor
            // has compacted what the VACUUM's deletes emptied).
            const DriftMetaPageData *mt = &m.info->meta;
            bool idle = m.done.splits + m.done.merges + m.done.compactions == 0;
            if (mode != DRIFT_MAINTAIN_FLUSH && !m.done.more && (mt->flags & DRIFT_META_SHRINKING)) {
                if (m.done.truncated == 0) m.done.truncated = drift_truncate_free_tail(index);  // (else reclaim just did)
                if (mt->nretired == 0 && (m.done.truncated > 0 || (m.done.freed > 0 && idle))) shrink(&m);
            }
        }
        if (mode != DRIFT_MAINTAIN_FLUSH) stamp(&m);
    }
    MemoryContextSwitchTo(old);
    MemoryContextDelete(ctx);
    return m.done;
}

bool drift_lock_maintenance(Relation index, bool wait) {
    if (wait) {
        LockRelation(index, ShareUpdateExclusiveLock);
        return true;
    }
    return ConditionalLockRelation(index, ShareUpdateExclusiveLock);
}

uint64 drift_l0_estimate(const DriftMetaPageData *meta, uint32 pages) { return uint64(pages) * meta->cold_cap; }

extern "C" {
#include "access/htup_details.h"
#include "access/relation.h"
#include "funcapi.h"

PG_FUNCTION_INFO_V1(drift_maintain);
Datum drift_maintain(PG_FUNCTION_ARGS);
}

// drift_maintain(regclass): one full maintenance pass, waiting for the
// maintenance lock if VACUUM or the janitor holds it.
Datum drift_maintain(PG_FUNCTION_ARGS) {
    return drift_guard("drift_maintain", [&]() -> Datum {
        if (RecoveryInProgress())
            ereport(ERROR, (errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION), errmsg("cannot maintain a drift index during recovery"),
                            errhint("Run drift_maintain on the primary; a standby replays its maintenance.")));
        PreventCommandIfReadOnly("drift_maintain()");
        Relation index = drift_open_index(PG_GETARG_OID(0), ShareUpdateExclusiveLock, DRIFT_ACCESS_MAINTAIN);
        DriftMaintenance d = drift_maintain_index(index, DRIFT_MAINTAIN_ALL);
        relation_close(index, ShareUpdateExclusiveLock);
        TupleDesc desc;
        if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE) elog(ERROR, "return type must be a row type");
        Datum v[8] = {Int64GetDatum(int64(d.flushed)),     Int32GetDatum(int32(d.splits)),
                      Int32GetDatum(int32(d.merges)),      Int32GetDatum(int32(d.compactions)),
                      Int64GetDatum(int64(d.stolen)),      Int32GetDatum(int32(d.released)),
                      BoolGetDatum(d.requantized),         Int32GetDatum(int32(d.seeded))};
        bool nulls[8] = {false};
        PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(desc, v, nulls)));
    });
}
