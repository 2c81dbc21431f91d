// The .drift segment writer and reader (layout: docs/segment-format.md).
#include "segment.hpp"

#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <string>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "../core/alp.hpp"
#include "../core/bytes.hpp"
#include "../core/bloom.hpp"
#include "../core/codes.hpp"

namespace drift {

namespace {

const char kHeaderMagic[8] = {'D', 'R', 'I', 'F', 'T', 'S', 'E', 'G'};
const char kFooterMagic[8] = {'D', 'R', 'I', 'F', 'T', 'E', 'N', 'D'};
// Bytes of one bucket's entry in the metadata's table.
constexpr size_t kBucketEntryBytes = 40;
// Bytes of a cold block's framing: rows and payload size before, checksum after.
constexpr size_t kBlockHead = 8, kBlockTail = 8;
// Bloom filter's false-positive rate.
constexpr double kBloomFp = 0.01;

// Appends little-endian fields to a byte buffer.
struct Out {
    std::vector<uint8_t> &b;
    // Makes room for k more bytes and returns where they start.
    uint8_t *grow(size_t k) {
        b.resize(b.size() + k);
        return b.data() + b.size() - k;
    }
    void u16(uint16_t v) { store16(grow(2), v); }
    void u32(uint32_t v) { store32(grow(4), v); }
    void u64(uint64_t v) { store64(grow(8), v); }
    // Appends n floats' bit patterns.
    void floats(const float *v, size_t n) {
        for (size_t i = 0; i < n; i++) u32(float_bits(v[i]));
    }
    // Appends a string as a 16-bit length and its bytes.
    void str(const std::string &s) {
        u16(uint16_t(s.size()));
        b.insert(b.end(), s.begin(), s.end());
    }
};

// Reads little-endian fields from a byte range, refusing to pass its end.
struct In {
    const uint8_t *p;
    size_t n, at = 0;
    const char *what;
    // Returns where the next k bytes are and passes them; throws unless they are there.
    const uint8_t *take(size_t k) {
        if (k > n - at) throw SegmentError(std::string(what) + " ends early");
        at += k;
        return p + at - k;
    }
    uint16_t u16() { return load16(take(2)); }
    uint32_t u32() { return load32(take(4)); }
    uint64_t u64() { return load64(take(8)); }
    // Reads k floats' bit patterns into v.
    void floats(float *v, size_t k) {
        for (size_t i = 0; i < k; i++) v[i] = bits_float(u32());
    }
    // Reads a string written by Out::str.
    std::string str() {
        size_t len = u16();
        return std::string(reinterpret_cast<const char *>(take(len)), len);
    }
};

// XXH3-64 of n bytes (seed 0): every checksum of the format.
uint64_t checksum(const void *p, size_t n) { return XXH3_64bits(p, n); }

// True if n bytes at p have checksum `stored`. (A fuzzing build takes every
// checksum as good, so that mutated files reach the parsing behind them.)
bool checksum_ok(uint64_t stored, const void *p, size_t n) {
#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
    (void) stored, (void) p, (void) n;
    return true;
#else
    return stored == checksum(p, n);
#endif
}

// Throws SegmentError with a formatted message.
[[noreturn]] void bad(const std::string &msg) { throw SegmentError(msg); }

// a * b, or throws if it overflows 64 bits.
uint64_t mul_checked(uint64_t a, uint64_t b, const char *what) {
    if (a != 0 && b > UINT64_MAX / a) bad(std::string(what) + " is too large");
    return a * b;
}

}  // namespace

FdSource::FdSource(int fd) : fd_(fd) {
    off_t end = lseek(fd, 0, SEEK_END);
    if (end < 0) throw Error(std::string("could not seek in segment file: ") + strerror(errno));
    size_ = uint64_t(end);
}

void FdSource::read(uint64_t off, void *buf, size_t n) const {
    if (off > size_ || n > size_ - off) bad("a section reaches past the end of the file");
    size_t done = 0;
    while (done < n) {
        ssize_t r = pread(fd_, static_cast<char *>(buf) + done, n - done, off_t(off + done));
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) throw Error(std::string("could not read segment file: ") + strerror(errno));
        if (r == 0) bad("the file ends early (truncated while being read?)");
        done += size_t(r);
    }
}

