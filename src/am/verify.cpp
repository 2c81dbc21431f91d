// drift_verify(regclass): a structural check of an index, one row per
// problem found (none for a healthy index). It takes a ShareLock on the
// index, so inserts and VACUUM wait and the structure holds still.
//
// Checked: metapage; quantizer chain length; directory chain and bucket
// count; every bucket chain (page types and counts, the page's bucket and
// chain id, the tail, each live slot's cold page holding the same TID); the
// L0 chain; no page reached twice; no page of a live chain unreachable.
// Pages of retired chains, and of chains a crash cut off before they were
// linked, are not problems: the next sweep frees them.
#include "drift.h"

#include "../storage/buffers.h"

extern "C" {
#include "access/relation.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/tuplestore.h"

PG_FUNCTION_INFO_V1(drift_verify);
Datum drift_verify(PG_FUNCTION_ARGS);
}

// State of one verification; plain data.
struct Verifier {
    Relation index;
    DriftMetaPageData meta;
    BlockNumber nblocks;
    bool *seen;
    uint32 *live;  /* chain ids of buckets and L0 */
    uint32 nlive, caplive;
    ReturnSetInfo *rsinfo;
};

// Records chain as live.
static void live_chain(Verifier *v, uint32 chain) {
    if (v->nlive == v->caplive) {
        v->caplive *= 2;
        v->live = (uint32 *) repalloc(v->live, sizeof(uint32) * v->caplive);
    }
    v->live[v->nlive++] = chain;
}

// Adds one problem row (blkno may be InvalidBlockNumber: not about a page).
static void report(Verifier *v, BlockNumber blkno, const char *fmt, ...) pg_attribute_printf(3, 4);
static void report(Verifier *v, BlockNumber blkno, const char *fmt, ...) {
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    Datum values[2] = {Int64GetDatum(int64(blkno)), CStringGetTextDatum(msg)};
    bool nulls[2] = {blkno == InvalidBlockNumber, false};
    tuplestore_putvalues(v->rsinfo->setResult, v->rsinfo->setDesc, values, nulls);
}

// Marks blkno reached from `from`; false (reported) if it is outside the
// index or was reached before.
static bool reach(Verifier *v, BlockNumber blkno, const char *from) {
    if (blkno >= v->nblocks) {
        report(v, InvalidBlockNumber, "%s links to block %u, outside the index (%u blocks)", from, blkno, v->nblocks);
        return false;
    }
    if (v->seen[blkno]) {
        report(v, blkno, "%s reaches a page already reached from elsewhere", from);
        return false;
    }
    v->seen[blkno] = true;
    return true;
}

// Reads blkno share-locked if it is a sound page of `type`, else reports
// and returns InvalidBuffer.
static Buffer read_page(Verifier *v, BlockNumber blkno, uint16 type) {
    Buffer buf = ReadBuffer(v->index, blkno);
    LockBuffer(buf, BUFFER_LOCK_SHARE);
    char detail[96];
    const char *problem = drift_page_problem(BufferGetPage(buf), type, &v->meta, detail, sizeof(detail));
    if (problem == NULL) return buf;
    report(v, blkno, "%s", problem);
    UnlockReleaseBuffer(buf);
    return InvalidBuffer;
}

// Checks one hot page's cold pages and that each live slot's vector is there.
static void verify_cold(Verifier *v, BlockNumber blkno, const DriftHotHeader *h, ItemPointerData *tids, uint32 chain) {
    const DriftMetaPageData *m = &v->meta;
    for (uint16 c = 0; c < h->ncold; c++) {
        if (!reach(v, h->cold[c], "a bucket page")) continue;
        Buffer cbuf = read_page(v, h->cold[c], DRIFT_PAGE_COLD);
        if (!BufferIsValid(cbuf)) continue;
        Page cpage = BufferGetPage(cbuf);
        if (DriftPageGetOpaque(cpage)->chain != chain)
            report(v, h->cold[c], "cold page of chain %u belongs to a hot page of chain %u", DriftPageGetOpaque(cpage)->chain, chain);
        for (uint16 s = c * m->cold_cap; s < h->nslots && s < (c + 1) * m->cold_cap; s++) {
            if (!ItemPointerIsValid(&tids[s])) continue;
            uint16 cs = s % m->cold_cap;
            if (cs >= drift_vec_header(cpage)->nslots || !ItemPointerEquals(&drift_vec_entry(cpage, m->dim, cs)->tid, &tids[s]))
                report(v, blkno, "slot %u: its cold page %u does not hold its TID", s, h->cold[c]);
        }
        UnlockReleaseBuffer(cbuf);
    }
    if (h->nslots > 0 && (h->nslots - 1) / m->cold_cap >= h->ncold)
        report(v, blkno, "%u slots need more than its %u cold pages", h->nslots, h->ncold);
}

