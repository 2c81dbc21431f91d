// Bloom filter over int64 ids: XXH3-128 of the id's little-endian bytes,
// k probes by double hashing.
#include "bloom.hpp"

#include <algorithm>
#include <cmath>

#define XXH_INLINE_ALL
#include <xxhash.h>

namespace drift {

namespace {

// The two probe hashes of id: h1, and h2 made odd.
inline void bloom_hashes(int64_t id, uint64_t *h1, uint64_t *h2) {
    uint8_t le[8];
    for (int i = 0; i < 8; ++i) le[i] = uint8_t(uint64_t(id) >> (8 * i));
    XXH128_hash_t h = XXH3_128bits(le, sizeof le);
    *h1 = h.low64;
    *h2 = h.high64 | 1;
}

// Throws unless shape is one bloom_shape could have returned.
inline void check_shape(BloomShape shape) {
    if (shape.bits < 64 || shape.bits % 64 != 0 || shape.hashes < 1 || shape.hashes > 16)
        throw Error("bad Bloom filter shape");
}

}  // namespace

BloomShape bloom_shape(uint64_t n, double fp) {
    if (!(fp > 0.0 && fp < 1.0)) throw Error("Bloom false-positive rate must be in (0, 1)");
    double ln2 = std::log(2.0);
    double items = double(n ? n : 1);
    double bits = std::ceil(-items * std::log(fp) / (ln2 * ln2));
    if (bits > 0x1p60) throw Error("Bloom filter too large");
    uint64_t b = (uint64_t(bits) + 63) / 64 * 64;
    if (b < 64) b = 64;
    double k = std::round(double(b) / items * ln2);
    return BloomShape{b, uint32_t(std::min(16.0, std::max(1.0, k)))};
}

void bloom_add(uint8_t *filter, BloomShape shape, int64_t id) {
    check_shape(shape);
    uint64_t h1, h2;
    bloom_hashes(id, &h1, &h2);
    for (uint32_t i = 0; i < shape.hashes; ++i) {
        uint64_t bit = (h1 + i * h2) % shape.bits;
        filter[bit / 8] |= uint8_t(1u << (bit % 8));
    }
}

bool bloom_test(const uint8_t *filter, BloomShape shape, int64_t id) {
    check_shape(shape);
    uint64_t h1, h2;
    bloom_hashes(id, &h1, &h2);
    for (uint32_t i = 0; i < shape.hashes; ++i) {
        uint64_t bit = (h1 + i * h2) % shape.bits;
        if (!(filter[bit / 8] & (1u << (bit % 8)))) return false;
    }
    return true;
}

}  // namespace drift
