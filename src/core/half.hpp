// IEEE 754 half precision (binary16): how halfvec columns arrive and how an
// index with precision = half stores full vectors and centroids.
#pragma once

#include "core.hpp"

namespace drift {

// Largest finite half value.
constexpr float kHalfMax = 65504.0f;

// True if f rounds to a finite half (below 65520, the midpoint between
// kHalfMax and the next step, which would round to infinity).
inline bool fits_half(float f) { return f > -65520.0f && f < 65520.0f; }

// The float a half holds (exact: every half is a float).
float half_to_float(uint16_t h);

// The half nearest f (ties to even); false if f is not finite or rounds
// beyond kHalfMax.
bool float_to_half(float f, uint16_t *out);

// Converts n floats; false (out partly written) if one does not fit.
bool floats_to_half(const float *f, uint16_t *out, size_t n);

// Converts n halves with the scalar code (the kernels' reference).
void halves_to_float_scalar(const uint16_t *h, float *out, size_t n);

}  // namespace drift
