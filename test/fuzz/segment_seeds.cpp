// Writes the fuzzer's seed corpus: small valid segments of every code kind,
// id kind and codec (integer-valued, decimal, random and edge-value floats).
#include <fcntl.h>
#include <unistd.h>

#include <cfloat>
#include <cmath>
#include <cstdio>
#include <limits>
#include <string>
#include <vector>

#include "core/codes.hpp"
#include "core/distance.hpp"
#include "storage/segment.hpp"

namespace {

// The values of row i, dimension d, in one of four styles.
float value(int style, uint64_t &rng, uint32_t i, uint32_t d) {
    rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
    uint32_t r = uint32_t(rng >> 33);
    switch (style) {
        case 0: return float(r % 256);                  // integer-valued (SIFT, MNIST)
        case 1: return float(int(r % 20001) - 10000) / 1000.0f;  // three decimals
        case 2: return float(r) / float(1u << 31) - 1.0f;        // random
        default: {
            const float edge[] = {0.0f, -0.0f, FLT_MIN, FLT_MAX, -FLT_MAX, std::numeric_limits<float>::denorm_min(), 1e-30f, 3.5f};
            return (i + d) % 5 == 0 ? edge[(i * 7 + d) % 8] : float(i % 9) * 0.25f;
        }
    }
}

// Writes one segment of rows x dim in `buckets` buckets to path.
void write_seed(const std::string &path, uint32_t dim, uint32_t rows, uint32_t buckets, drift::CodeKind kind,
                drift::SegmentIds ids, int style) {
    drift::SegmentHeader h;
    h.dim = dim;
    h.metric = drift::Metric::L2;
    h.code_kind = uint16_t(kind);
    h.buckets = buckets;
    h.ids = ids;
    h.rows = rows;
    h.created_us = 1700000000000000ULL;
    uint64_t rng = dim * 31 + rows;
    std::vector<float> q(2 * dim, 1.0f), c(size_t(buckets) * dim, 0.5f), v(dim);
    std::vector<uint8_t> code(drift::code_bytes(kind, dim), 0x5a);
    int fd = open(path.c_str(), O_CREAT | O_TRUNC | O_WRONLY, 0644);
    if (fd < 0) {
        perror(path.c_str());
        exit(1);
    }
    drift::SegmentWriter w(fd, h, q.data(), c.data(), "seed_idx", ids == drift::SegmentIds::Column ? "id" : "");
    for (uint32_t i = 0; i < rows; i++) {
        for (uint32_t d = 0; d < dim; d++) v[d] = value(style, rng, i, d);
        w.add(uint32_t(uint64_t(i) * buckets / std::max(rows, 1u)), int64_t(i) * 3 - 7, v.data(), code.data());
    }
    w.finish();
    close(fd);
}

}  // namespace

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: segment_seeds DIR\n");
        return 2;
    }
    std::string dir = argv[1];
    write_seed(dir + "/empty.drift", 4, 0, 0, drift::CodeKind::Sq8, drift::SegmentIds::Tid, 0);
    write_seed(dir + "/one.drift", 1, 1, 1, drift::CodeKind::Sq8, drift::SegmentIds::PrimaryKey, 1);
    write_seed(dir + "/ints.drift", 16, 1100, 3, drift::CodeKind::Sq8, drift::SegmentIds::PrimaryKey, 0);
    write_seed(dir + "/decimals.drift", 8, 300, 4, drift::CodeKind::RaBitQ, drift::SegmentIds::Column, 1);
    write_seed(dir + "/random.drift", 8, 200, 2, drift::CodeKind::RaBitQ, drift::SegmentIds::Tid, 2);
    write_seed(dir + "/edges.drift", 5, 120, 3, drift::CodeKind::Sq8, drift::SegmentIds::Tid, 3);
    write_seed(dir + "/empty_bucket.drift", 3, 10, 5, drift::CodeKind::Sq8, drift::SegmentIds::Tid, 1);
    return 0;
}
