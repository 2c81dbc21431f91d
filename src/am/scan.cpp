// Ordered scans: score centroids, probe buckets scanning their codes, re-rank
// the best candidates with exact distances from cold pages (or the table's
// rows, rerank = heap), and return TIDs in exact distance order, batch by
// batch. L0 rows come from the memtable graph where one covers them (its
// drift.ef_search nearest; no row farther than the farthest of them is
// returned before the rest of L0, read by a brute-force pass), else from a
// brute-force pass over L0.
//
// A batch is the next best candidates (by estimated distance) of the buckets
// probed so far, re-ranked exactly: drift.rerank of them in the first
// batch of a round of probes, twice as many in each batch after it (a
// LIMIT 10 reads few full vectors, a large LIMIT few batches); the first
// batch also holds L0's rows. When the probed buckets are used up and the executor still asks
// for rows (a WHERE clause filtered many out), the next drift.probes buckets
// are probed, up to drift.max_probes buckets in all, as long as the scan has
// read fewer than drift.max_scan_tuples candidates and uses less than
// drift.scan_mem_multiplier x work_mem. Rows come in exact order
// within a batch. A later batch can hold rows closer than some already
// returned (the codes' order is approximate, and rows the executor discards,
// such as deleted ones, use up a batch): with drift.strict_order (the
// default) they are skipped, so every scan returns rows in exact distance
// order; without it they come out of order.
//
// Buckets are probed in routing order (src/core/routing.hpp): nearest
// centroid first, adjusted by bucket heat (drift.lambda) and density
// (drift.tau). With drift.target_recall, the first round goes on bucket by
// bucket past drift.probes until the scan's estimate of its recall reaches
// the target (docs/routing.md).
#include "drift.h"

#include <algorithm>
#include <limits>

#include "../core/distance.hpp"
#include "../core/routing.hpp"
#include "../core/topk.hpp"
#include "../storage/buffers.h"
#include "../storage/chains.h"
#include "../storage/cursor.h"

extern "C" {
#include "access/genam.h"
#include "access/relscan.h"
#include "common/pg_prng.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
}

// A candidate from a bucket: its code's estimated distance and the least
// its exact distance can be, TID, where its vector is, and its bucket.
struct ScanCand {
    float approx, lower;
    ItemPointerData tid;
    uint16 slot;
    BlockNumber cold;
    uint32 bucket;
};

// A row of the current batch, with its exact distance and bucket.
struct ScanResult {
    float dist;
    ItemPointerData tid;
    uint32 bucket;
};
#define SCAN_L0 UINT32_MAX /* the bucket of an L0 row */

// Per-scan state; plain data in the scan's memory context.
struct DriftScanOpaqueData {
    MemoryContext ctx;
    bool started;           /* start_scan ran since the last rescan */
    bool preset;            /* settings and query given (drift_scan_top): a re-check */
    const float *preset_query;
    uint32 preset_dim;
    DriftScanSettings set;
    DriftMetaPageData meta;
    drift::Metric metric;
    uint32 dim;
    float *query;           /* dim floats; unit length for cosine */
    float *widened;         /* dim floats: a stored vector of a half-precision index */
    drift::CodeQuery table;  /* per-query table of the codes */
    drift::CodeQuery old_table; /* the same for the previous quantizer, if buckets still use it */
    float *centre;          /* RaBitQ: the rotated centre of the bucket being probed */
    bool *old_quant;        /* per bucket: coded with the previous quantizer */
    drift::Candidate *order; /* buckets by centroid distance; sorted up to `probed` */
    BlockNumber *heads;      /* head page of each bucket */
    uint32 *chains;          /* chain id of each bucket */
    uint32 nbuckets, probed, max_probes;
    bool first_round;        /* the first round of probes is done */
    uint64 scanned;          /* candidates read from buckets */
    // drift.target_recall: per bucket, the gap from the query to its region
    // (-1 for the nearest); the nearest row distances seen
    // (a max-heap of up to nbest_cap order distances), the last estimate.
    bool target;
    float *gap;
    float *best;
    float *sorted;           /* room for best, in distance units, sorted */
    uint32 nbest, nbest_cap;
    double estimate;
    ScanCand *cands;
    Size ncands, capcands, candpos;
    Size batch;             /* candidates the next batch re-ranks: drift.rerank, doubling within a round */
    ScanResult *results;
    Size nresults, respos, capresults; /* rows re-ranked so far, sorted up to nready */
    Size nready;            /* results[respos..nready) may be returned now */
    HTAB *returned;         /* TIDs already returned */
    float last;             /* distance of the row returned last */
    bool graph_used;         /* the memtable graph gave the first batch L0's rows from */
    BlockNumber graph_start; /* this L0 head up to this position; the rest of */
    BlockNumber graph_end;   /* those rows are still to come */
    uint16 graph_end_slot;
    float graph_far;         /* no row farther than the graph's farthest hit comes before them */
    uint32 nreturned;        /* rows returned so far */
    uint32 *hits;            /* buckets of the first target_k rows returned */
    uint32 nhits;
    bool hits_sent;
};
typedef DriftScanOpaqueData *DriftScanOpaque;

