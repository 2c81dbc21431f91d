// Lossless column codecs of .drift segments: bit-packing, a frame-of-reference
// integer codec, and float vectors coded with ALP, ALP_RD or raw (Afroozeh et
// al., "ALP: Adaptive Lossless floating-Point Compression", SIGMOD 2024).
// docs/segment-codecs.md specifies every byte.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "core.hpp"

namespace drift {

// Values in one encoded float vector, at most.
constexpr size_t kFloatVector = 1024;

// Bytes that n values of width bits take packed (ceil(n*width/8)); width 0..64.
size_t bitpack_bytes(size_t n, unsigned width);

// Packs the low `width` bits of each of v[0..n) LSB-first into out (bitpack_bytes(n, width) bytes, fully written).
void bitpack(const uint64_t *v, size_t n, unsigned width, uint8_t *out);

// Unpacks n values of width bits from in (bitpack_bytes(n, width) bytes).
void bitunpack(const uint8_t *in, size_t n, unsigned width, uint64_t *v);

// Appends n int64 values, frame-of-reference coded (minimum, then the bit-packed differences), to out.
void int_encode(const int64_t *v, size_t n, std::vector<uint8_t> &out);

// Decodes n int64 values int_encode wrote, from at most `avail` bytes at in; returns the bytes read. Throws drift::Error on malformed or short input.
size_t int_decode(const uint8_t *in, size_t avail, size_t n, int64_t *v);

// How a float vector was coded.
enum class FloatCodec : uint8_t { Raw = 0, Alp = 1, AlpRd = 2 };

// Appends n floats (1 <= n <= kFloatVector) losslessly coded to out (whichever of ALP, ALP_RD and raw is smallest), and returns the codec chosen.
FloatCodec float_encode(const float *v, size_t n, std::vector<uint8_t> &out);

// Decodes n floats float_encode wrote, from at most `avail` bytes at in, into v; returns the bytes read. Throws drift::Error on malformed or short input (never reads past in+avail, never allocates by an untrusted size beyond n).
size_t float_decode(const uint8_t *in, size_t avail, size_t n, float *v);

}  // namespace drift
