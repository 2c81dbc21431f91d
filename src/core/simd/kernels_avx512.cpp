// Kernels compiled for avx512 (this file alone gets that ISA's compiler flags).
#include "kernels_impl.hpp"

namespace drift::simd {

// The avx512 kernel set.
Kernels kernels_avx512() { return make_kernels<xsimd::avx512bw>("avx512"); }

}  // namespace drift::simd