DriftScanSettings drift_scan_settings() {
    DriftScanSettings s;
    s.probes = drift_probes;
    s.max_probes = drift_max_probes;
    s.rerank = drift_rerank;
    s.ef_search = drift_ef_search;
    s.lambda = float(drift_lambda);
    s.tau = float(drift_tau);
    s.target_recall = drift_target_recall;
    s.target_k = drift_target_k;
    s.max_scan_tuples = drift_max_scan_tuples;
    s.mem_limit = double(work_mem) * 1024.0 * drift_scan_mem_multiplier;
    s.exact = false;
    return s;
}

IndexScanDesc drift_ambeginscan(Relation index, int nkeys, int norderbys) {
    return drift_guard("scan", [&]() -> IndexScanDesc {
        IndexScanDesc scan = RelationGetIndexScan(index, nkeys, norderbys);
        DriftScanOpaque so = (DriftScanOpaque) palloc0(sizeof(DriftScanOpaqueData));
        so->ctx = AllocSetContextCreate(CurrentMemoryContext, "drift scan", ALLOCSET_DEFAULT_SIZES);
        scan->opaque = so;
        return scan;
    });
}

static void send_hits(IndexScanDesc scan);

void drift_amrescan(IndexScanDesc scan, ScanKey keys, int nkeys, ScanKey orderbys, int norderbys) {
    return drift_guard("scan", [&]() -> void {
        DriftScanOpaque so = (DriftScanOpaque) scan->opaque;
        if (keys && scan->numberOfKeys > 0) memmove(scan->keyData, keys, scan->numberOfKeys * sizeof(ScanKeyData));
        if (orderbys && scan->numberOfOrderBys > 0)
            memmove(scan->orderByData, orderbys, scan->numberOfOrderBys * sizeof(ScanKeyData));
        if (so->started) send_hits(scan);
        MemoryContextReset(so->ctx);
        so->started = false;  // start_scan, at the first amgettuple, rebuilds the state
    });
}

// Makes room for `more` items past the n of a growing array in the scan's
// memory context (at least doubling it).
template <class T>
static void reserve(DriftScanOpaque so, T *&arr, Size n, Size &cap, Size more) {
    if (n + more <= cap) return;
    cap = Max(n + more, Max(Size(256), cap * 2));
    arr = arr ? (T *) repalloc_huge(arr, sizeof(T) * cap) : (T *) MemoryContextAllocHuge(so->ctx, sizeof(T) * cap);
}

// Appends v to a growing array in the scan's memory context.
template <class T>
static void append(DriftScanOpaque so, T *&arr, Size &n, Size &cap, const T &v) {
    reserve(so, arr, n, cap, 1);
    arr[n++] = v;
}

// Appends a row with an exact distance to the current batch.
static void add_result(DriftScanOpaque so, float dist, ItemPointer tid, uint32 bucket) {
    append(so, so->results, so->nresults, so->capresults, ScanResult{dist, *tid, bucket});
}

// An order distance in distance units (L2 and cosine; the recall estimate's geometry).
static float distance_units(DriftScanOpaque so, float d) {
    return std::sqrt(Max(so->metric == drift::Metric::Cosine ? 2 * d : d, 0.0f));
}

// Notes a row distance the scan has seen (a candidate's approximate one, an
// L0 row's exact one) for the recall estimate: keeps the nbest_cap nearest.
static void note_distance(DriftScanOpaque so, float d) {
    if (so->nbest < so->nbest_cap) {
        so->best[so->nbest++] = d;
        std::push_heap(so->best, so->best + so->nbest);
    } else if (d < so->best[0]) {
        std::pop_heap(so->best, so->best + so->nbest);
        so->best[so->nbest - 1] = d;
        std::push_heap(so->best, so->best + so->nbest);
    }
}

