// Inserting one row: append it to L0, which takes no centroid math. Past
// drift.l0_max_rows, the inserting backend flushes L0 itself unless
// another maintainer is already at work.
#include "drift.h"

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

        DriftInfo *info = drift_info(index);
        uint32 dim;
        float *v = drift_index_vector(index, values[0], info->meta.dim, info->metric, &dim);
        if (info->meta.dim == 0) {
            drift_set_dimension(index, dim);
            info = drift_info(index);
        }
        DriftMetaPageData meta = info->meta;
        meta.l0_pages = drift_l0_append(index, &meta, heap_tid, v);
        if (meta.l0_pages > 0 && drift_l0_estimate(&meta) > uint64(drift_l0_max_rows) &&
            drift_lock_maintenance(index, false)) {
            drift_maintain_index(index, DRIFT_MAINTAIN_FLUSH);
            UnlockRelation(index, ShareUpdateExclusiveLock);
        }

        MemoryContextSwitchTo(old);
        MemoryContextDelete(ctx);
        return false;
    });
}
