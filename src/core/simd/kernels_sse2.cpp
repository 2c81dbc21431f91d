// Kernels compiled for sse2 (this file alone gets that ISA's compiler flags).
#include "kernels_impl.hpp"

namespace drift::simd {

// The sse2 kernel set.
Kernels kernels_sse2() { return make_kernels<xsimd::sse2>("sse2"); }

}  // namespace drift::simd
