// Inserting one row: append it to L0, which takes no centroid math. Past
// drift.l0_flush_rows it wakes the janitor (when preloaded) to flush L0 in
// the background; past drift.l0_max_rows, the inserting backend flushes L0
// itself unless another maintainer is already at work.
#include "drift.h"

#include "../storage/buffers.h"
#include "../storage/chains.h"

extern "C" {
#include "storage/lmgr.h"
#include "utils/memutils.h"
}

bool drift_aminsert(Relation index, Datum *values, bool *isnull, ItemPointer heap_tid, Relation, IndexUniqueCheck,
                    bool, IndexInfo *) {
    return drift_guard("insert", [&]() -> bool {
        if (isnull[0]) return false;
        MemoryContext ctx = AllocSetContextCreate(CurrentMemoryContext, "drift insert", ALLOCSET_SMALL_SIZES);
        MemoryContext old = MemoryContextSwitchTo(ctx);

        // Only the metapage's fields: not drift_info, whose centroids and
        // directory maintenance keeps changing.
        DriftMetaPageData *meta = (DriftMetaPageData *) palloc(offsetof(DriftMetaPageData, retired));
        drift_read_meta_fields(index, meta);
        uint32 dim;
        float *v = drift_index_vector(index, values[0], meta->dim, drift::Metric(meta->metric), meta->vec_kind, true,
                                      &dim);
        if (meta->dim == 0) {
            drift_set_dimension(index, dim);
            drift_read_meta_fields(index, meta);
        }
        uint32 l0_pages = drift_l0_append(index, meta, heap_tid, v);
        drift_janitor_mark(MyDatabaseId, true);  // the janitor visits databases rows arrive in
        uint64 l0_rows = drift_l0_estimate(meta, l0_pages);
        if (l0_pages > 0 && l0_rows > uint64(drift_l0_max_rows) && drift_lock_maintenance(index, false)) {
            drift_maintain_index(index, DRIFT_MAINTAIN_FLUSH);
            UnlockRelation(index, ShareUpdateExclusiveLock);
        } else if (l0_pages > 0 && l0_rows >= uint64(drift_l0_flush_rows)) {
            drift_janitor_wake();  // flush in the background before L0 reaches its bound
        }

        MemoryContextSwitchTo(old);
        MemoryContextDelete(ctx);
        return false;
    });
}