// Walks bucket b's chain from head; checks it ends at tail. Returns live entries.
static uint64 verify_bucket(Verifier *v, uint32 b, BlockNumber head, BlockNumber tail, uint32 chain) {
    uint64 live = 0;
    BlockNumber last = InvalidBlockNumber;
    char from[48];
    snprintf(from, sizeof(from), "bucket %u", b);
    for (BlockNumber blkno = head; blkno != InvalidBlockNumber;) {
        CHECK_FOR_INTERRUPTS();
        if (!reach(v, blkno, from)) return live;
        Buffer buf = read_page(v, blkno, DRIFT_PAGE_HOT);
        if (!BufferIsValid(buf)) return live;
        Page page = BufferGetPage(buf);
        DriftHotHeader *h = drift_hot_header(page);
        ItemPointerData *tids = drift_hot_tids(page);
        if (h->bucket != b) report(v, blkno, "page of bucket %u is in the chain of bucket %u", h->bucket, b);
        if (DriftPageGetOpaque(page)->chain != chain)
            report(v, blkno, "page of chain %u is in bucket %u's chain %u", DriftPageGetOpaque(page)->chain, b, chain);
        uint16 valid = 0;
        for (uint16 s = 0; s < h->nslots; s++) valid += ItemPointerIsValid(&tids[s]);
        if (valid != h->nlive) report(v, blkno, "header counts %u live entries, the page holds %u", h->nlive, valid);
        uint32 centre = blkno == head ? drift_centre_bytes(v->meta.code_kind, v->meta.dim) : 0;
        if (h->centre_bytes != centre)
            report(v, blkno, "the page keeps a centre of %u bytes, not %u", h->centre_bytes, centre);
        live += valid;
        if (drift_keeps_vectors(&v->meta)) verify_cold(v, blkno, h, tids, chain);
        last = blkno;
        blkno = DriftPageGetOpaque(page)->next;
        UnlockReleaseBuffer(buf);
    }
    if (last != tail) report(v, last, "bucket %u's chain ends here, but the directory says it ends at %u", b, tail);
    return live;
}

// Walks the directory and every bucket.
static void verify_buckets(Verifier *v) {
    const DriftMetaPageData *m = &v->meta;
    for (BlockNumber head : {m->quant_head, m->old_quant_head}) {
        Size qbytes = 0;
        if (head == InvalidBlockNumber) continue;
        for (BlockNumber blkno = head; blkno != InvalidBlockNumber;) {
            if (!reach(v, blkno, "a quantizer chain")) break;
            Buffer buf = read_page(v, blkno, DRIFT_PAGE_BLOB);
            if (!BufferIsValid(buf)) break;
            qbytes += drift_blob_header(BufferGetPage(buf))->nbytes;
            blkno = DriftPageGetOpaque(BufferGetPage(buf))->next;
            UnlockReleaseBuffer(buf);
        }
        if (qbytes != sizeof(float) * 2 * m->dim)
            report(v, head, "a quantizer chain holds %zu bytes, not %zu", size_t(qbytes), sizeof(float) * 2 * m->dim);
    }

    uint32 b = 0;
    for (BlockNumber blkno = m->dir_head; blkno != InvalidBlockNumber;) {
        if (!reach(v, blkno, "the directory chain")) break;
        Buffer buf = read_page(v, blkno, DRIFT_PAGE_DIR);
        if (!BufferIsValid(buf)) break;
        Page page = BufferGetPage(buf);
        uint32 n = drift_dir_header(page)->nentries;
        DriftDirEntryData *entries = (DriftDirEntryData *) palloc(sizeof(DriftDirEntryData) * Max(n, 1));
        for (uint32 i = 0; i < n; i++) entries[i] = *drift_dir_entry(page, m->dim, i);
        BlockNumber next = DriftPageGetOpaque(page)->next;
        UnlockReleaseBuffer(buf);
        for (uint32 i = 0; i < n; i++, b++) {
            if (entries[i].chain == 0) continue;
            live_chain(v, entries[i].chain);
            uint64 live = verify_bucket(v, b, entries[i].head, entries[i].tail, entries[i].chain);
            if (entries[i].nlive > live && entries[i].ndead == 0)
                report(v, blkno, "bucket %u: the directory counts %u entries, its chain holds %llu", b, entries[i].nlive,
                       (unsigned long long) live);
        }
        pfree(entries);
        blkno = next;
    }
    if (b != m->nbuckets) report(v, m->dir_head, "the directory holds %u buckets, the metapage says %u", b, m->nbuckets);
}

