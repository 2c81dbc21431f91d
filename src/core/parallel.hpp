// Threads for pure computation (k-means, nearest centroids): a range split
// over a few threads, the calling one included. The threads touch only the
// memory their function is given; signals are blocked in them, so the host
// process's signal handlers keep running on the calling thread.
#pragma once

#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <exception>
#include <thread>
#include <vector>

#include "core.hpp"

namespace drift {

// Threads this machine can run at once (at least 1).
inline unsigned hardware_threads() { return std::max(1u, std::thread::hardware_concurrency()); }

// Runs fn(begin, end) over [0, n) cut into up to `threads` contiguous parts
// whose sizes are multiples of `align` (but the last), one per thread, the
// calling thread taking the first. Returns when every part is done, and
// rethrows the first exception a part threw. Falls back to fewer threads
// when the system gives none.
template <class F>
void parallel_for(size_t n, unsigned threads, size_t align, const F &fn) {
    size_t parts = std::max<size_t>(1, std::min<size_t>(threads, (n + align - 1) / std::max<size_t>(align, 1)));
    if (parts <= 1) {
        fn(size_t(0), n);
        return;
    }
    size_t per = ((n + parts - 1) / parts + align - 1) / align * align;
    std::vector<std::exception_ptr> errors(parts);
    auto run = [&](size_t p) {
        try {
            size_t b = std::min(n, p * per), e = std::min(n, b + per);
            if (b < e) fn(b, e);
        } catch (...) {
            errors[p] = std::current_exception();
        }
    };
    // Started threads inherit the mask: block every signal while starting them.
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    std::vector<std::thread> started;
    size_t next = 1;
    try {
        started.reserve(parts - 1);
        for (; next < parts; ++next) started.emplace_back(run, next);
    } catch (...) {
        // (no more threads: the calling thread does the rest)
    }
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
    run(0);
    for (size_t p = next; p < parts; ++p) run(p);
    for (auto &t : started) t.join();
    for (auto &e : errors)
        if (e) std::rethrow_exception(e);
}

}  // namespace drift
