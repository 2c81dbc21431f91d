// Page initialization, capacities and corruption checks.
// (src/core before any server header: see src/core/core.hpp.)
#include "../core/codes.hpp"
#include "../core/distance.hpp"
#include "../core/half.hpp"
#include "pages.h"

uint16 drift_dir_capacity(uint32 dim, uint16 kind) {
    return uint16((DRIFT_PAGE_USABLE - MAXALIGN(sizeof(DriftDirHeader))) / drift_dir_stride(dim, kind));
}

uint16 drift_vec_capacity(uint32 dim, uint16 kind) {
    return uint16((DRIFT_PAGE_USABLE - MAXALIGN(sizeof(DriftVecHeader))) / drift_vec_stride(dim, kind));
}

uint32 drift_code_bytes(uint16 code_kind, uint32 dim) { return uint32(drift::code_bytes(drift::CodeKind(code_kind), dim)); }

uint32 drift_centre_bytes(uint16 code_kind, uint32 dim) {
    return code_kind == DRIFT_CODE_RABITQ ? uint32(sizeof(uint16) * drift::rabitq_padded(dim)) : 0;
}

uint32 drift_rabitq_max_dim() {
    static const uint32 widest = [] {
        Size room = DRIFT_PAGE_USABLE - MAXALIGN(sizeof(DriftHotHeader)) - sizeof(ItemPointerData);
        uint32 d = 8;
        while (drift_centre_bytes(DRIFT_CODE_RABITQ, d + 8) + drift_code_bytes(DRIFT_CODE_RABITQ, d + 8) <= room) d += 8;
        return d;
    }();
    return widest;
}

uint16 drift_hot_page_capacity(const DriftMetaPageData *meta, Page page) {
    uint16 centre = drift_hot_header(page)->centre_bytes;
    if (centre == 0) return meta->hot_cap;
    Size room = DRIFT_PAGE_USABLE - MAXALIGN(sizeof(DriftHotHeader));
    room = room > centre ? room - centre : 0;
    return uint16(Min(Size(meta->hot_cap), room / (sizeof(ItemPointerData) + meta->code_bytes)));
}

void drift_hot_set_centre(Page page, const uint16 *halves, uint32 nbytes) {
    Assert(drift_hot_header(page)->nslots == 0);
    drift_hot_header(page)->centre_bytes = uint16(nbytes);
    memcpy((char *) page + ((PageHeader) page)->pd_special - nbytes, halves, nbytes);
    drift_page_set_bounds(page, 0);
}

bool drift_hot_centre(const DriftMetaPageData *meta, Page page, float *rc) {
    if (drift_hot_header(page)->centre_bytes != drift_centre_bytes(meta->code_kind, meta->dim) ||
        drift_hot_header(page)->centre_bytes == 0)
        return false;
    uint16 n = drift_hot_header(page)->centre_bytes / sizeof(uint16);
    drift::kernels().halves_to_float((const uint16 *) ((char *) page + ((PageHeader) page)->pd_special) - n, rc, n);
    return true;
}

uint32 drift_max_dim(uint16 kind) { return kind == DRIFT_VEC_HALF ? 4000 : 2000; }

uint16 drift_hot_capacity(uint32 code_bytes, uint16 cold_cap) {
    uint32 cap = uint32((DRIFT_PAGE_USABLE - MAXALIGN(sizeof(DriftHotHeader))) / (sizeof(ItemPointerData) + code_bytes));
    if (cold_cap > 0) cap = Min(cap, uint32(cold_cap) * DRIFT_MAX_COLD_PER_HOT);
    return uint16(Min(cap, uint32(PG_UINT16_MAX)));
}

void drift_meta_set_dim(DriftMetaPageData *meta, uint32 dim) {
    meta->dim = dim;
    meta->cold_cap = dim ? drift_vec_capacity(dim, meta->vec_kind) : 0;
    drift::CodeKind kind = meta->opt_codes == DRIFT_CODES_SQ8      ? drift::CodeKind::Sq8
                           : meta->opt_codes == DRIFT_CODES_RABITQ ? drift::CodeKind::RaBitQ
                                                                    : drift::default_code_kind(dim);
    if (kind == drift::CodeKind::RaBitQ && dim > drift_rabitq_max_dim()) {
        if (meta->opt_codes == DRIFT_CODES_RABITQ)
            ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
                            errmsg("RaBitQ codes take at most %u dimensions, not %u", drift_rabitq_max_dim(), dim),
                            errhint("Index wider vectors WITH (codes = sq8).")));
        kind = drift::CodeKind::Sq8;
    }
    meta->code_kind = uint16(kind);
    meta->code_bytes = uint16(drift_code_bytes(meta->code_kind, dim));
    meta->hot_cap = dim ? drift_hot_capacity(meta->code_bytes, drift_keeps_vectors(meta) ? meta->cold_cap : 0) : 0;
    meta->dir_cap = dim ? drift_dir_capacity(dim, meta->vec_kind) : 0;
}

