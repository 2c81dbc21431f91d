// Consistent copies of the metapage and directory (see directory.h).
#include "directory.h"

#include "buffers.h"
#include "cursor.h"

extern "C" {
#include "miscadmin.h"
}

uint32 drift_meta_generation(Relation index) {
    Buffer buf = drift_read_locked(index, DRIFT_METAPAGE_BLKNO, BUFFER_LOCK_SHARE, DRIFT_PAGE_META, NULL);
    uint32 generation = DriftPageGetMeta(BufferGetPage(buf))->generation;
    UnlockReleaseBuffer(buf);
    return generation;
}

// One attempt: NULL if the copy is consistent, else what is wrong with it
// and where (the caller checks whether the generation moved).
static const char *read_once(Relation index, DriftDirectory *out, bool centroids, BlockNumber *where) {
    DriftMetaPageData *meta = &out->meta;
    drift_read_meta(index, meta);
    uint32 dim = meta->dim, n = Max(meta->nbuckets, 1u);
    out->entries = (DriftDirEntryData *) palloc(sizeof(DriftDirEntryData) * n);
    out->centroids = centroids ? (float *) MemoryContextAllocHuge(CurrentMemoryContext, sizeof(float) * Size(dim) * n) : NULL;
    BlockNumber need = drift_dir_min_blocks(meta);
    out->blocks = (BlockNumber *) palloc(sizeof(BlockNumber) * Max(need, 1));
    out->nblocks = 0;
    uint32 b = 0;
    DriftCursor c;
    drift_cursor_begin(&c, index, meta->dir_head, DRIFT_PAGE_DIR, 0, meta, BUFFER_LOCK_SHARE);
    for (Page page; (page = drift_cursor_next(&c)) != NULL;) {
        *where = drift_cursor_block(&c);
        uint32 k = drift_dir_header(page)->nentries;
        // Every page but the last is full, so the page count follows from nbuckets.
        if (b + k > meta->nbuckets || out->nblocks >= need) {
            drift_cursor_end(&c);
            return "The directory holds more buckets than the metapage says.";
        }
        if (b != out->nblocks * uint32(meta->dir_cap)) {
            drift_cursor_end(&c);
            return "A directory page before the last is not full.";
        }
        out->blocks[out->nblocks++] = *where;
        for (uint32 i = 0; i < k; i++, b++) {
            DriftDirEntry e = drift_dir_entry(page, dim, i);
            memcpy(&out->entries[b], e, offsetof(DriftDirEntryData, centroid));
            if (centroids) drift_dir_centroid(page, dim, i, out->centroids + Size(b) * dim);
            if (e->chain != 0 && e->quant != meta->quant_chain &&
                (meta->old_quant_head == InvalidBlockNumber || e->quant != meta->old_quant_chain)) {
                drift_cursor_end(&c);
                return "A bucket's codes name a quantizer the index does not have.";
            }
        }
    }
    *where = meta->dir_head;
    if (b != meta->nbuckets) return "The directory has fewer buckets than the metapage says.";
    return NULL;
}

void drift_read_directory(Relation index, DriftDirectory *out, bool centroids) {
    for (;;) {
        BlockNumber where = InvalidBlockNumber;
        const char *problem = read_once(index, out, centroids, &where);
        if (problem == NULL && drift_meta_generation(index) == out->meta.generation) return;
        if (problem != NULL && drift_meta_generation(index) == out->meta.generation) drift_corrupt(index, where, problem);
        drift_free_directory(out);  // changed meanwhile: read it again
        CHECK_FOR_INTERRUPTS();
    }
}

void drift_free_directory(DriftDirectory *dir) {
    pfree(dir->entries);
    if (dir->centroids) pfree(dir->centroids);
    pfree(dir->blocks);
    dir->entries = NULL;
    dir->centroids = NULL;
    dir->blocks = NULL;
}
