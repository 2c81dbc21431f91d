// libFuzzer target: the segment reader on arbitrary bytes must report a
// malformed file by exception, never crash, hang or over-allocate
// (`make fuzz`; docs/hacking.md says how to run it longer).
#include <cstddef>
#include <cstdint>

#include "storage/segment.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    drift::MemorySource src(data, size);
    drift::segment_verify(src, nullptr);
    try {
        drift::SegmentReader r(src);
        r.maybe_contains(0);
        r.maybe_contains(int64_t(size));
    } catch (const drift::Error &) {
    }
    return 0;
}
