// Bloom filter over int64 ids (XXH3-128 double hashing), as .drift segments
// store it; docs/segment-codecs.md specifies the bits.
#pragma once

#include <cstdint>

#include "core.hpp"

namespace drift {

// A Bloom filter's shape: bits (a multiple of 64, at least 64) and hash count (1..16).
struct BloomShape {
    uint64_t bits;
    uint32_t hashes;
};

// The shape for n ids at false-positive rate fp (e.g. 0.01).
BloomShape bloom_shape(uint64_t n, double fp);

// Sets id's bits in filter (shape.bits / 8 bytes).
void bloom_add(uint8_t *filter, BloomShape shape, int64_t id);

// False if id was certainly never added.
bool bloom_test(const uint8_t *filter, BloomShape shape, int64_t id);

}  // namespace drift
