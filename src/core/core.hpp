// Common definitions of drift's engine layer. Nothing under src/core/ may see
// a PostgreSQL header: the engine is unit-tested and benchmarked without a
// server, and reports errors by exception, never by ereport.
#pragma once

#if defined(POSTGRES_H) || defined(PG_VERSION_NUM)
#error "src/core must not include PostgreSQL headers"
#endif

#include <cstddef>
#include <cstdint>
#include <new>
#include <stdexcept>

namespace drift {

// Distance metric of an index; the values are stored in the metapage.
enum class Metric : uint16_t { L2 = 1, InnerProduct = 2, Cosine = 3 };

// Error raised by the engine for invalid arguments or impossible states.
class Error : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

// Raised when a long computation sees its caller's interrupt predicate true
// (the caller then reports the interrupt its own way).
class Cancelled : public Error {
  public:
    Cancelled() : Error("cancelled") {}
};

// A caller's "stop now?" predicate, polled by long computations.
struct Interrupt {
    bool (*pending)(void *arg) = nullptr;
    void *arg = nullptr;
    // Throws Cancelled if the caller wants to stop.
    void check() const {
        if (pending && pending(arg)) throw Cancelled();
    }
};

}  // namespace drift