// The scan's estimate of the recall of its first target_k rows from the
// buckets probed so far (docs/routing.md): drift::RecallEstimate over the
// ball around the query that reaches the target_k-th nearest row seen.
static double estimate_recall(DriftScanOpaque so) {
    if (so->probed >= so->nbuckets) return 1.0;
    uint32 k = uint32(so->set.target_k);
    if (so->nbest < k) return 0.0;
    float *d = so->sorted;
    for (uint32 i = 0; i < so->nbest; i++) d[i] = distance_units(so, so->best[i]);
    std::sort(d, d + so->nbest);
    double radius = d[k - 1];
    // The rows' intrinsic dimension as the index last sampled it, else as
    // the distances around this query tell it.
    double lid = so->meta.data_lid > 0 ? drift_lid_load(so->meta.data_lid) : drift::local_dimension(d, so->nbest, so->dim);
    drift::RecallEstimate est(radius, drift::effective_dimension(lid, so->dim));
    // (The buckets probed are order[0..probed).)
    for (uint32 i = 0; i < so->nbuckets; i++) {
        uint32 b = so->order[i].id;
        if (so->gap[b] < 0)
            est.add_own(i < so->probed);
        else
            est.add(so->gap[b], i < so->probed);
    }
    return est.value();
}

static void scan_l0(IndexScanDesc scan);

// drift.target_recall: each live bucket's gap (see estimate_recall): the
// farther of the boundary between the query's nearest bucket and this one
// and the bucket's sphere (centroid, radius); and the nearest distances of
// the L0 rows read so far.
static void target_gaps(IndexScanDesc scan, const DriftInfo *info) {
    DriftScanOpaque so = (DriftScanOpaque) scan->opaque;
    uint32 dim = so->dim, nb = so->nbuckets;
    const drift::Kernels &k = drift::kernels();
    so->gap = (float *) palloc(sizeof(float) * Max(so->meta.nbuckets, 1));
    uint32 nearest = 0;
    for (uint32 i = 1; i < nb; i++)
        if (so->order[i].dist < so->order[nearest].dist) nearest = i;
    float d0 = so->order[nearest].dist;
    const float *c0 = info->centroids + Size(so->order[nearest].id) * dim;
    for (uint32 i = 0; i < nb; i++) {
        uint32 b = so->order[i].id;
        if (i == nearest) {
            so->gap[b] = -1;
            continue;
        }
        const float *cb = info->centroids + Size(b) * dim;
        float e = std::sqrt(k.l2sq(cb, c0, dim)), db = so->order[i].dist;
        float plane = e > 0 ? (db - d0) / (so->metric == drift::Metric::L2 ? 2 * e : e) : 0;
        float centre = so->metric == drift::Metric::L2 ? std::sqrt(Max(db, 0.0f)) : std::sqrt(k.l2sq(so->query, cb, dim));
        so->gap[b] = Max(plane, centre - info->radius[b]);
    }
    so->nbest_cap = Max(uint32(so->set.target_k), 32u);
    so->best = (float *) palloc(sizeof(float) * so->nbest_cap);
    so->sorted = (float *) palloc(sizeof(float) * so->nbest_cap);
    for (Size i = 0; i < so->nresults; i++) note_distance(so, so->results[i].dist);
}

// Rescores the buckets for drift.lambda and drift.tau (drift::routing_score;
// the window is the distance of the drift.probes-th nearest centroid, at
// least the second, past the nearest).
static void route(IndexScanDesc scan, const DriftInfo *info) {
    DriftScanOpaque so = (DriftScanOpaque) scan->opaque;
    uint32 nb = so->nbuckets;
    if (nb == 0) return;
    float *d = (float *) palloc(sizeof(float) * nb);
    for (uint32 i = 0; i < nb; i++) d[i] = so->order[i].dist;
    uint32 p = Min(nb, uint32(Max(so->set.probes, 2))) - 1;
    std::nth_element(d, d + p, d + nb);
    float window = d[p] - *std::min_element(d, d + p + 1);
    pfree(d);
    float *share = (float *) palloc0(sizeof(float) * Max(so->meta.nbuckets, 1));
    bool hits = so->set.lambda > 0 && drift_monitor_hit_shares(scan->indexRelation, so->meta.nbuckets, share);
    for (uint32 i = 0; i < nb; i++) {
        uint32 b = so->order[i].id;
        float heat = drift::bucket_heat(info->temperature[b], hits ? share[b] : 0);
        float density = drift::bucket_density(info->nlive[b], so->set.tau);
        so->order[i].dist = drift::routing_score(so->order[i].dist, window, heat, density, so->set.lambda);
    }
    pfree(share);
}

