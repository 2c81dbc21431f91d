// drift's on-disk format: every page type, struct and magic number of an
// index relation, in one place.
//
// Block 0 is the metapage. The quantizer is a chain of blob pages (two
// arrays of dim floats as one byte stream: SQ8's lo and scale, or for
// RaBitQ the training sample's mean and spread, for the record: RaBitQ
// codes are made against each chain's own centre; the metapage's
// code_kind says which). The centroid directory is a chain of
// directory pages holding one fixed-size entry per bucket. A bucket is a
// chain of hot pages; hot page slot i stores a heap TID and a code
// (codes contiguous, for SIMD scans), and its full vector lives in cold page
// cold[i / cold_cap] at position i % cold_cap. L0 is a chain of pages with
// the cold layout, holding rows not yet assigned to a bucket. Every page
// carries DRIFT_PAGE_ID, its type and its chain id in the special space.
// Full vectors and centroids are stored as float4 or, with precision =
// half, as IEEE half floats (DriftVecKind): the metapage says which, and
// every cold, L0 and directory page repeats it in its header, so a page's
// layout is known from the page alone.
//
// Chain ids make page ownership explicit. Every hot and cold page of a
// bucket carries the id of the chain it was written for (the directory
// names each bucket's current chain id), and every L0 page the id of the L0
// chain it belongs to. Maintenance never edits a chain in place to remove
// entries: it writes a new chain, points the directory at it, and retires
// the old chain id with the next transaction id (the metapage's retired
// list), so scans that started earlier can still read it. Once no snapshot
// is that old, the id is released, and any page whose chain id is neither
// live nor retired is garbage that a sweep frees (this also collects pages
// of a maintenance step cut short by a crash). Metapage, quantizer and
// directory pages have chain id 0, which is always live.
//
// Quantizers have versions: when rows arrive far outside the quantizer's
// range, maintenance fits a new one (a new blob chain) and rewrites the
// buckets still coded with the old one; the metapage keeps both until then.
//
// Every page has the standard layout: pd_lower and pd_upper bound the free
// space, so generic WAL compares and logs only the bytes in use, and the
// free space compresses out of full-page images.
#pragma once

#include "pg.hpp"

#define DRIFT_MAGIC 0x44524946 /* "DRIF" */
#define DRIFT_FORMAT_VERSION 4
#define DRIFT_PAGE_ID 0xFD17
#define DRIFT_METAPAGE_BLKNO 0

// Page types, in the special space of every page.
enum DriftPageType : uint16 {
    DRIFT_PAGE_META = 1,
    DRIFT_PAGE_BLOB = 2,
    DRIFT_PAGE_DIR = 3,
    DRIFT_PAGE_HOT = 4,
    DRIFT_PAGE_COLD = 5,
    DRIFT_PAGE_L0 = 6,
    DRIFT_PAGE_FREE = 7, /* unlinked, in the free space map, waiting for reuse */
};

// How full vectors and centroids are stored. Indexes made before half
// precision existed have zeros in these fields: float4.
enum DriftVecKind : uint16 {
    DRIFT_VEC_FLOAT4 = 0,
    DRIFT_VEC_HALF = 1,
};

// Bytes per stored element of kind (any other value reads as float4; page
// checks refuse it).
inline Size drift_elem_size(uint16 kind) { return kind == DRIFT_VEC_HALF ? 2 : 4; }

// What a bucket keeps of each row for the scan's first pass (the values of
// drift::CodeKind, src/core/codes.hpp): an SQ8 code, or a RaBitQ code.
enum DriftCodeKind : uint16 {
    DRIFT_CODE_SQ8 = 0,
    DRIFT_CODE_RABITQ = 1,
};

// The codes option: a kind, or chosen from the width (drift::default_code_kind).
#define DRIFT_CODES_AUTO 0
#define DRIFT_CODES_SQ8 1
#define DRIFT_CODES_RABITQ 2

