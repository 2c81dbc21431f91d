// Little-endian fields and float bit patterns, for the file formats
// (src/core/alp.cpp's codecs, src/storage/segment.cpp's sections).
#pragma once

#include <cstdint>
#include <cstring>

namespace drift {

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
constexpr bool kBigEndian = true;
#else
constexpr bool kBigEndian = false;
#endif

// Reads a little-endian uint16.
inline uint16_t load16(const uint8_t *p) { return uint16_t(p[0] | (p[1] << 8)); }

// Writes a little-endian uint16.
inline void store16(uint8_t *p, uint16_t x) {
    p[0] = uint8_t(x);
    p[1] = uint8_t(x >> 8);
}

// Reads a little-endian uint32.
inline uint32_t load32(const uint8_t *p) {
    uint32_t x;
    std::memcpy(&x, p, 4);
    return kBigEndian ? __builtin_bswap32(x) : x;
}

// Writes a little-endian uint32.
inline void store32(uint8_t *p, uint32_t x) {
    if (kBigEndian) x = __builtin_bswap32(x);
    std::memcpy(p, &x, 4);
}

// Reads a little-endian uint64.
inline uint64_t load64(const uint8_t *p) {
    uint64_t x;
    std::memcpy(&x, p, 8);
    return kBigEndian ? __builtin_bswap64(x) : x;
}

// Writes a little-endian uint64.
inline void store64(uint8_t *p, uint64_t x) {
    if (kBigEndian) x = __builtin_bswap64(x);
    std::memcpy(p, &x, 8);
}

// The bit pattern of a float.
inline uint32_t float_bits(float f) {
    uint32_t b;
    std::memcpy(&b, &f, 4);
    return b;
}

// The float with bit pattern b.
inline float bits_float(uint32_t b) {
    float f;
    std::memcpy(&f, &b, 4);
    return f;
}

}  // namespace drift