// Starts a scan: the query, the first batch with every L0 row, the bucket
// order and the codes' table.
static void start_scan(IndexScanDesc scan) {
    DriftScanOpaque so = (DriftScanOpaque) scan->opaque;
    Relation index = scan->indexRelation;
    if (scan->numberOfOrderBys == 0)
        ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED), errmsg("a drift index can only be scanned in distance order"),
                        errhint("Use ORDER BY column <-> query LIMIT n.")));
    if (!IsMVCCSnapshot(scan->xs_snapshot))
        ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED), errmsg("a drift index can only be scanned with an MVCC snapshot"),
                        errhint("The chains a scan reads are kept for the snapshots that may still read them.")));
    MemoryContext ctx = so->ctx;
    bool preset = so->preset;
    const float *preset_query = so->preset_query;
    uint32 preset_dim = so->preset_dim;
    DriftScanSettings set = so->set;
    memset(so, 0, sizeof(*so));  // everything it pointed to was in ctx, reset by rescan
    so->ctx = ctx;
    so->preset = preset;
    so->preset_query = preset_query;
    so->preset_dim = preset_dim;
    so->set = preset ? set : drift_scan_settings();
    so->started = true;
    so->last = -std::numeric_limits<float>::infinity();
    DriftInfo *info = drift_info(index);
    so->meta = info->meta;
    so->metric = info->metric;
    so->dim = info->meta.dim;

    HASHCTL hctl;
    hctl.keysize = sizeof(ItemPointerData);
    hctl.entrysize = sizeof(ItemPointerData);
    hctl.hcxt = so->ctx;
    so->returned = hash_create("drift returned tids", 256, &hctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);

    ScanKey key = &scan->orderByData[0];
    uint32 dim = so->dim;
    if (preset) {
        if (preset_dim != dim)  // the index took its dimension since the query was read
            ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION),
                            errmsg("vector has %u dimensions, but index \"%s\" has %u", preset_dim,
                                   RelationGetRelationName(index), dim),
                            errhint("Every vector in a drift index must have the same dimension.")));
        so->query = (float *) palloc(sizeof(float) * Max(dim, 1));
        memcpy(so->query, preset_query, sizeof(float) * dim);
    } else if (key->sk_flags & SK_ISNULL) {
        // A NULL query orders nothing: every row ties, as with a zero vector.
        so->query = (float *) palloc0(sizeof(float) * Max(dim, 1));
    } else {
        uint32 qdim;
        so->query = drift_index_vector(index, key->sk_argument, dim, so->metric, so->meta.vec_kind, false, &qdim);
        if (dim == 0) dim = so->dim = qdim;
    }
    so->widened = (float *) palloc(sizeof(float) * Max(dim, 1));
    scan_l0(scan);
    // The bucket view is taken after L0 is read: a flush copies rows into
    // buckets before it unlinks their L0 pages, so a row this scan missed
    // in L0 is in the buckets of any view taken later. The view's chains
    // stay readable while this scan runs (retired chains outlive every
    // snapshot that may have seen them in use).
    info = drift_info(index);
    if (!(info->meta.flags & DRIFT_META_TRAINED) || info->meta.dim != dim) return;
    so->meta = info->meta;

    // Score every bucket; each probe round takes the best ones left.
    uint32 nb = 0, nbk = Max(so->meta.nbuckets, 1);
    so->order = (drift::Candidate *) palloc(sizeof(drift::Candidate) * nbk);
    for (uint32 b = 0; b < so->meta.nbuckets; b++)
        if (info->heads[b] != InvalidBlockNumber)
            so->order[nb++] =
                drift::Candidate{drift::order_distance(so->metric, so->query, info->centroids + Size(b) * dim, dim), b};
    so->nbuckets = nb;
    so->target = so->set.target_recall > 0 && !so->set.exact && so->metric != drift::Metric::InnerProduct && nb > 0;
    if (so->target) target_gaps(scan, info);
    if ((so->set.lambda > 0 || so->set.tau > 0) && !so->set.exact) route(scan, info);
    so->heads = (BlockNumber *) palloc(sizeof(BlockNumber) * nbk);
    memcpy(so->heads, info->heads, sizeof(BlockNumber) * so->meta.nbuckets);
    so->chains = (uint32 *) palloc(sizeof(uint32) * nbk);
    memcpy(so->chains, info->chains, sizeof(uint32) * so->meta.nbuckets);
    if (so->set.exact) so->set.probes = so->set.max_probes = int(Min(nb, uint32(INT_MAX)));
    so->max_probes = so->set.max_probes < 0 ? nb : Min(nb, uint32(so->set.max_probes));
    so->max_probes = Max(so->max_probes, Min(nb, uint32(so->set.probes)));
    // Room for the first round's candidates, as many as its buckets hold on
    // average (append grows the array past it).
    double first = double(drift_info_rows(info)) * Min(nb, uint32(so->set.probes)) / Max(nb, 1u);
    reserve(so, so->cands, 0, so->capcands, Size(Min(first, 1e7)) + 64);

    Size qfloats = drift::code_query_floats(drift::CodeKind(so->meta.code_kind), dim);
    so->centre = (float *) palloc(sizeof(float) * drift::rabitq_padded(dim));
    drift::code_prepare(drift_quantizer(info, false), so->metric, so->query, so->table,
                        (float *) palloc(sizeof(float) * qfloats));
    if (info->old_quant != NULL) {
        drift::code_prepare(drift_quantizer(info, true), so->metric, so->query, so->old_table,
                            (float *) palloc(sizeof(float) * qfloats));
        so->old_quant = (bool *) palloc(sizeof(bool) * nbk);
        for (uint32 b = 0; b < so->meta.nbuckets; b++) so->old_quant[b] = drift_bucket_old_quant(info, b);
    }
    if (!so->preset && drift_monitor_draw()) drift_monitor_sample(index, so->query, dim, &so->set, drift_info_rows(info));
}