void MemorySource::read(uint64_t off, void *buf, size_t n) const {
    if (off > n_ || n > n_ - off) bad("a section reaches past the end of the file");
    memcpy(buf, data_ + off, n);
}

SegmentWriter::SegmentWriter(int fd, const SegmentHeader &h, const float *quantizer, const float *centroids,
                             const std::string &index_name, const std::string &id_name)
    : fd_(fd), h_(h), quantizer_(quantizer, quantizer + 2 * size_t(h.dim)),
      centroids_(centroids, centroids + size_t(h.buckets) * h.dim), index_name_(index_name.substr(0, kSegmentMaxName)),
      id_name_(id_name.substr(0, kSegmentMaxName)), table_(h.buckets) {
    if (h.dim == 0 || h.dim > kSegmentMaxDim) throw Error("segment dimension out of range");
    if (h.buckets == 0 && h.rows > 0) throw Error("a segment with rows needs at least one bucket");
    if (h.code_kind > uint16_t(CodeKind::RaBitQ)) throw Error("unknown code kind");
    h_.code_bytes = uint32_t(code_bytes(CodeKind(h.code_kind), h.dim));
    hot_pos_ = kSegmentHeaderBytes;
    cold_pos_ = kSegmentHeaderBytes + mul_checked(h.rows, h_.code_bytes, "the hot region");
    shape_ = bloom_shape(std::max<uint64_t>(h.rows, 1), kBloomFp);
    bloom_.assign(size_t(shape_.bits / 8), 0);
    block_.reserve(size_t(kSegmentBlockRows) * h.dim);
}

void SegmentWriter::write_at(uint64_t off, const void *buf, size_t n) {
    size_t done = 0;
    while (done < n) {
        ssize_t w = pwrite(fd_, static_cast<const char *>(buf) + done, n - done, off_t(off + done));
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) throw Error(std::string("could not write segment file: ") + strerror(errno));
        done += size_t(w);
    }
}

void SegmentWriter::open_bucket(uint32_t b) {
    bucket_ = b;
    table_[b].hot_offset = hot_pos_;
    table_[b].cold_offset = cold_pos_;
    hot_.clear();
}

// Writes the open block: its rows' ids, then each dimension's values as one
// coded float vector, framed and checksummed.
void SegmentWriter::flush_block() {
    uint32_t n = uint32_t(ids_.size());
    if (n == 0) return;
    buf_.clear();
    Out o{buf_};
    o.u32(n);
    o.u32(0);  // payload bytes, set below
    int_encode(ids_.data(), n, buf_);
    float column[kSegmentBlockRows];
    for (uint32_t d = 0; d < h_.dim; d++) {
        for (uint32_t i = 0; i < n; i++) column[i] = block_[size_t(i) * h_.dim + d];
        float_encode(column, n, buf_);
    }
    uint32_t payload = uint32_t(buf_.size() - kBlockHead);
    store32(buf_.data() + 4, payload);
    o.u64(checksum(buf_.data(), buf_.size()));
    write_at(cold_pos_, buf_.data(), buf_.size());
    cold_pos_ += buf_.size();
    table_[size_t(bucket_)].cold_bytes += buf_.size();
    ids_.clear();
    block_.clear();
}

// Ends the open bucket: its last block, and its codes in the hot region.
void SegmentWriter::close_bucket() {
    if (bucket_ < 0) return;
    flush_block();
    SegmentBucket &e = table_[size_t(bucket_)];
    e.hot_checksum = checksum(hot_.data(), hot_.size());
    write_at(hot_pos_, hot_.data(), hot_.size());
    hot_pos_ += hot_.size();
}