// Where a scan re-ranks candidates from (the rerank option, fixed at build):
// full vectors in the index's cold pages, or the table's own column, read
// under the scan's snapshot (no cold pages; the index keeps codes only).
enum DriftRerank : uint16 {
    DRIFT_RERANK_INDEX = 0,
    DRIFT_RERANK_HEAP = 1,
};

// Special space of every drift page.
struct DriftPageOpaqueData {
    BlockNumber next; /* next page of this page's chain, or InvalidBlockNumber */
    uint32 chain;     /* id of the chain the page was written for; 0 = fixed pages */
    uint16 type;      /* DriftPageType */
    uint16 page_id;   /* DRIFT_PAGE_ID */
};
typedef DriftPageOpaqueData *DriftPageOpaque;

#define DriftPageGetOpaque(page) ((DriftPageOpaque) PageGetSpecialPointer(page))

// Metapage flag: centroids and quantizer exist (else every row lives in L0).
#define DRIFT_META_TRAINED 0x0001
// Metapage flag: the last shrink moved chains; once they are released, the
// next pass tries again (src/am/shrink.cpp).
#define DRIFT_META_SHRINKING 0x0002

// A chain retired by maintenance: its id, first page and page type (HOT,
// L0 or BLOB, to release it by walking it), and the next transaction id
// when it was retired (a FullTransactionId in two halves): only snapshots
// older than that can still be reading it.
struct DriftRetired {
    uint32 chain;
    BlockNumber head;
    uint16 type;
    uint16 unused;
    uint32 xid_hi, xid_lo;
};
// Moves of rows out of a bucket that append them elsewhere before they
// rewrite or free the bucket: the metapage names the move until it commits,
// so a pass after a cancel or crash completes it (see maintain.cpp).
#define DRIFT_MOVE_STEAL 1 /* some rows go to a split's new buckets; the bucket stays */
#define DRIFT_MOVE_MERGE 2 /* every row goes to its nearest other bucket; the slot is freed */

// Chains retired while the list is full go to the overflow instead: every
// chain id below overflow_chain that is not live counts as retired until
// overflow_xid, then a sweep frees their pages.
#define DRIFT_MAX_RETIRED 383

// Block 0.
struct DriftMetaPageData {
    uint32 magic;
    uint32 version;
    uint32 dim;        /* 0 until the first row fixes it */
    uint16 metric;     /* drift::Metric */
    uint16 flags;      /* DRIFT_META_* */
    uint32 nbuckets;   /* buckets in the directory */
    uint32 generation; /* bumped whenever cached metadata (dim, centroids) changes */
    uint16 hot_cap;    /* slots per hot page */
    uint16 cold_cap;   /* vectors per cold or L0 page */
    uint16 dir_cap;    /* directory entries per directory page */
    uint16 vec_kind;   /* DriftVecKind of full vectors and centroids */
    BlockNumber quant_head; /* blob chain: lo[dim], scale[dim] */
    BlockNumber dir_head;   /* directory chain */
    BlockNumber l0_head;    /* L0 chain, or InvalidBlockNumber */
    BlockNumber l0_tail;
    int32 opt_lists;        /* options as given at build (frozen) */
    float4 opt_clip_pct;
    uint64 build_rows;      /* rows indexed by the build */
    uint32 target_bucket;   /* mean bucket size at training; sizes are judged against it */
    uint32 live_buckets;    /* directory entries in use (nbuckets counts freed slots too) */
    uint32 next_chain;      /* next chain id to hand out */
    uint32 l0_chain;        /* chain id of L0 pages created from now on */
    uint32 l0_pages;        /* pages appended to L0 since its last flush */
    uint32 nretired;
    uint64 flushes, flushed_rows, splits, merges, compactions, stolen;
    int64 last_maintenance; /* TimestampTz of the last maintenance pass, 0 = never */
    uint32 quant_chain;     /* chain id of the quantizer's blob pages: its version */
    uint32 old_quant_chain; /* the previous quantizer, while buckets still use it */
    BlockNumber old_quant_head; /* or InvalidBlockNumber */
    uint32 requantized;     /* quantizers fitted again since build */
    uint32 released_xid_hi; /* the latest retirement xid of a released chain, */
    uint32 released_xid_lo; /* the free xid of pages a sweep frees (FullTransactionId) */
    uint32 overflow_chain;  /* chain ids below it that are not live are retired (0: no overflow) */
    uint32 overflow_xid_hi; /* the latest retirement xid of the overflow */
    uint32 overflow_xid_lo;
    uint16 moving_kind;     /* a move of rows out of a bucket under way (DRIFT_MOVE_*), 0 = none */
    uint16 data_lid;        /* the rows' intrinsic dimension when last sampled (training, requantizing), x100; 0 = unknown */
    uint32 moving_bucket;   /* the bucket rows are leaving, */
    uint32 moving_chain;    /* and its chain: its rows may also be in other buckets */
    uint16 code_kind;       /* DriftCodeKind of every bucket's codes (fixed with dim) */
    uint16 code_bytes;      /* bytes of one code (from dim and code_kind) */
    uint16 opt_codes;       /* the codes option as given at build: DRIFT_CODES_* */
    uint16 rerank;          /* DriftRerank (fixed at build; zero in indexes older than the option) */
    uint32 reserved[3];     /* zeros */
    DriftRetired retired[DRIFT_MAX_RETIRED];
};
typedef DriftMetaPageData *DriftMetaPage;