// Scans one bucket chain, adding a candidate per live entry.
static void probe_bucket(IndexScanDesc scan, uint32 bucket) {
    DriftScanOpaque so = (DriftScanOpaque) scan->opaque;
    drift::CodeQuery *table = so->old_quant && so->old_quant[bucket] ? &so->old_table : &so->table;
    Relation index = scan->indexRelation;
    const DriftMetaPageData *meta = &so->meta;
    DriftCursor c;
    drift_cursor_begin(&c, index, so->heads[bucket], DRIFT_PAGE_HOT, so->chains[bucket], meta, BUFFER_LOCK_SHARE);
    for (Page page; (page = drift_cursor_next(&c)) != NULL;) {
        DriftHotHeader *h = drift_hot_header(page);
        if (table->kind == drift::CodeKind::RaBitQ && drift_cursor_block(&c) == so->heads[bucket]) {
            // The codes of a RaBitQ chain are relative to the centre on its first page.
            if (!drift_hot_centre(meta, page, so->centre)) {
                BlockNumber blkno = drift_cursor_block(&c);
                drift_cursor_end(&c);
                drift_corrupt(index, blkno, "A chain's first page has no centre.");
            }
            drift::code_set_centre(*table, so->centre);
        }
        ItemPointerData *tids = drift_hot_tids(page);
        bool keep = drift_keeps_vectors(meta);
        for (uint16 s = 0; s < h->nslots; s++) {
            if (!ItemPointerIsValid(&tids[s])) continue;
            uint16 ci = keep ? s / meta->cold_cap : 0;
            if (keep && ci >= h->ncold) {
                BlockNumber blkno = drift_cursor_block(&c);
                drift_cursor_end(&c);
                drift_corrupt(index, blkno, "A slot has no cold page.");
            }
            float lower, d = drift::code_distance(*table, drift_hot_code(page, meta->code_bytes, s), &lower);
            append(so, so->cands, so->ncands, so->capcands,
                   ScanCand{d, lower, tids[s], uint16(keep ? s % meta->cold_cap : 0),
                            keep ? h->cold[ci] : InvalidBlockNumber, bucket});
            so->scanned++;
            if (so->target) note_distance(so, d);
        }
    }
}

// Adds the memtable graph's hits that L0 still holds to the current batch.
// A slot whose TID changed was cleared by VACUUM: that row is gone.
static void add_graph_hits(IndexScanDesc scan, DriftL0Hit *hits, uint32 n) {
    DriftScanOpaque so = (DriftScanOpaque) scan->opaque;
    std::sort(hits, hits + n, [](const DriftL0Hit &a, const DriftL0Hit &b) {
        return a.blkno < b.blkno || (a.blkno == b.blkno && a.slot < b.slot);
    });
    Buffer buf = InvalidBuffer;
    for (uint32 i = 0; i < n; i++) {
        if (!BufferIsValid(buf) || BufferGetBlockNumber(buf) != hits[i].blkno) {
            if (BufferIsValid(buf)) UnlockReleaseBuffer(buf);
            if (!drift_block_exists(scan->indexRelation, hits[i].blkno))
                drift_corrupt(scan->indexRelation, hits[i].blkno, "A memtable row points outside the index.");
            buf = ReadBuffer(scan->indexRelation, hits[i].blkno);
            LockBuffer(buf, BUFFER_LOCK_SHARE);
        }
        Page page = BufferGetPage(buf);
        if (drift_page_type(page) != DRIFT_PAGE_L0) continue;  // recycled since (a standby without feedback)
        drift_check_page(scan->indexRelation, page, hits[i].blkno, DRIFT_PAGE_L0, &so->meta);
        if (hits[i].slot < drift_vec_header(page)->nslots &&
            ItemPointerEquals(&drift_vec_entry(page, so->dim, hits[i].slot)->tid, &hits[i].tid))
            add_result(so, hits[i].dist, &hits[i].tid, SCAN_L0);
    }
    if (BufferIsValid(buf)) UnlockReleaseBuffer(buf);
}