void drift_page_init(Page page, uint16 type, uint32 chain, uint16 kind) {
    PageInit(page, BLCKSZ, sizeof(DriftPageOpaqueData));
    DriftPageOpaque op = DriftPageGetOpaque(page);
    op->next = InvalidBlockNumber;
    op->chain = chain;
    op->type = type;
    op->page_id = DRIFT_PAGE_ID;
    if (type == DRIFT_PAGE_COLD || type == DRIFT_PAGE_L0) drift_vec_header(page)->kind = kind;
    if (type == DRIFT_PAGE_DIR) drift_dir_header(page)->kind = kind;
    drift_page_set_bounds(page, 0);
}

// Narrows n floats to halves; a value past the half range (a mean of
// values within it cannot be) saturates.
static void store_halves(const float *v, uint16 *out, uint32 n) {
    for (uint32 i = 0; i < n; i++)
        if (!drift::float_to_half(v[i], &out[i])) out[i] = v[i] < 0 ? 0xfbff : 0x7bff;
}

// Reads n elements of kind `kind` at src into out.
static void load_elems(const char *src, uint16 kind, uint32 n, float *out) {
    if (kind == DRIFT_VEC_HALF)
        drift::kernels().halves_to_float((const uint16 *) src, out, n);
    else
        memcpy(out, src, sizeof(float) * n);
}

void drift_vec_copy(Page page, uint32 dim, uint16 slot, float *out) {
    load_elems(drift_vec_entry(page, dim, slot)->vec, drift_vec_header(page)->kind, dim, out);
}

const float *drift_vec_read(Page page, uint32 dim, uint16 slot, float *scratch) {
    if (drift_vec_header(page)->kind != DRIFT_VEC_HALF) return (const float *) drift_vec_entry(page, dim, slot)->vec;
    drift_vec_copy(page, dim, slot, scratch);
    return scratch;
}

// Writes n floats at dst as elements of kind `kind`.
static void store_elems(char *dst, uint16 kind, uint32 n, const float *v) {
    if (kind == DRIFT_VEC_HALF)
        store_halves(v, (uint16 *) dst, n);
    else
        memcpy(dst, v, sizeof(float) * n);
}

void drift_vec_write(Page page, uint32 dim, uint16 slot, const float *v) {
    store_elems(drift_vec_entry(page, dim, slot)->vec, drift_vec_header(page)->kind, dim, v);
}

void drift_dir_centroid(Page page, uint32 dim, uint32 slot, float *out) {
    load_elems(drift_dir_entry(page, dim, slot)->centroid, drift_dir_header(page)->kind, dim, out);
}

void drift_dir_set_centroid(Page page, uint32 dim, uint32 slot, const float *c) {
    store_elems(drift_dir_entry(page, dim, slot)->centroid, drift_dir_header(page)->kind, dim, c);
}

// Where pd_lower and pd_upper belong for the page's type and counts.
static void expected_bounds(Page page, uint32 dim, Size *lower, Size *upper) {
    Size contents = PageGetContents(page) - (char *) page;
    *upper = ((PageHeader) page)->pd_special;
    switch (DriftPageGetOpaque(page)->type) {
        case DRIFT_PAGE_META:
            *lower = contents + sizeof(DriftMetaPageData);
            break;
        case DRIFT_PAGE_BLOB:
            *lower = contents + MAXALIGN(sizeof(DriftBlobHeader)) + drift_blob_header(page)->nbytes;
            break;
        case DRIFT_PAGE_DIR:
            *lower = contents + MAXALIGN(sizeof(DriftDirHeader)) +
                     drift_dir_stride(dim, drift_dir_header(page)->kind) * drift_dir_header(page)->nentries;
            break;
        case DRIFT_PAGE_HOT: {
            uint16 n = drift_hot_header(page)->nslots;
            *lower = contents + sizeof(DriftHotHeader) + sizeof(ItemPointerData) * n;
            *upper -= drift_hot_header(page)->centre_bytes + Size(n) * drift_hot_header(page)->code_bytes;
            break;
        }
        case DRIFT_PAGE_COLD:
        case DRIFT_PAGE_L0:
            *lower = contents + MAXALIGN(sizeof(DriftVecHeader)) +
                     drift_vec_stride(dim, drift_vec_header(page)->kind) * drift_vec_header(page)->nslots;
            break;
        case DRIFT_PAGE_FREE:
            *lower = contents + sizeof(DriftFreeData);
            break;
        default:
            *lower = contents;
            break;
    }
}