#define DriftPageGetMeta(page) ((DriftMetaPage) PageGetContents(page))

// An intrinsic dimension as the metapage keeps it (data_lid), and back.
inline uint16 drift_lid_store(double lid) { return uint16(Min(65535.0, Max(1.0, lid * 100 + 0.5))); }
inline double drift_lid_load(uint16 stored) { return stored / 100.0; }

// A FullTransactionId stored as two uint32 halves, as a uint64.
inline uint64 drift_xid64(uint32 hi, uint32 lo) { return uint64(hi) << 32 | lo; }

// Contents of a FREE page: the next transaction id when it was freed (a
// FullTransactionId in two halves; 0 for a page no reader can reach). The
// page is reused only once no snapshot is that old, and its reuse is
// WAL-logged with that id as the conflict horizon, so a hot standby cancels
// the queries that might still be on it.
struct DriftFreeData {
    uint32 xid_hi, xid_lo;
};

// Header of a blob page; its bytes follow.
struct DriftBlobHeader {
    uint32 nbytes;
};

// One bucket in the centroid directory; the centroid (dim elements of the
// page's kind) follows. The centroid is the running mean of the bucket's
// members: the running sum is kept as centroid x nlive, which stays exact
// where a raw sum would lose precision. A free slot (a merged bucket) has chain 0.
struct DriftDirEntryData {
    BlockNumber head;  /* first hot page of the bucket's chain */
    BlockNumber tail;  /* last hot page: flushes append here */
    uint32 chain;      /* chain id of the bucket's pages; 0 = slot free */
    uint32 quant;      /* quant_chain of the quantizer its codes were made with */
    uint32 nlive;      /* members in the running mean (live entries) */
    uint32 ndead;      /* entries removed by vacuum since the chain was written */
    float4 radius;     /* largest member distance to the centroid seen */
    float4 temperature; /* decayed count of rows flushed in, per member */
    float4 moved;      /* distance the centroid has travelled since build */
    char centroid[FLEXIBLE_ARRAY_MEMBER]; /* read and written by drift_dir_centroid/_set_centroid */
};
typedef DriftDirEntryData *DriftDirEntry;

// Header of a directory page; entries follow at fixed stride.
struct DriftDirHeader {
    uint32 nentries;
    uint16 kind;   /* DriftVecKind of the centroids */
    uint16 unused;
};

// Cold pages one hot page may have: enough for a page of RaBitQ codes
// (about 210 slots at 128 dimensions, 15 vectors a cold page; 67 at 768,
// two a cold page).
#define DRIFT_MAX_COLD_PER_HOT 40