// Adds the live L0 rows from position (blkno, from) up to (stop, stop_slot),
// or to the end of L0 with stop invalid, to the current batch.
static void scan_l0_range(IndexScanDesc scan, BlockNumber blkno, uint16 from, BlockNumber stop, uint16 stop_slot) {
    DriftScanOpaque so = (DriftScanOpaque) scan->opaque;
    DriftCursor c;
    drift_cursor_begin(&c, scan->indexRelation, blkno, DRIFT_PAGE_L0, 0, &so->meta, BUFFER_LOCK_SHARE);
    for (Page page; (page = drift_cursor_next(&c)) != NULL; from = 0) {
        uint16 n = drift_vec_header(page)->nslots;
        bool last = drift_cursor_block(&c) == stop;
        if (last) n = Min(n, stop_slot);
        for (uint16 s = from; s < n; s++) {
            DriftVecEntry e = drift_vec_entry(page, so->dim, s);
            if (!ItemPointerIsValid(&e->tid)) continue;
            const float *v = drift_vec_read(page, so->dim, s, so->widened);
            add_result(so, drift::order_distance(so->metric, so->query, v, so->dim), &e->tid, SCAN_L0);
        }
        if (last) {
            drift_cursor_end(&c);
            break;
        }
    }
}

// Adds L0's rows to the first batch with their exact distances: the
// memtable graph's drift.ef_search nearest, if a graph covers L0, and every
// live row past what the graph holds. The graph's other rows come with the
// next batch, if the executor asks for one.
static void scan_l0(IndexScanDesc scan) {
    DriftScanOpaque so = (DriftScanOpaque) scan->opaque;
    DriftL0Hit *hits = (DriftL0Hit *) palloc(sizeof(DriftL0Hit) * so->set.ef_search);
    uint32 nhits = 0;
    so->graph_used = !so->set.exact &&
                     drift_memtable_search(scan->indexRelation, &so->meta, so->query, uint32(so->set.ef_search), hits,
                                           &nhits, &so->graph_end, &so->graph_end_slot);
    if (so->graph_used) {
        so->graph_start = so->meta.l0_head;
        // (Given all the graph holds, it bounds nothing.)
        so->graph_far = nhits < uint32(so->set.ef_search) ? std::numeric_limits<float>::infinity()
                                                          : hits[nhits - 1].dist;
        add_graph_hits(scan, hits, nhits);
        scan_l0_range(scan, so->graph_end, so->graph_end_slot, InvalidBlockNumber, 0);
    } else {
        scan_l0_range(scan, so->meta.l0_head, 0, InvalidBlockNumber, 0);
    }
    pfree(hits);
}

// Re-ranks candidates [from, to) with exact distances from the table's
// rows as the scan's snapshot sees them (in TID order: page by page). A row
// the snapshot does not see is left out: the executor would drop it.
static void rerank_heap(IndexScanDesc scan, Size from, Size to) {
    DriftScanOpaque so = (DriftScanOpaque) scan->opaque;
    std::sort(so->cands + from, so->cands + to,
              [](const ScanCand &a, const ScanCand &b) { return ItemPointerCompare((ItemPointer) &a.tid, (ItemPointer) &b.tid) < 0; });
    DriftHeapReader r;
    drift_heap_reader_begin(&r, scan->indexRelation, scan->heapRelation, scan->xs_snapshot, &so->meta);
    for (Size i = from; i < to; i++) {
        ScanCand *c = &so->cands[i];
        if (const float *v = drift_heap_vector(&r, &c->tid))
            add_result(so, drift::order_distance(so->metric, so->query, v, so->dim), &c->tid, c->bucket);
    }
    drift_heap_reader_end(&r);
}

// Re-ranks candidates [from, to) with exact distances into the batch. A
// candidate whose cold slot no longer holds its TID was removed by VACUUM
// after the bucket was read, so it is dead to every snapshot: skip it.
static void rerank(IndexScanDesc scan, Size from, Size to) {
    DriftScanOpaque so = (DriftScanOpaque) scan->opaque;
    if (!drift_keeps_vectors(&so->meta)) return rerank_heap(scan, from, to);
    std::sort(so->cands + from, so->cands + to,
              [](const ScanCand &a, const ScanCand &b) { return a.cold < b.cold || (a.cold == b.cold && a.slot < b.slot); });
    Buffer buf = InvalidBuffer;
    for (Size i = from; i < to; i++) {
        ScanCand *c = &so->cands[i];
        if (!BufferIsValid(buf) || BufferGetBlockNumber(buf) != c->cold) {
            if (BufferIsValid(buf)) UnlockReleaseBuffer(buf);
            if (!drift_block_exists(scan->indexRelation, c->cold))
                drift_corrupt(scan->indexRelation, c->cold, "A cold page link points outside the index.");
            buf = ReadBuffer(scan->indexRelation, c->cold);
            LockBuffer(buf, BUFFER_LOCK_SHARE);
        }
        Page page = BufferGetPage(buf);
        // A page recycled since the bucket was read holds no live candidate;
        // anything that is not a drift page at all is corruption.
        int type = drift_page_type(page);
        if (type == 0 || (type > 0 && type != DRIFT_PAGE_COLD)) continue;
        drift_check_page(scan->indexRelation, page, c->cold, DRIFT_PAGE_COLD, &so->meta);
        if (c->slot >= drift_vec_header(page)->nslots) continue;
        DriftVecEntry e = drift_vec_entry(page, so->dim, c->slot);
        if (!ItemPointerEquals(&e->tid, &c->tid)) continue;
        const float *v = drift_vec_read(page, so->dim, c->slot, so->widened);
        add_result(so, drift::order_distance(so->metric, so->query, v, so->dim), &c->tid, c->bucket);
    }
    if (BufferIsValid(buf)) UnlockReleaseBuffer(buf);
}