// Walks the L0 chain.
static void verify_l0(Verifier *v) {
    BlockNumber last = InvalidBlockNumber;
    for (BlockNumber blkno = v->meta.l0_head; blkno != InvalidBlockNumber;) {
        if (!reach(v, blkno, "the L0 chain")) return;
        Buffer buf = read_page(v, blkno, DRIFT_PAGE_L0);
        if (!BufferIsValid(buf)) return;
        Page page = BufferGetPage(buf);
        live_chain(v, DriftPageGetOpaque(page)->chain);
        DriftVecHeader *h = drift_vec_header(page);
        uint16 valid = 0;
        for (uint16 s = 0; s < h->nslots; s++) valid += ItemPointerIsValid(&drift_vec_entry(page, v->meta.dim, s)->tid);
        if (valid != h->nlive) report(v, blkno, "L0 page header counts %u live entries, the page holds %u", h->nlive, valid);
        last = blkno;
        blkno = DriftPageGetOpaque(page)->next;
        UnlockReleaseBuffer(buf);
    }
    if (last != v->meta.l0_tail) report(v, last, "the L0 chain ends here, but the metapage says it ends at %u", v->meta.l0_tail);
}

// Every page not reached must be free (or never initialized).
static void verify_unreached(Verifier *v) {
    for (BlockNumber blkno = DRIFT_METAPAGE_BLKNO + 1; blkno < v->nblocks; blkno++) {
        if (v->seen[blkno]) continue;
        CHECK_FOR_INTERRUPTS();
        Buffer buf = ReadBuffer(v->index, blkno);
        LockBuffer(buf, BUFFER_LOCK_SHARE);
        int type = drift_page_type(BufferGetPage(buf));
        uint32 chain = type > 0 ? DriftPageGetOpaque(BufferGetPage(buf))->chain : 0;
        bool live = false;
        for (uint32 i = 0; i < v->nlive && !live; i++) live = v->live[i] == chain;
        if (type < 0)
            report(v, blkno, "an unreachable page is not a drift page");
        else if (type == DRIFT_PAGE_META || (type == DRIFT_PAGE_DIR && chain == 0))  // (a moved one waits for release)
            report(v, blkno, "a page of type %d is in use but no chain reaches it", type);
        else if (type != 0 && type != DRIFT_PAGE_FREE && live)
            report(v, blkno, "a page of live chain %u is not reached from its chain", chain);
        UnlockReleaseBuffer(buf);
    }
}

Datum drift_verify(PG_FUNCTION_ARGS) {
    return drift_guard("drift_verify", [&]() -> Datum {
        InitMaterializedSRF(fcinfo, 0);
        Verifier v;
        memset(&v, 0, sizeof(v));
        v.rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
        v.index = drift_open_index(PG_GETARG_OID(0), ShareLock, DRIFT_ACCESS_INSPECT);
        v.nblocks = RelationGetNumberOfBlocks(v.index);
        v.seen = (bool *) palloc0(Max(v.nblocks, 1));
        Buffer buf = ReadBuffer(v.index, DRIFT_METAPAGE_BLKNO);
        LockBuffer(buf, BUFFER_LOCK_SHARE);
        char detail[96];
        const char *problem = drift_page_problem(BufferGetPage(buf), DRIFT_PAGE_META, NULL, detail, sizeof(detail));
        v.meta = *DriftPageGetMeta(BufferGetPage(buf));
        UnlockReleaseBuffer(buf);
        v.seen[DRIFT_METAPAGE_BLKNO] = true;
        if (problem == NULL) problem = drift_meta_problem(&v.meta, detail, sizeof(detail));
        if (problem == NULL && drift_dir_min_blocks(&v.meta) > v.nblocks)
            problem = "The metapage counts more buckets than the index has room for.";
        if (problem != NULL)
            report(&v, DRIFT_METAPAGE_BLKNO, "%s", problem);
        else {
            v.caplive = v.meta.nbuckets + 8;
            v.live = (uint32 *) palloc(sizeof(uint32) * v.caplive);
            if (v.meta.flags & DRIFT_META_TRAINED) verify_buckets(&v);
            verify_l0(&v);
            verify_unreached(&v);
        }
        relation_close(v.index, ShareLock);
        return (Datum) 0;
    });
}