void SegmentWriter::add(uint32_t bucket, int64_t id, const float *v, const uint8_t *code) {
    if (bucket >= h_.buckets || int64_t(bucket) < bucket_) throw Error("segment rows must come in bucket order");
    if (added_ == h_.rows) throw Error("more rows than the segment was sized for");
    while (bucket_ < int64_t(bucket)) {
        close_bucket();
        open_bucket(uint32_t(bucket_ + 1));
    }
    hot_.insert(hot_.end(), code, code + h_.code_bytes);
    ids_.push_back(id);
    bloom_add(bloom_.data(), shape_, id);
    block_.insert(block_.end(), v, v + h_.dim);
    table_[bucket].rows++;
    added_++;
    if (ids_.size() == kSegmentBlockRows) flush_block();
}

uint64_t SegmentWriter::finish() {
    if (added_ != h_.rows) throw Error("fewer rows than the segment was sized for");
    while (bucket_ + 1 < int64_t(h_.buckets)) {
        close_bucket();
        open_bucket(uint32_t(bucket_ + 1));
    }
    close_bucket();
    if (hot_pos_ != kSegmentHeaderBytes + h_.rows * h_.code_bytes) throw Error("segment hot region size mismatch");
    uint64_t meta_offset = cold_pos_;

    buf_.clear();
    Out o{buf_};
    o.u32(h_.dim);
    o.u32(h_.buckets);
    o.u32(uint32_t(quantizer_.size()));
    o.str(index_name_);
    o.str(id_name_);
    o.floats(quantizer_.data(), quantizer_.size());
    o.floats(centroids_.data(), centroids_.size());
    for (const SegmentBucket &e : table_) {
        o.u64(e.rows);
        o.u64(e.hot_offset);
        o.u64(e.hot_checksum);
        o.u64(e.cold_offset);
        o.u64(e.cold_bytes);
    }
    o.u64(checksum(buf_.data(), buf_.size()));
    write_at(meta_offset, buf_.data(), buf_.size());
    uint64_t bloom_offset = meta_offset + buf_.size();

    buf_.clear();
    o.u64(shape_.bits);
    o.u32(shape_.hashes);
    o.u32(0);
    buf_.insert(buf_.end(), bloom_.begin(), bloom_.end());
    o.u64(checksum(buf_.data(), buf_.size()));
    write_at(bloom_offset, buf_.data(), buf_.size());
    uint64_t footer_offset = bloom_offset + buf_.size();

    buf_.clear();
    o.b.insert(o.b.end(), kHeaderMagic, kHeaderMagic + 8);
    o.u32(kSegmentVersion);
    o.u32(h_.dim);
    o.u16(uint16_t(h_.metric));
    o.u16(h_.code_kind);
    o.u32(h_.code_bytes);
    o.u32(h_.buckets);
    o.u16(uint16_t(h_.ids));
    o.u16(0);
    o.u64(h_.rows);
    o.u32(kSegmentBlockRows);
    o.u32(0);
    o.u64(h_.created_us);
    o.u64(checksum(buf_.data(), buf_.size()));
    write_at(0, buf_.data(), buf_.size());

    buf_.clear();
    o.u64(kSegmentHeaderBytes);
    o.u64(kSegmentHeaderBytes + h_.rows * h_.code_bytes);
    o.u64(meta_offset);
    o.u64(bloom_offset);
    o.u64(h_.rows);
    o.u32(kSegmentVersion);
    o.u32(0);
    o.u64(checksum(buf_.data(), buf_.size()));
    o.b.insert(o.b.end(), kFooterMagic, kFooterMagic + 8);
    write_at(footer_offset, buf_.data(), buf_.size());
    return footer_offset + kSegmentFooterBytes;
}