// Header of a hot page. TIDs follow it (tids[nslots], growing up); codes
// (meta->code_bytes each) grow down from the special space, below the
// chain's centre on its first page (RaBitQ: rabitq_padded(dim) half floats,
// the bucket's rotated centre its codes were made against; see
// src/core/rabitq.hpp): slot s's code ends where slot s-1's begins. A free
// slot has an invalid TID.
struct DriftHotHeader {
    uint32 bucket; /* the bucket whose chain this page belongs to */
    uint16 nslots; /* slots ever used (high-water mark) */
    uint16 nlive;  /* slots holding a valid TID */
    uint16 ncold;  /* cold pages allocated so far */
    uint16 code_bytes; /* bytes of each slot's code (the metapage's; set with the first slot) */
    uint16 centre_bytes; /* bytes of the centre at the page's end (a RaBitQ chain's first page), else 0 */
    uint16 unused;
    BlockNumber cold[DRIFT_MAX_COLD_PER_HOT];
};

// Header of a cold or L0 page. Then nslots entries of DriftVecEntryData,
// each followed by its dim elements, at stride drift_vec_stride(dim, kind).
struct DriftVecHeader {
    uint16 nslots; /* slots ever used (high-water mark) */
    uint16 nlive;  /* slots holding a valid TID (L0 only; cold pages follow their hot page) */
    uint16 kind;   /* DriftVecKind of the vectors */
    uint16 unused;
};

struct DriftVecEntryData {
    ItemPointerData tid; /* invalid when the slot is free */
    uint16 unused;
    char vec[FLEXIBLE_ARRAY_MEMBER]; /* read and written by drift_vec_read/_write */
};
typedef DriftVecEntryData *DriftVecEntry;

// The layout above is the on-disk format: any change to it is a new
// DRIFT_FORMAT_VERSION. These pin it down.
static_assert(sizeof(DriftPageOpaqueData) == 12 && offsetof(DriftPageOpaqueData, chain) == 4 &&
                  offsetof(DriftPageOpaqueData, type) == 8 && offsetof(DriftPageOpaqueData, page_id) == 10,
              "special space layout");
static_assert(sizeof(DriftRetired) == 20, "retired chain entry");
static_assert(offsetof(DriftMetaPageData, dim) == 8 && offsetof(DriftMetaPageData, nbuckets) == 16 &&
                  offsetof(DriftMetaPageData, quant_head) == 32 && offsetof(DriftMetaPageData, flushes) == 88 &&
                  offsetof(DriftMetaPageData, released_xid_hi) == 160 && offsetof(DriftMetaPageData, code_kind) == 192 &&
                  offsetof(DriftMetaPageData, retired) == 212 && sizeof(DriftMetaPageData) == 212 + 20 * DRIFT_MAX_RETIRED,
              "metapage layout");
static_assert(sizeof(DriftFreeData) == 8 && sizeof(DriftBlobHeader) == 4 && sizeof(DriftDirHeader) == 8 &&
                  sizeof(DriftVecHeader) == 8 && offsetof(DriftMetaPageData, vec_kind) == 30,
              "page headers");
static_assert(offsetof(DriftDirEntryData, chain) == 8 && offsetof(DriftDirEntryData, centroid) == 36,
              "directory entry layout");
static_assert(offsetof(DriftHotHeader, cold) == 16 && sizeof(DriftHotHeader) == 176, "hot page header");
static_assert(sizeof(ItemPointerData) == 6 && offsetof(DriftVecEntryData, vec) == 8, "vector entry layout");

// Usable bytes between the page header and the special space.
#define DRIFT_PAGE_USABLE (BLCKSZ - MAXALIGN(SizeOfPageHeaderData) - MAXALIGN(sizeof(DriftPageOpaqueData)))
static_assert(sizeof(DriftMetaPageData) <= DRIFT_PAGE_USABLE, "the metapage fits its page");

