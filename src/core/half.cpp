// Scalar half <-> float conversion by bit manipulation.
#include "half.hpp"

#include <cstring>

namespace drift {

float half_to_float(uint16_t h) {
    uint32_t sign = uint32_t(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0x1f) {
        bits = sign | 0x7f800000 | (man << 13);  // inf, NaN (payload kept)
    } else if (exp != 0) {
        bits = sign | ((exp + 112) << 23) | (man << 13);
    } else if (man == 0) {
        bits = sign;
    } else {  // subnormal: normalize the mantissa
        int shift = 0;
        while (!(man & 0x400)) {
            man <<= 1;
            shift++;
        }
        bits = sign | (uint32_t(113 - shift) << 23) | ((man & 0x3ff) << 13);
    }
    float f;
    std::memcpy(&f, &bits, sizeof f);
    return f;
}

bool float_to_half(float f, uint16_t *out) {
    if (!fits_half(f)) return false;  // (NaN too)
    uint32_t bits;
    std::memcpy(&bits, &f, sizeof bits);
    uint16_t sign = uint16_t((bits >> 16) & 0x8000);
    uint32_t abs = bits & 0x7fffffff;
    if (abs < 0x33000001) {  // below half the smallest subnormal: +-0
        *out = sign;
        return true;
    }
    int32_t exp = int32_t(abs >> 23) - 127;
    uint32_t man = (abs & 0x7fffff) | 0x800000;  // with the implicit bit
    // Bits to drop: 13 for a normal half, more below exponent -14.
    int shift = exp < -14 ? 13 + (-14 - exp) : 13;
    uint32_t kept = man >> shift, rest = man & ((1u << shift) - 1), halfway = 1u << (shift - 1);
    if (rest > halfway || (rest == halfway && (kept & 1))) kept++;
    uint32_t h;
    if (exp < -14) {
        h = kept;  // subnormal (a carry into bit 10 yields the smallest normal)
    } else {
        h = (uint32_t(exp + 15) << 10) + (kept - 0x400);  // a carry bumps the exponent
    }
    *out = uint16_t(sign | h);
    return true;
}

bool floats_to_half(const float *f, uint16_t *out, size_t n) {
    for (size_t i = 0; i < n; ++i)
        if (!float_to_half(f[i], &out[i])) return false;
    return true;
}

void halves_to_float_scalar(const uint16_t *h, float *out, size_t n) {
    for (size_t i = 0; i < n; ++i) out[i] = half_to_float(h[i]);
}

}  // namespace drift