SegmentReader::SegmentReader(const SegmentSource &src) : src_(src) {
    uint64_t size = src.size();
    layout_.file_bytes = size;
    if (size < kSegmentHeaderBytes + kSegmentFooterBytes)
        bad("the file is " + std::to_string(size) + " bytes, too short to be a segment");

    // Footer: magic, checksum, version, section offsets in order.
    uint8_t f[kSegmentFooterBytes];
    src.read(size - kSegmentFooterBytes, f, sizeof(f));
    if (memcmp(f + 56, kFooterMagic, 8) != 0) bad("no segment footer at the end of the file (not a .drift file, or truncated)");
    In fi{f, sizeof(f), 0, "the footer"};
    layout_.hot_offset = fi.u64();
    layout_.cold_offset = fi.u64();
    layout_.meta_offset = fi.u64();
    layout_.bloom_offset = fi.u64();
    uint64_t frows = fi.u64();
    uint32_t fversion = fi.u32();
    fi.u32();
    if (!checksum_ok(fi.u64(), f, 48)) bad("the footer's checksum does not match");
    if (fversion != kSegmentVersion)
        bad("format version " + std::to_string(fversion) + " is not supported (this reader knows version " +
            std::to_string(kSegmentVersion) + ")");
    if (layout_.hot_offset != kSegmentHeaderBytes || layout_.cold_offset < layout_.hot_offset ||
        layout_.meta_offset < layout_.cold_offset || layout_.bloom_offset < layout_.meta_offset ||
        layout_.bloom_offset > size - kSegmentFooterBytes)
        bad("the footer's section offsets are out of order or past the end of the file");

    // Header: magic, checksum, fields within range and agreeing with the footer.
    uint8_t hb[kSegmentHeaderBytes];
    src.read(0, hb, sizeof(hb));
    if (memcmp(hb, kHeaderMagic, 8) != 0) bad("the header's magic bytes are wrong");
    In hi{hb, sizeof(hb), 8, "the header"};
    uint32_t version = hi.u32();
    h_.dim = hi.u32();
    uint16_t metric = hi.u16();
    h_.code_kind = hi.u16();
    h_.code_bytes = hi.u32();
    h_.buckets = hi.u32();
    uint16_t ids = hi.u16();
    hi.u16();
    h_.rows = hi.u64();
    uint32_t block_rows = hi.u32();
    hi.u32();
    h_.created_us = hi.u64();
    if (!checksum_ok(hi.u64(), hb, 56)) bad("the header's checksum does not match");
    if (version != fversion) bad("the header's and the footer's format versions differ");
    if (h_.rows != frows) bad("the header's and the footer's row counts differ");
    if (h_.created_us > kSegmentMaxCreated) bad("the creation time is out of range");
    if (h_.dim == 0 || h_.dim > kSegmentMaxDim) bad("dimension " + std::to_string(h_.dim) + " is out of range");
    if (metric < 1 || metric > 3) bad("unknown metric " + std::to_string(metric));
    h_.metric = Metric(metric);
    if (h_.code_kind > uint16_t(CodeKind::RaBitQ)) bad("unknown code kind " + std::to_string(h_.code_kind));
    if (h_.code_bytes != code_bytes(CodeKind(h_.code_kind), h_.dim)) bad("the code size does not match the dimension");
    if (ids > uint16_t(SegmentIds::Tid)) bad("unknown id kind " + std::to_string(ids));
    h_.ids = SegmentIds(ids);
    if (block_rows != kSegmentBlockRows) bad("unexpected rows per block " + std::to_string(block_rows));
    if (h_.rows > 0 && h_.buckets == 0) bad("rows but no buckets");
    if (h_.buckets > uint32_t(INT32_MAX)) bad("too many buckets");
    if (mul_checked(h_.rows, h_.code_bytes, "the hot region") != layout_.cold_offset - layout_.hot_offset)
        bad("the hot region's size does not match rows times code size");

    // Metadata: its size follows from the header; then its checksum, then the table.
    uint64_t meta_bytes = layout_.bloom_offset - layout_.meta_offset;
    uint8_t head[16];
    if (meta_bytes < 16) bad("the metadata section is too short");
    src.read(layout_.meta_offset, head, 12);
    In mh{head, 12, 0, "the metadata"};
    if (mh.u32() != h_.dim || mh.u32() != h_.buckets) bad("the metadata's dimension or bucket count differs from the header's");
    uint32_t qfloats = mh.u32();
    if (qfloats != 2 * h_.dim) bad("the quantizer's size does not match the dimension");
    uint64_t fixed = 12 + 4 + 8 + 4 * uint64_t(qfloats) + mul_checked(mul_checked(h_.buckets, h_.dim, "centroids"), 4, "centroids") +
                     mul_checked(h_.buckets, kBucketEntryBytes, "the bucket table");
    if (fixed > meta_bytes || meta_bytes - fixed > 2 * kSegmentMaxName) bad("the metadata section's size does not match its contents");
    std::vector<uint8_t> meta(meta_bytes);
    src.read(layout_.meta_offset, meta.data(), meta.size());
    In m{meta.data(), meta.size() - 8, 12, "the metadata"};
    In t{meta.data() + meta.size() - 8, 8, 0, "the metadata"};
    if (!checksum_ok(t.u64(), meta.data(), meta.size() - 8)) bad("the metadata's checksum does not match");
    index_name_ = m.str();
    id_name_ = m.str();
    if (index_name_.size() > kSegmentMaxName || id_name_.size() > kSegmentMaxName) bad("a name in the metadata is too long");
    quantizer_.resize(qfloats);
    m.floats(quantizer_.data(), qfloats);
    centroids_.resize(size_t(h_.buckets) * h_.dim);
    m.floats(centroids_.data(), centroids_.size());
    for (float v : quantizer_)
        if (!std::isfinite(v)) bad("the quantizer holds a value that is not finite");
    for (float v : centroids_)
        if (!std::isfinite(v)) bad("a centroid holds a value that is not finite");
    table_.resize(h_.buckets);
    uint64_t rows = 0, hot = layout_.hot_offset, cold = layout_.cold_offset;
    for (uint32_t b = 0; b < h_.buckets; b++) {
        SegmentBucket &e = table_[b];
        e.rows = m.u64();
        e.hot_offset = m.u64();
        e.hot_checksum = m.u64();
        e.cold_offset = m.u64();
        e.cold_bytes = m.u64();
        if (e.rows > h_.rows - rows) bad("the buckets hold more rows than the header says");
        rows += e.rows;
        if (e.hot_offset != hot || e.cold_offset != cold) bad("bucket " + std::to_string(b) + "'s offsets are out of place");
        hot += e.rows * h_.code_bytes;
        if (e.cold_bytes > layout_.meta_offset - cold) bad("bucket " + std::to_string(b) + "'s blocks reach past the cold region");
        if ((e.rows == 0) != (e.cold_bytes == 0)) bad("bucket " + std::to_string(b) + "'s block size does not match its rows");
        cold += e.cold_bytes;
    }
    if (m.at != m.n) bad("the metadata section has bytes left over");
    if (rows != h_.rows || hot != layout_.cold_offset || cold != layout_.meta_offset)
        bad("the bucket table does not cover the hot and cold regions exactly");

    // Bloom filter: shape, size, checksum.
    uint64_t bloom_bytes = size - kSegmentFooterBytes - layout_.bloom_offset;
    if (bloom_bytes < 24) bad("the Bloom filter section is too short");
    src.read(layout_.bloom_offset, head, 16);
    In bh{head, 16, 0, "the Bloom filter"};
    bloom_bits_ = bh.u64();
    bloom_hashes_ = bh.u32();
    if (bloom_bits_ < 64 || bloom_bits_ % 64 != 0 || bloom_bits_ / 8 != bloom_bytes - 24 || bloom_hashes_ < 1 ||
        bloom_hashes_ > 16)
        bad("the Bloom filter's shape does not match its section");
    bloom_.resize(bloom_bytes);
    src.read(layout_.bloom_offset, bloom_.data(), bloom_.size());
    In bt{bloom_.data() + bloom_bytes - 8, 8, 0, "the Bloom filter"};
    if (!checksum_ok(bt.u64(), bloom_.data(), bloom_bytes - 8)) bad("the Bloom filter's checksum does not match");
    bloom_.erase(bloom_.begin(), bloom_.begin() + 16);
    bloom_.resize(bloom_bits_ / 8);
    cold_pos_ = layout_.cold_offset;
}