void drift_page_set_free(Page page, uint64 safexid) {
    DriftPageGetOpaque(page)->type = DRIFT_PAGE_FREE;
    DriftFreeData *f = (DriftFreeData *) PageGetContents(page);
    f->xid_hi = uint32(safexid >> 32);
    f->xid_lo = uint32(safexid);
    drift_page_set_bounds(page, 0);
}

uint64 drift_page_free_xid(Page page) {
    const DriftFreeData *f = (const DriftFreeData *) PageGetContents(page);
    return drift_xid64(f->xid_hi, f->xid_lo);
}

void drift_page_set_bounds(Page page, uint32 dim) {
    Size lower, upper;
    expected_bounds(page, dim, &lower, &upper);
    ((PageHeader) page)->pd_lower = LocationIndex(lower);
    ((PageHeader) page)->pd_upper = LocationIndex(upper);
}

void drift_corrupt(Relation index, BlockNumber blkno, const char *detail) {
    ereport(ERROR, (errcode(ERRCODE_INDEX_CORRUPTED),
                    errmsg("drift index \"%s\" is corrupt at block %u", RelationGetRelationName(index), blkno),
                    errdetail("%s", detail), errhint("REINDEX the index.")));
}

int drift_page_type(Page page) {
    if (PageIsNew(page)) return 0;
    if (PageGetSpecialSize(page) != MAXALIGN(sizeof(DriftPageOpaqueData)) ||
        DriftPageGetOpaque(page)->page_id != DRIFT_PAGE_ID)
        return -1;
    return DriftPageGetOpaque(page)->type;
}

const char *drift_page_problem(Page page, uint16 type, const DriftMetaPageData *meta, char *buf, Size buflen) {
    int found = drift_page_type(page);
    if (found == 0) return "The page is uninitialized.";
    if (found < 0) return "The page does not carry the drift page ID in a drift special space.";
    if (found != type) {
        snprintf(buf, buflen, "Expected a page of type %u, found type %d.", type, found);
        return buf;
    }
    if (meta == NULL) return NULL;
    bool ok = true;
    switch (type) {
        case DRIFT_PAGE_HOT: {
            DriftHotHeader *h = drift_hot_header(page);
            if (h->nslots > 0 && h->code_bytes != meta->code_bytes) return "The page's code size is not the metapage's.";
            if (h->centre_bytes != 0 && h->centre_bytes != drift_centre_bytes(meta->code_kind, meta->dim))
                return "The page's centre size does not match the metapage.";
            ok = h->nslots <= drift_hot_page_capacity(meta, page) && h->nlive <= h->nslots &&
                 h->ncold <= (drift_keeps_vectors(meta) ? DRIFT_MAX_COLD_PER_HOT : 0);
            break;
        }
        case DRIFT_PAGE_COLD:
        case DRIFT_PAGE_L0: {
            DriftVecHeader *h = drift_vec_header(page);
            if (h->kind != meta->vec_kind) return "The page's vector kind is not the metapage's.";
            ok = h->nslots <= meta->cold_cap && h->nlive <= h->nslots;
            break;
        }
        case DRIFT_PAGE_DIR:
            if (drift_dir_header(page)->kind != meta->vec_kind) return "The page's vector kind is not the metapage's.";
            ok = drift_dir_header(page)->nentries <= meta->dir_cap;
            break;
        case DRIFT_PAGE_BLOB:
            ok = drift_blob_header(page)->nbytes <= DRIFT_BLOB_CAPACITY;
            break;
        default:
            break;
    }
    if (!ok) return "The page's entry counts exceed its capacity.";
    Size lower, upper;
    expected_bounds(page, meta->dim, &lower, &upper);
    if (((PageHeader) page)->pd_lower != lower || ((PageHeader) page)->pd_upper != upper)
        return "The page's free space does not match its entry counts.";
    return NULL;
}

void drift_check_page(Relation index, Page page, BlockNumber blkno, uint16 type, const DriftMetaPageData *meta) {
    char buf[96];
    const char *problem = drift_page_problem(page, type, meta, buf, sizeof(buf));
    if (problem) drift_corrupt(index, blkno, problem);
}