// The smallest exact distance a candidate not re-ranked yet can have
// (infinity if none is left).
static float next_bound(DriftScanOpaque so) {
    float m = std::numeric_limits<float>::infinity();
    for (Size i = so->candpos; i < so->ncands; i++) m = Min(m, so->cands[i].lower);
    return m;
}

// True if the scan may probe another bucket: one is left within
// max_probes, and past its first round it has read fewer than
// drift.max_scan_tuples candidates and uses less memory than its limit.
static bool may_probe(DriftScanOpaque so) {
    if (so->probed >= so->max_probes) return false;
    if (!so->first_round || so->set.exact) return true;
    if (so->set.max_scan_tuples >= 0 && so->scanned >= uint64(so->set.max_scan_tuples)) return false;
    return double(MemoryContextMemAllocated(so->ctx, true)) < so->set.mem_limit;
}

// Probes the next round: the best drift.probes buckets left (as many as
// may_probe allows). After the first round, with drift.target_recall, goes
// on bucket by bucket until the recall estimate reaches the target.
static void probe_round(IndexScanDesc scan) {
    DriftScanOpaque so = (DriftScanOpaque) scan->opaque;
    uint32 upto = Min(so->max_probes, so->probed + uint32(so->set.probes));
    drift::select_smallest(so->order + so->probed, so->nbuckets - so->probed, upto - so->probed);
    for (; so->probed < upto && may_probe(so); so->probed++) {
        CHECK_FOR_INTERRUPTS();
        probe_bucket(scan, so->order[so->probed].id);
    }
    if (so->first_round) return;
    so->first_round = true;
    if (!so->target) return;
    for (;;) {
        so->estimate = estimate_recall(so);
        if (so->estimate >= so->set.target_recall || !may_probe(so)) break;
        drift::select_smallest(so->order + so->probed, so->nbuckets - so->probed, 1);
        CHECK_FOR_INTERRUPTS();
        probe_bucket(scan, so->order[so->probed++].id);
    }
}

// Adds the L0 rows the graph held but did not give to the batch (once).
static void l0_rest(IndexScanDesc scan) {
    DriftScanOpaque so = (DriftScanOpaque) scan->opaque;
    if (!so->graph_used) return;
    scan_l0_range(scan, so->graph_start, 0, so->graph_end, so->graph_end_slot);
    so->graph_used = false;
}

// Makes the next batch ready: re-ranks rounds of candidates (probing
// further buckets when the probed ones are used up) into the rows kept
// from earlier rounds (the first batch holds L0's), until some rows are no
// farther than the nearest candidate not yet re-ranked; those are the batch,
// in exact order, and the others wait for a later one. False if the scan
// has nothing more to give.
static bool next_batch(IndexScanDesc scan) {
    DriftScanOpaque so = (DriftScanOpaque) scan->opaque;
    // Drop the rows returned; keep those held back.
    memmove(so->results, so->results + so->respos, sizeof(ScanResult) * (so->nresults - so->respos));
    so->nresults -= so->respos;
    so->respos = so->nready = 0;
    for (;;) {
        if (so->candpos == so->ncands && may_probe(so)) {
            // Probe the next round of buckets; drop the used candidates.
            so->ncands = so->candpos = 0;
            so->batch = Size(so->set.rerank);  // (each round's batches start small again)
            probe_round(scan);
            continue;
        }
        if (so->candpos < so->ncands) {
            Size take = Min(so->batch, so->ncands - so->candpos);
            so->batch = Min(so->batch * 2, Size(MaxAllocHugeSize / sizeof(ScanCand)));
            ScanCand *first = so->cands + so->candpos;
            drift::select_smallest(first, so->ncands - so->candpos, take,
                                   [](const ScanCand &a, const ScanCand &b) { return a.approx < b.approx; });
            rerank(scan, so->candpos, so->candpos + take);
            so->candpos += take;
        }
        auto by_distance = [](const ScanResult &a, const ScanResult &b) { return a.dist < b.dist; };
        std::sort(so->results, so->results + so->nresults, by_distance);
        // A row farther than a candidate not re-ranked yet may be waits: that
        // candidate's row may be nearer. With the probed buckets used up,
        // every row is ready (further buckets are probed only when the
        // executor asks for more rows: drift.probes bounds a query's work).
        // Nor may one farther than the graph's farthest hit while the L0
        // rows it did not give are still to come: they come in once no row
        // within that reach is left.
        float bound = next_bound(so);
        if (so->graph_used && !(so->nresults > 0 && so->results[0].dist <= Min(bound, so->graph_far))) {
            l0_rest(scan);
            std::sort(so->results, so->results + so->nresults, by_distance);
        }
        if (so->graph_used) bound = Min(bound, so->graph_far);
        while (so->nready < so->nresults && !(so->results[so->nready].dist > bound)) so->nready++;
        if (so->nready > 0) return true;
        if (so->candpos == so->ncands && !may_probe(so)) return false;  // nothing left
    }
}

