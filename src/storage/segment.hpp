// The .drift segment file (docs/segment-format.md): a writer and a reader
// with no PostgreSQL header, shared by the SQL functions, the
// drift-segment command and the fuzzer. Every offset, count and checksum
// is checked before use; a malformed file raises SegmentError, never a
// crash, a hang or an allocation larger than the file justifies.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "../core/bloom.hpp"
#include "../core/core.hpp"

namespace drift {

// A file that is not a valid segment (the message says where and why).
class SegmentError : public Error {
  public:
    using Error::Error;
};

// What a segment's ids are.
enum class SegmentIds : uint16_t { PrimaryKey = 0, Column = 1, Tid = 2 };

// Fixed sizes and limits of format version 1.
constexpr uint32_t kSegmentVersion = 1;
constexpr size_t kSegmentHeaderBytes = 64, kSegmentFooterBytes = 64;
constexpr uint32_t kSegmentBlockRows = 1024;
constexpr uint32_t kSegmentMaxDim = 16000;
// Bytes of a name in the metadata, at most (a writer cuts longer ones).
constexpr size_t kSegmentMaxName = 1024;
// The latest creation time a reader accepts: year 10000, in microseconds.
constexpr uint64_t kSegmentMaxCreated = 253402300800000000ULL;

// The header's fields (the footer repeats rows and the version).
struct SegmentHeader {
    uint32_t dim = 0;
    Metric metric = Metric::L2;
    uint16_t code_kind = 0; /* CodeKind */
    uint32_t code_bytes = 0; /* of one code: set by the writer from code_kind and dim */
    uint32_t buckets = 0;
    SegmentIds ids = SegmentIds::Tid;
    uint64_t rows = 0;
    uint64_t created_us = 0; /* microseconds since the Unix epoch */
};

// One bucket of the metadata's table: its rows, its codes' place in the
// hot region, its blocks' place in the cold region, and the checksums.
struct SegmentBucket {
    uint64_t rows = 0;
    uint64_t hot_offset = 0, cold_offset = 0, cold_bytes = 0;
    uint64_t hot_checksum = 0;
};

// Where a file's sections are (from its footer), and what blocks hold.
struct SegmentLayout {
    uint64_t file_bytes = 0, hot_offset = 0, cold_offset = 0, meta_offset = 0, bloom_offset = 0;
};

// Block statistics a full read gathers: column vectors by codec.
struct SegmentCodecCounts {
    uint64_t raw = 0, alp = 0, alp_rd = 0;
};

// Random-access bytes of a file (a descriptor, or memory for the fuzzer).
class SegmentSource {
  public:
    virtual ~SegmentSource() = default;
    // Total bytes.
    virtual uint64_t size() const = 0;
    // Reads n bytes at off into buf; throws SegmentError if they are not all there.
    virtual void read(uint64_t off, void *buf, size_t n) const = 0;
};

// A source over a file descriptor (pread).
class FdSource : public SegmentSource {
  public:
    explicit FdSource(int fd);
    uint64_t size() const override { return size_; }
    void read(uint64_t off, void *buf, size_t n) const override;

  private:
    int fd_;
    uint64_t size_;
};

// A source over memory the caller keeps.
class MemorySource : public SegmentSource {
  public:
    MemorySource(const uint8_t *data, size_t n) : data_(data), n_(n) {}
    uint64_t size() const override { return n_; }
    void read(uint64_t off, void *buf, size_t n) const override;

  private:
    const uint8_t *data_;
    size_t n_;
};

// Writes a segment to a descriptor, bucket by bucket: codes go to the hot
// region (placed once the row count is known) and vectors with their ids
// to cold blocks after it, in one pass.
class SegmentWriter {
  public:
    // h.rows must be the rows that will be added, each with a code of
    // code_bytes(h.code_kind, h.dim) bytes; quantizer holds 2 * dim
    // floats, centroids buckets * dim; names are recorded for information.
    SegmentWriter(int fd, const SegmentHeader &h, const float *quantizer, const float *centroids,
                  const std::string &index_name, const std::string &id_name);
    // Adds one row; buckets must come in non-decreasing order.
    void add(uint32_t bucket, int64_t id, const float *v, const uint8_t *code);
    // Writes what is left (last block, metadata, Bloom filter, footer);
    // returns the file's size. Throws if fewer or more rows came than h.rows.
    uint64_t finish();

  private:
    void flush_block();
    void close_bucket();
    void open_bucket(uint32_t b);
    void write_at(uint64_t off, const void *buf, size_t n);

    int fd_;
    SegmentHeader h_;
    std::vector<float> quantizer_, centroids_;
    std::string index_name_, id_name_;
    std::vector<SegmentBucket> table_;
    std::vector<int64_t> ids_;
    BloomShape shape_;
    std::vector<uint8_t> bloom_; /* the Bloom filter, filled as rows come */
    std::vector<float> block_; /* row-major rows of the open block */
    std::vector<uint8_t> buf_;
    uint64_t added_ = 0, hot_pos_ = 0, cold_pos_ = 0;
    int64_t bucket_ = -1;
    std::vector<uint8_t> hot_; /* the open bucket's codes */
};

// One decoded cold block: a bucket's rows, ids and row-major vectors.
struct SegmentBlock {
    uint32_t bucket = 0, rows = 0;
    std::vector<int64_t> ids;
    std::vector<float> vectors;
};

// Reads a segment: the constructor checks the footer, header, metadata and
// Bloom filter (sizes, offsets, checksums); blocks are checked as read.
class SegmentReader {
  public:
    explicit SegmentReader(const SegmentSource &src);
    const SegmentHeader &header() const { return h_; }
    const SegmentLayout &layout() const { return layout_; }
    const std::vector<SegmentBucket> &buckets() const { return table_; }
    // 2 * dim floats: the quantizer's two arrays.
    const float *quantizer() const { return quantizer_.data(); }
    // buckets * dim floats.
    const float *centroids() const { return centroids_.data(); }
    const std::string &index_name() const { return index_name_; }
    const std::string &id_name() const { return id_name_; }
    // False if id is certainly not in the file.
    bool maybe_contains(int64_t id) const;
    // Reads and checks the next cold block into *out; false after the last.
    bool next(SegmentBlock *out);
    // Reads bucket b's codes (rows * code_bytes) into out, checking their checksum.
    void codes(uint32_t b, std::vector<uint8_t> *out) const;
    // Column vectors read so far, by codec.
    const SegmentCodecCounts &codecs() const { return counts_; }

  private:
    const SegmentSource &src_;
    SegmentHeader h_;
    SegmentLayout layout_;
    std::vector<SegmentBucket> table_;
    std::vector<float> quantizer_, centroids_;
    std::string index_name_, id_name_;
    std::vector<uint8_t> bloom_;
    uint64_t bloom_bits_ = 0;
    uint32_t bloom_hashes_ = 0;
    // iteration state
    uint32_t bucket_ = 0;
    uint64_t bucket_done_ = 0, cold_pos_ = 0;
    std::vector<uint8_t> buf_;
    std::vector<float> column_;
    SegmentCodecCounts counts_;
};

// Verifies every checksum and decodes every block, polling interrupt
// between them; returns "" if the file is sound, else what is wrong (the
// file's problem; a failed read or a cancel is thrown). Counts the column
// vectors read by codec into *counts.
std::string segment_verify(const SegmentSource &src, SegmentCodecCounts *counts, const Interrupt &interrupt = Interrupt());

}  // namespace drift
