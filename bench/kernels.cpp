// Google Benchmark of the distance kernels: one query against a block of
// vectors (float for L2/IP/cosine, SQ8 codes for ADC, RaBitQ bits for
// sign_dot: the bits alone, a RaBitQ code's score being sign_dot and a few
// multiplies), for every kernel set
// the CPU runs. bytes_per_second counts the vector bytes streamed, so the
// in-cache (32k-row block of 128-d codes fits L2) and out-of-cache (64 MiB)
// numbers show how close each kernel comes to memory bandwidth.
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "core/distance.hpp"
#include "core/kmeans.hpp"

namespace {

enum class Kind { L2, IP, Cosine, Sq8L2, Sq8IP, Dot4x2, SignDot };

// Runs one kernel of set s over `bytes` worth of dim-dimensional rows.
void run(benchmark::State &state, const drift::Kernels *s, Kind kind, size_t dim, size_t bytes) {
    bool codes = kind == Kind::Sq8L2 || kind == Kind::Sq8IP || kind == Kind::SignDot;
    size_t row = kind == Kind::SignDot ? dim / 8 : codes ? dim : dim * sizeof(float);
    size_t rows = std::max<size_t>(1, bytes / row);
    drift::Rng r{1};
    std::vector<float> q(dim), w(dim), data(codes ? 0 : rows * dim);
    std::vector<uint8_t> code(codes ? rows * row : 0);
    for (auto &x : q) x = float(r.uniform());
    for (auto &x : w) x = float(r.uniform());
    for (auto &x : data) x = float(r.uniform());
    for (auto &x : code) x = uint8_t(r.below(256));
    float sink = 0;
    for (auto _ : state) {
        if (kind == Kind::Dot4x2) {  // four query rows against the block's rows two at a time, as a build does
            const float *four[4] = {q.data(), w.data(), q.data(), w.data()};
            float out[8];
            for (size_t i = 0; i + 2 <= rows; i += 2) {
                s->dot_4x2(four, &data[i * dim], &data[(i + 1) * dim], dim, out);
                sink += out[0] + out[7];
            }
        }
        for (size_t i = 0; i < rows && kind != Kind::Dot4x2; ++i) {
            switch (kind) {
                case Kind::L2: sink += s->l2sq(q.data(), &data[i * dim], dim); break;
                case Kind::IP: sink += s->dot(q.data(), &data[i * dim], dim); break;
                // cosine on unit vectors is 1 - dot: the same kernel as IP
                case Kind::Cosine: sink += 1.0f - s->dot(q.data(), &data[i * dim], dim); break;
                case Kind::Sq8L2: sink += s->sq8_l2(q.data(), w.data(), &code[i * dim], dim); break;
                case Kind::Sq8IP: sink += s->sq8_dot(q.data(), &code[i * dim], dim); break;
                case Kind::SignDot: sink += s->sign_dot(q.data(), &code[i * row], dim); break;
                case Kind::Dot4x2: break;
            }
        }
        benchmark::DoNotOptimize(sink);
    }
    state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(rows * row));
    state.SetItemsProcessed(int64_t(state.iterations()) * int64_t(rows));
}

// Registers every kernel x set x dimension x working-set combination.
int register_all() {
    const drift::Kernels *sets[8];
    size_t n = drift::available_kernels(sets, 8);
    const std::pair<Kind, const char *> kinds[] = {
        {Kind::L2, "l2"}, {Kind::IP, "ip"}, {Kind::Cosine, "cosine"}, {Kind::Sq8L2, "sq8_l2"}, {Kind::Sq8IP, "sq8_ip"},
        {Kind::Dot4x2, "dot_4x2"}, {Kind::SignDot, "sign_dot"}};
    for (size_t i = 0; i < n; ++i)
        for (auto [kind, kname] : kinds)
            for (size_t dim : {128, 768})
                for (auto [bytes, where] : {std::pair<size_t, const char *>{256 << 10, "cache"}, {64 << 20, "memory"}}) {
                    std::string name = std::string(kname) + "/" + sets[i]->name + "/d" + std::to_string(dim) + "/" + where;
                    benchmark::RegisterBenchmark(name.c_str(), run, sets[i], kind, dim, bytes)->MinTime(0.2);
                }
    return 0;
}

const int registered = register_all();

}  // namespace