// Passes the buckets of the scan's first rows to the monitor (once).
static void send_hits(IndexScanDesc scan) {
    DriftScanOpaque so = (DriftScanOpaque) scan->opaque;
    if (so->hits_sent) return;
    so->hits_sent = true;
    if (so->nhits > 0) drift_monitor_add_hits(scan->indexRelation, so->hits, so->nhits);
}

// Notes where a row the scan returns came from: the buckets of its first
// target_k rows are its hits.
static void note_returned(IndexScanDesc scan, const ScanResult *r) {
    DriftScanOpaque so = (DriftScanOpaque) scan->opaque;
    if (so->preset || so->hits_sent) return;
    if (r->bucket != SCAN_L0) {
        if (so->hits == NULL) so->hits = (uint32 *) MemoryContextAlloc(so->ctx, sizeof(uint32) * so->set.target_k);
        so->hits[so->nhits++] = r->bucket;
    }
    if (++so->nreturned >= uint32(so->set.target_k)) send_hits(scan);
}

bool drift_amgettuple(IndexScanDesc scan, ScanDirection) {
    return drift_guard("scan", [&]() -> bool {
        DriftScanOpaque so = (DriftScanOpaque) scan->opaque;
        MemoryContext old = MemoryContextSwitchTo(so->ctx);
        if (!so->started) {
            start_scan(scan);
            next_batch(scan);
            pgstat_count_index_scan(scan->indexRelation);
        }
        for (;;) {
            while (so->respos < so->nready) {
                ScanResult *r = &so->results[so->respos++];
                // Closer than a row already returned (a later batch): out of order.
                if (drift_strict_order && r->dist < so->last) continue;
                bool found;
                hash_search(so->returned, &r->tid, HASH_ENTER, &found);
                if (found) continue;
                so->last = r->dist;
                note_returned(scan, r);
                scan->xs_heaptid = r->tid;
                scan->xs_recheck = false;
                scan->xs_recheckorderby = false;
                MemoryContextSwitchTo(old);
                return true;
            }
            l0_rest(scan);
            if (!next_batch(scan)) break;
        }
        MemoryContextSwitchTo(old);
        return false;
    });
}

void drift_amendscan(IndexScanDesc scan) {
    return drift_guard("scan", [&]() -> void {
        DriftScanOpaque so = (DriftScanOpaque) scan->opaque;
        if (so->started) send_hits(scan);
        MemoryContextDelete(so->ctx);
        pfree(so);
        scan->opaque = NULL;
    });
}

uint32 drift_scan_top(Relation heap, Relation index, const float *query, uint32 dim, uint32 k,
                      const DriftScanSettings *s, ItemPointerData *tids, float *dists, DriftScanReport *report) {
    IndexScanDesc scan = index_beginscan(heap, index, GetActiveSnapshot(), 0, 1);
    DriftScanOpaque so = (DriftScanOpaque) scan->opaque;
    so->preset = true;
    so->preset_query = query;
    so->preset_dim = dim;
    so->set = *s;
    index_rescan(scan, NULL, 0, NULL, 1);
    uint32 n = 0;
    for (ItemPointer tid; n < k && (tid = index_getnext_tid(scan, ForwardScanDirection)) != NULL; n++) {
        tids[n] = *tid;
        dists[n] = so->last;
    }
    report->probed = so->probed;
    report->buckets = so->nbuckets;
    report->candidates = so->scanned;
    report->estimated_recall = so->target ? so->estimate : -1;
    index_endscan(scan);
    return n;
}