// Blocks the directory of meta's buckets needs at the least (each page
// but the last is full): an index with fewer is corrupt.
inline BlockNumber drift_dir_min_blocks(const DriftMetaPageData *meta) {
    return meta->nbuckets == 0 ? 0 : (meta->nbuckets - 1) / Max(meta->dir_cap, 1) + 1;
}

// Size of one directory entry of a dim-dimensional index of kind `kind`.
inline Size drift_dir_stride(uint32 dim, uint16 kind) {
    return MAXALIGN(offsetof(DriftDirEntryData, centroid) + drift_elem_size(kind) * dim);
}

// Size of one cold/L0 entry of a dim-dimensional index of kind `kind`.
inline Size drift_vec_stride(uint32 dim, uint16 kind) {
    return MAXALIGN(offsetof(DriftVecEntryData, vec) + drift_elem_size(kind) * dim);
}

// Largest dimension an index of kind `kind` takes: a full vector and a
// centroid must each fit one page.
uint32 drift_max_dim(uint16 kind);

// Sets meta's dimension, its code kind (from meta->opt_codes) and the code
// size and page capacities that follow from them and meta->vec_kind.
void drift_meta_set_dim(DriftMetaPageData *meta, uint32 dim);

// Capacities of each page type for dimension dim and vector kind `kind`.
uint16 drift_dir_capacity(uint32 dim, uint16 kind);
uint16 drift_vec_capacity(uint32 dim, uint16 kind);
// A hot page's slots: with cold pages of cold_cap vectors, as many as
// DRIFT_MAX_COLD_PER_HOT of them hold; with cold_cap 0 (no cold pages),
// as many as the page holds.
uint16 drift_hot_capacity(uint32 code_bytes, uint16 cold_cap);

// True if meta's index keeps full vectors in cold pages (not re-ranking from the table).
inline bool drift_keeps_vectors(const DriftMetaPageData *meta) { return meta->rerank != DRIFT_RERANK_HEAP; }

// Bytes of one code of kind code_kind (DriftCodeKind) at dimension dim.
uint32 drift_code_bytes(uint16 code_kind, uint32 dim);

inline DriftHotHeader *drift_hot_header(Page page) { return (DriftHotHeader *) PageGetContents(page); }
inline ItemPointerData *drift_hot_tids(Page page) {
    return (ItemPointerData *) (PageGetContents(page) + sizeof(DriftHotHeader));
}
// The code of slot s (code_bytes bytes).
inline uint8 *drift_hot_code(Page page, uint32 code_bytes, uint16 s) {
    return (uint8 *) page + ((PageHeader) page)->pd_special - drift_hot_header(page)->centre_bytes - Size(s + 1) * code_bytes;
}

// Slots a hot page of meta's index holds: fewer on a first page with a centre.
uint16 drift_hot_page_capacity(const DriftMetaPageData *meta, Page page);

// The widest vectors RaBitQ codes take: a chain's first page holds the
// centre and one slot (3,736 dimensions; wider indexes default to SQ8).
uint32 drift_rabitq_max_dim();

// Bytes of a RaBitQ chain's centre at dimension dim (0 for SQ8 codes).
uint32 drift_centre_bytes(uint16 code_kind, uint32 dim);

// Stores the rotated centre (halves, drift_centre_bytes of them) at the end
// of an empty first hot page.
void drift_hot_set_centre(Page page, const uint16 *halves, uint32 nbytes);

// Reads the rotated centre of a RaBitQ chain's first hot page as floats
// (rc: rabitq_padded(dim) floats); false if the page keeps none of meta's size.
bool drift_hot_centre(const DriftMetaPageData *meta, Page page, float *rc);
inline DriftVecHeader *drift_vec_header(Page page) { return (DriftVecHeader *) PageGetContents(page); }
inline DriftVecEntry drift_vec_entry(Page page, uint32 dim, uint16 slot) {
    return (DriftVecEntry) (PageGetContents(page) + MAXALIGN(sizeof(DriftVecHeader)) +
                            drift_vec_stride(dim, drift_vec_header(page)->kind) * slot);
}
inline DriftDirHeader *drift_dir_header(Page page) { return (DriftDirHeader *) PageGetContents(page); }
inline DriftDirEntry drift_dir_entry(Page page, uint32 dim, uint32 slot) {
    return (DriftDirEntry) (PageGetContents(page) + MAXALIGN(sizeof(DriftDirHeader)) +
                            drift_dir_stride(dim, drift_dir_header(page)->kind) * slot);
}

