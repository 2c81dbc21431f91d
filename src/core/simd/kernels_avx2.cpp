// Kernels compiled for avx2 (this file alone gets that ISA's compiler flags).
#include "kernels_impl.hpp"

namespace drift::simd {

// The avx2 kernel set.
Kernels kernels_avx2() { return make_kernels<xsimd::fma3<xsimd::avx2>>("avx2"); }

}  // namespace drift::simd
