// Unit tests of the .drift segment writer and reader (src/storage/segment.cpp):
// round trips bit for bit, the Bloom filter, and that every truncation and
// every flipped byte of a file is reported, never crashed on.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cfloat>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "core/codes.hpp"
#include "core/kmeans.hpp"
#include "storage/segment.hpp"

namespace {

// A segment written to an unlinked temporary file, read back into memory.
struct Written {
    std::vector<uint8_t> bytes;
    std::vector<int64_t> ids;
    std::vector<uint32_t> buckets;
    std::vector<float> rows;
    std::vector<uint8_t> codes;
};

// An unlinked temporary file open for reading and writing.
int temp_fd() {
    char path[] = "/tmp/drift_segment_testXXXXXX";
    int fd = mkstemp(path);
    EXPECT_GE(fd, 0);
    unlink(path);
    return fd;
}

// The header of a 2-dimensional SQ8 segment of rows in buckets.
drift::SegmentHeader two_d_header(uint32_t buckets, uint64_t rows) {
    drift::SegmentHeader h;
    h.dim = 2;
    h.buckets = buckets;
    h.rows = rows;
    return h;
}

// Writes rows x dim values from gen(i, d), bucket of row i = i * buckets / rows.
template <class G>
Written write_segment(uint32_t dim, uint32_t rows, uint32_t buckets, drift::CodeKind kind, G gen) {
    Written w;
    int fd = temp_fd();
    drift::SegmentHeader h;
    h.dim = dim;
    h.metric = drift::Metric::Cosine;
    h.code_kind = uint16_t(kind);
    h.buckets = buckets;
    h.ids = drift::SegmentIds::PrimaryKey;
    h.rows = rows;
    h.created_us = 123456789;
    std::vector<float> q(2 * dim), c(size_t(buckets) * dim);
    for (size_t i = 0; i < q.size(); i++) q[i] = float(i) * 0.5f;
    for (size_t i = 0; i < c.size(); i++) c[i] = float(i) * 0.25f - 3;
    drift::SegmentWriter sw(fd, h, q.data(), c.data(), "items_idx", "id");
    std::vector<float> v(dim);
    std::vector<uint8_t> code(drift::code_bytes(kind, dim));
    for (uint32_t i = 0; i < rows; i++) {
        for (uint32_t d = 0; d < dim; d++) v[d] = gen(i, d);
        for (size_t j = 0; j < code.size(); j++) code[j] = uint8_t(i * 7 + j);
        uint32_t b = uint32_t(uint64_t(i) * buckets / rows);
        int64_t id = int64_t(i) * 1000003 - 5;
        sw.add(b, id, v.data(), code.data());
        w.ids.push_back(id);
        w.buckets.push_back(b);
        w.rows.insert(w.rows.end(), v.begin(), v.end());
        w.codes.insert(w.codes.end(), code.begin(), code.end());
    }
    uint64_t size = sw.finish();
    w.bytes.resize(size);
    EXPECT_EQ(pread(fd, w.bytes.data(), size, 0), ssize_t(size));
    close(fd);
    return w;
}

// Reads every row of a segment in memory and compares it with what was written.
void expect_round_trip(const Written &w, uint32_t dim, uint32_t buckets) {
    drift::MemorySource src(w.bytes.data(), w.bytes.size());
    drift::SegmentReader r(src);
    EXPECT_EQ(r.header().dim, dim);
    EXPECT_EQ(r.header().rows, w.ids.size());
    EXPECT_EQ(r.header().buckets, buckets);
    EXPECT_EQ(r.header().metric, drift::Metric::Cosine);
    EXPECT_EQ(r.header().created_us, 123456789u);
    EXPECT_EQ(r.index_name(), "items_idx");
    EXPECT_EQ(r.id_name(), "id");
    EXPECT_EQ(r.quantizer()[3], 1.5f);
    EXPECT_EQ(r.centroids()[5], 5 * 0.25f - 3);
    drift::SegmentBlock b;
    size_t at = 0;
    while (r.next(&b)) {
        for (uint32_t i = 0; i < b.rows; i++, at++) {
            ASSERT_LT(at, w.ids.size());
            EXPECT_EQ(b.ids[i], w.ids[at]);
            EXPECT_EQ(b.bucket, w.buckets[at]);
            ASSERT_EQ(memcmp(&b.vectors[size_t(i) * dim], &w.rows[at * dim], dim * 4), 0) << "row " << at;
        }
    }
    EXPECT_EQ(at, w.ids.size());
    std::vector<uint8_t> codes, all;
    for (uint32_t k = 0; k < buckets; k++) {
        r.codes(k, &codes);
        all.insert(all.end(), codes.begin(), codes.end());
    }
    EXPECT_EQ(all, w.codes);
    for (int64_t id : w.ids) EXPECT_TRUE(r.maybe_contains(id));
    EXPECT_EQ(drift::segment_verify(src, nullptr), "");
}

TEST(Segment, RoundTripIntegerValued) {
    auto w = write_segment(16, 2500, 3, drift::CodeKind::Sq8, [](uint32_t i, uint32_t d) { return float((i * 31 + d * 7) % 256); });
    expect_round_trip(w, 16, 3);
    drift::MemorySource src(w.bytes.data(), w.bytes.size());
    drift::SegmentCodecCounts counts;
    EXPECT_EQ(drift::segment_verify(src, &counts), "");
    EXPECT_GT(counts.alp, 0u);
    // The vectors take well under their 4 bytes a value.
    drift::SegmentReader r(src);
    EXPECT_LT(r.layout().meta_offset - r.layout().cold_offset, uint64_t(2500) * 16 * 4 / 2);
}

TEST(Segment, RoundTripRandomAndEdgeValues) {
    drift::Rng rng{42};
    const float edges[] = {0.0f, -0.0f, FLT_MIN, FLT_MAX, -FLT_MAX, std::numeric_limits<float>::denorm_min(),
                           -std::numeric_limits<float>::denorm_min(), 1e-38f, 3.4e38f, 1.0f / 3};
    auto w = write_segment(9, 1500, 4, drift::CodeKind::RaBitQ, [&](uint32_t i, uint32_t d) {
        return (i + d) % 13 == 0 ? edges[(i + 3 * d) % 10] : float(rng.uniform() * 2 - 1);
    });
    expect_round_trip(w, 9, 4);
}

// Rows of an .fvecs file of the shared data sets (empty if it is not there).
std::vector<float> read_fvecs(const std::string &name, uint32_t *dim) {
    const char *env = getenv("DRIFT_DATA");
    std::string path = std::string(env ? env : "../shared/data") + "/" + name;
    std::vector<float> rows;
    FILE *f = fopen(path.c_str(), "rb");
    if (f == nullptr) return rows;
    int32_t d;
    while (fread(&d, 4, 1, f) == 1 && d > 0) {
        size_t at = rows.size();
        rows.resize(at + size_t(d));
        if (fread(rows.data() + at, 4, size_t(d), f) != size_t(d)) break;
        *dim = uint32_t(d);
    }
    fclose(f);
    return rows;
}

TEST(Segment, RealDataComesBackBitForBit) {
    for (const char *name : {"siftsmall/siftsmall_base.fvecs", "glove50/glove50_base.fvecs", "mnist/mnist_t10k_base9000.fvecs"}) {
        uint32_t dim = 0;
        std::vector<float> rows = read_fvecs(name, &dim);
        if (rows.empty()) GTEST_SKIP() << name << " not found (set DRIFT_DATA)";
        uint32_t n = uint32_t(rows.size() / dim);
        auto w = write_segment(dim, n, 7, drift::CodeKind::Sq8, [&](uint32_t i, uint32_t d) { return rows[size_t(i) * dim + d]; });
        expect_round_trip(w, dim, 7);
        drift::MemorySource src(w.bytes.data(), w.bytes.size());
        drift::SegmentReader r(src);
        uint64_t cold = r.layout().meta_offset - r.layout().cold_offset;
        printf("%s: %u x %u, vectors %.2fx smaller than raw floats\n", name, n, dim, double(n) * dim * 4 / double(cold));
    }
}

TEST(Segment, EmptyBucketsAndNoRows) {
    auto w = write_segment(3, 5, 8, drift::CodeKind::Sq8, [](uint32_t i, uint32_t d) { return float(i) + float(d) / 10; });
    expect_round_trip(w, 3, 8);
    auto e = write_segment(3, 0, 0, drift::CodeKind::Sq8, [](uint32_t, uint32_t) { return 0.0f; });
    drift::MemorySource src(e.bytes.data(), e.bytes.size());
    EXPECT_EQ(drift::segment_verify(src, nullptr), "");
    drift::SegmentReader r(src);
    drift::SegmentBlock b;
    EXPECT_FALSE(r.next(&b));
}

TEST(Segment, BloomFilterMissesAbsentIds) {
    auto w = write_segment(2, 20000, 2, drift::CodeKind::Sq8, [](uint32_t i, uint32_t d) { return float(i * 2 + d); });
    drift::MemorySource src(w.bytes.data(), w.bytes.size());
    drift::SegmentReader r(src);
    int hits = 0;
    for (int64_t id = 1; id <= 20000; id++) hits += r.maybe_contains(-id * 7919 - 11);
    EXPECT_LT(hits, 20000 * 0.02);  // asked: 1%
}

TEST(Segment, WriterRefusesRowsOutOfOrder) {
    int fd = temp_fd();
    drift::SegmentHeader h = two_d_header(2, 2);
    float q[4] = {0, 0, 1, 1}, c[4] = {0, 0, 1, 1}, v[2] = {1, 2};
    uint8_t code[2] = {0, 0};
    drift::SegmentWriter sw(fd, h, q, c, "i", "");
    sw.add(1, 1, v, code);
    EXPECT_THROW(sw.add(0, 2, v, code), drift::Error);
    EXPECT_THROW(sw.finish(), drift::Error);  // one row short
    close(fd);
}

TEST(Segment, EveryTruncationIsReported) {
    auto w = write_segment(5, 1100, 2, drift::CodeKind::Sq8, [](uint32_t i, uint32_t d) { return float(i % 50) / 4 + float(d); });
    for (size_t n = 0; n < w.bytes.size(); n++) {
        drift::MemorySource src(w.bytes.data(), n);
        EXPECT_NE(drift::segment_verify(src, nullptr), "") << "truncated to " << n;
    }
}

TEST(Segment, EveryFlippedByteIsReported) {
    auto w = write_segment(4, 300, 3, drift::CodeKind::RaBitQ, [](uint32_t i, uint32_t d) { return float(i) * 0.125f - float(d); });
    std::vector<uint8_t> bad = w.bytes;
    for (size_t at = 0; at < bad.size(); at++) {
        for (uint8_t mask : {uint8_t(0x01), uint8_t(0x80)}) {
            bad[at] ^= mask;
            drift::MemorySource src(bad.data(), bad.size());
            EXPECT_NE(drift::segment_verify(src, nullptr), "") << "byte " << at;
            bad[at] ^= mask;
        }
    }
}

TEST(Segment, NonFiniteCentroidsAreRefused) {
    int fd = temp_fd();
    drift::SegmentHeader h = two_d_header(1, 1);
    float q[4] = {0, 0, 1, 1}, c[2] = {std::nanf(""), 0}, v[2] = {1, 2};
    uint8_t code[2] = {0, 0};
    drift::SegmentWriter sw(fd, h, q, c, "i", "");
    sw.add(0, 1, v, code);
    std::vector<uint8_t> bytes(sw.finish());
    EXPECT_EQ(pread(fd, bytes.data(), bytes.size(), 0), ssize_t(bytes.size()));
    close(fd);
    drift::MemorySource src(bytes.data(), bytes.size());
    EXPECT_EQ(drift::segment_verify(src, nullptr), "a centroid holds a value that is not finite");
}

TEST(Segment, ForgedSizesAreRefused) {
    // A header and footer with valid checksums but absurd counts must be
    // refused before anything is allocated by them.
    auto w = write_segment(4, 10, 1, drift::CodeKind::Sq8, [](uint32_t i, uint32_t d) { return float(i + d); });
    drift::MemorySource ok(w.bytes.data(), w.bytes.size());
    EXPECT_EQ(drift::segment_verify(ok, nullptr), "");
    // Garbage of every small size.
    std::vector<uint8_t> junk(200, 0xAB);
    for (size_t n = 0; n <= junk.size(); n++) {
        drift::MemorySource src(junk.data(), n);
        EXPECT_NE(drift::segment_verify(src, nullptr), "");
    }
}

}  // namespace