// The vector of slot `slot` of a cold or L0 page as floats: in place on a
// float4 page, else widened into scratch (dim floats).
const float *drift_vec_read(Page page, uint32 dim, uint16 slot, float *scratch);

// Copies the vector of slot `slot` of a cold or L0 page into out (dim floats).
void drift_vec_copy(Page page, uint32 dim, uint16 slot, float *out);

// Stores v as the vector of slot `slot` (narrowed on a half page; callers
// have checked that it fits, see drift_index_vector).
void drift_vec_write(Page page, uint32 dim, uint16 slot, const float *v);

// Copies the centroid of directory slot `slot` into out (dim floats).
void drift_dir_centroid(Page page, uint32 dim, uint32 slot, float *out);

// Stores c as the centroid of directory slot `slot`.
void drift_dir_set_centroid(Page page, uint32 dim, uint32 slot, const float *c);
inline DriftBlobHeader *drift_blob_header(Page page) { return (DriftBlobHeader *) PageGetContents(page); }
inline char *drift_blob_data(Page page) { return PageGetContents(page) + MAXALIGN(sizeof(DriftBlobHeader)); }
#define DRIFT_BLOB_CAPACITY (DRIFT_PAGE_USABLE - MAXALIGN(sizeof(DriftBlobHeader)))

// Turns page into a FREE page, freed when safexid was the next transaction
// id; keeps its next link for scans still on their way through it.
void drift_page_set_free(Page page, uint64 safexid);

// The transaction id stored in a FREE page.
uint64 drift_page_free_xid(Page page);

// Initializes page as an empty drift page of the given type and chain id;
// a cold, L0 or directory page records vector kind `kind`.
void drift_page_init(Page page, uint16 type, uint32 chain, uint16 kind);

// Sets pd_lower and pd_upper around the free space of a page from its type
// and header counts (dim: the index's dimension). Every writer calls it.
void drift_page_set_bounds(Page page, uint32 dim);

// The drift page type of page; 0 for a never-initialized page, -1 for a page
// that is not a drift page. Safe on any page: the special space is checked
// before it is read.
int drift_page_type(Page page);

// What is wrong with page as a drift page of type `type` whose header counts
// fit the capacities of meta (meta may be NULL), or NULL if nothing. May
// format into buf.
const char *drift_page_problem(Page page, uint16 type, const DriftMetaPageData *meta, char *buf, Size buflen);

// True if the cold page links of hot page `page` (block self) are
// plausible: none is the page itself, the metapage, or another's twin. (A link to itself
// would make a writer that holds the page wait for its own lock.)
inline bool drift_hot_links_ok(Page page, BlockNumber self) {
    const DriftHotHeader *h = drift_hot_header(page);
    for (uint16 i = 0; i < h->ncold && i < DRIFT_MAX_COLD_PER_HOT; i++) {
        if (h->cold[i] == self || h->cold[i] == DRIFT_METAPAGE_BLKNO) return false;
        for (uint16 j = 0; j < i; j++)
            if (h->cold[j] == h->cold[i]) return false;  // (a page locked twice)
    }
    return true;
}

// Raises "index is corrupt" unless page is a drift page of type `type`
// whose header counts fit the capacities of meta.
void drift_check_page(Relation index, Page page, BlockNumber blkno, uint16 type, const DriftMetaPageData *meta);

// Raises "index is corrupt" with the given detail.
void drift_corrupt(Relation index, BlockNumber blkno, const char *detail) pg_attribute_noreturn();
