// Reading the centroid directory: the one place directory pages are decoded
// for readers.
#pragma once

#include "pages.h"

// A copy of the metapage and of every directory entry, consistent with each
// other: maintenance changes the directory's structure (buckets added,
// chains replaced, the quantizer) in WAL records that also bump the
// metapage's generation, so a copy is consistent when the generation is
// the same before and after it was read.
struct DriftDirectory {
    DriftMetaPageData meta;
    DriftDirEntryData *entries; /* meta.nbuckets entries (fields; centroids apart) */
    float *centroids;           /* meta.nbuckets x meta.dim, if asked for */
    BlockNumber *blocks;        /* the directory pages, in chain order */
    uint32 nblocks;
};

// Reads the metapage and the directory into *out (palloc'd in the current
// memory context; centroids only if asked for), again and again until it
// has a consistent copy. A mismatch between the two that no concurrent
// change explains is an ERROR ("index is corrupt").
void drift_read_directory(Relation index, DriftDirectory *out, bool centroids);

// Frees what drift_read_directory allocated.
void drift_free_directory(DriftDirectory *dir);

// The metapage's current generation.
uint32 drift_meta_generation(Relation index);
