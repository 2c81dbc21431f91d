// Inserting one row: into its nearest bucket, or into L0 while the index
// has no centroids yet.
#include "drift.h"

#include "../core/kmeans.hpp"
#include "../core/sq8.hpp"
#include "../storage/chains.h"

extern "C" {
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
        if (info->meta.flags & DRIFT_META_TRAINED) {
            uint32 b = uint32(drift::nearest_centroid(info->centroids, info->meta.nbuckets, dim, v, NULL));
            uint8 *code = (uint8 *) palloc(dim);
            drift::Sq8 q{dim, info->lo, info->scale};
            drift::sq8_encode(q, v, code);
            drift_bucket_append(index, &info->meta, drift_dir_slot(info, b), b, heap_tid, code, v);
        } else {
            drift_l0_append(index, &info->meta, heap_tid, v);
        }

        MemoryContextSwitchTo(old);
        MemoryContextDelete(ctx);
        return false;
    });
}