bool SegmentReader::maybe_contains(int64_t id) const {
    return bloom_test(bloom_.data(), BloomShape{bloom_bits_, bloom_hashes_}, id);
}

bool SegmentReader::next(SegmentBlock *out) {
    while (bucket_ < h_.buckets && bucket_done_ == table_[bucket_].rows) {
        if (cold_pos_ != table_[bucket_].cold_offset + table_[bucket_].cold_bytes)
            bad("bucket " + std::to_string(bucket_) + "'s blocks do not fill its cold bytes");
        bucket_++;
        bucket_done_ = 0;
    }
    if (bucket_ == h_.buckets) return false;
    const SegmentBucket &e = table_[bucket_];
    uint64_t left = e.cold_offset + e.cold_bytes - cold_pos_;
    std::string where = "a block of bucket " + std::to_string(bucket_);
    if (left < kBlockHead + kBlockTail) bad(where + " is cut short");
    uint8_t head[kBlockHead];
    src_.read(cold_pos_, head, kBlockHead);
    In hi{head, kBlockHead, 0, "a block"};
    uint32_t n = hi.u32(), payload = hi.u32();
    if (n == 0 || n > kSegmentBlockRows || n > e.rows - bucket_done_ ||
        (n < kSegmentBlockRows && n != e.rows - bucket_done_))
        bad(where + " has a wrong row count");
    if (payload > left - kBlockHead - kBlockTail) bad(where + " reaches past its bucket");
    buf_.resize(kBlockHead + payload + kBlockTail);
    src_.read(cold_pos_, buf_.data(), buf_.size());
    In ci{buf_.data() + kBlockHead + payload, kBlockTail, 0, "a block"};
    if (!checksum_ok(ci.u64(), buf_.data(), kBlockHead + payload)) bad(where + " fails its checksum");
    const uint8_t *p = buf_.data() + kBlockHead;
    size_t avail = payload;
    out->bucket = bucket_;
    out->rows = n;
    out->ids.resize(n);
    out->vectors.resize(size_t(n) * h_.dim);
    size_t used = 0;
    column_.resize(n);
    try {
        used = int_decode(p, avail, n, out->ids.data());
        for (uint32_t d = 0; d < h_.dim; d++) {
            if (used >= avail) bad(where + " ends before its last dimension");
            FloatCodec codec = FloatCodec(p[used]);
            used += float_decode(p + used, avail - used, n, column_.data());
            (codec == FloatCodec::Alp ? counts_.alp : codec == FloatCodec::AlpRd ? counts_.alp_rd : counts_.raw)++;
            for (uint32_t i = 0; i < n; i++) out->vectors[size_t(i) * h_.dim + d] = column_[i];
        }
    } catch (const SegmentError &) {
        throw;
    } catch (const Error &err) {
        bad(where + ": " + err.what());
    }
    if (used != avail) bad(where + " has bytes left over");
    cold_pos_ += buf_.size();
    bucket_done_ += n;
    return true;
}

void SegmentReader::codes(uint32_t b, std::vector<uint8_t> *out) const {
    if (b >= h_.buckets) bad("no bucket " + std::to_string(b));
    const SegmentBucket &e = table_[b];
    out->resize(size_t(e.rows * h_.code_bytes));
    src_.read(e.hot_offset, out->data(), out->size());
    if (!checksum_ok(e.hot_checksum, out->data(), out->size())) bad("bucket " + std::to_string(b) + "'s codes fail their checksum");
}

std::string segment_verify(const SegmentSource &src, SegmentCodecCounts *counts, const Interrupt &interrupt) {
    try {
        SegmentReader r(src);
        std::vector<uint8_t> codes;
        for (uint32_t b = 0; b < r.header().buckets; b++) {
            interrupt.check();
            r.codes(b, &codes);
        }
        SegmentBlock block;
        for (bool more = true; more;) {
            interrupt.check();
            more = r.next(&block);
            if (counts) *counts = r.codecs();
        }
        return "";
    } catch (const SegmentError &e) {
        return e.what();
    }
}

}  // namespace drift
