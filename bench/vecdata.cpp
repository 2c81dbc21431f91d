// vecdata: turns .fvecs/.ivecs files into COPY text, and generates clustered
// vectors (optionally from a shifted distribution) for tests and benchmarks.
//
//   vecdata fvecs FILE [LIMIT]        -> "id<TAB>{x1,...}" per vector, ids from 0
//   vecdata ivecs FILE [K]            -> "qid<TAB>{n1,...}" with the first K ids
//   vecdata gen N DIM CLUSTERS SEED [SHIFT [FIRST_ID [SPREAD]]]
//                                     -> N rows of a CLUSTERS-component mixture
//                                        with low intrinsic dimension (see
//                                        generate()); SHIFT drifts it; FIRST_ID
//                                        also seeds the rows
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <algorithm>
#include <type_traits>
#include <string>
#include <vector>

#include "core/kmeans.hpp"

namespace {

// Prints a usage error and exits.
[[noreturn]] void usage(const char *msg) {
    std::fprintf(stderr, "vecdata: %s\nusage: vecdata fvecs FILE [LIMIT] | ivecs FILE [K] | gen N DIM CLUSTERS SEED [SHIFT [FIRST_ID [SPREAD]]]\n", msg);
    std::exit(2);
}

// Reads one record header (the dimension); false at end of file.
bool read_dim(FILE *f, int32_t *dim) {
    if (std::fread(dim, sizeof(int32_t), 1, f) != 1) return false;
    if (*dim <= 0 || *dim > 1000000) usage("record has an invalid dimension");
    return true;
}

// Streams .fvecs or .ivecs records as COPY text: at most `limit` rows
// (fvecs) or the first `limit` values of every row (ivecs); -1 = all.
template <class T>
int dump(const char *path, long limit) {
    long rows = std::is_same_v<T, float> ? limit : -1, cols = std::is_same_v<T, float> ? -1 : limit;
    FILE *f = std::fopen(path, "rb");
    if (!f) usage((std::string("cannot open ") + path).c_str());
    std::vector<T> rec;
    int32_t dim;
    std::string line;
    for (long id = 0; (rows < 0 || id < rows) && read_dim(f, &dim); ++id) {
        rec.resize(size_t(dim));
        if (std::fread(rec.data(), sizeof(T), size_t(dim), f) != size_t(dim)) usage("truncated record");
        line = std::to_string(id) + "\t{";
        char buf[32];
        long m = cols < 0 ? dim : std::min<long>(cols, dim);
        for (long j = 0; j < m; ++j) {
            if constexpr (std::is_same_v<T, float>)
                std::snprintf(buf, sizeof(buf), "%s%.9g", j ? "," : "", double(rec[size_t(j)]));
            else
                std::snprintf(buf, sizeof(buf), "%s%d", j ? "," : "", int(rec[size_t(j)]));
            line += buf;
        }
        line += "}\n";
        std::fputs(line.c_str(), stdout);
    }
    std::fclose(f);
    return 0;
}

// Standard normal deviate (Box-Muller) from the project's generator.
double gauss(drift::Rng &r) {
    double u = r.uniform(), v = r.uniform();
    return std::sqrt(-2.0 * std::log(u + 1e-300)) * std::cos(2 * M_PI * v);
}

// Writes n rows like real embeddings: a mixture of `clusters` gaussians in
// a 16-dimensional latent space (unit spread, centres `spread` apart per
// latent dimension), mapped to dim dimensions by a fixed random linear map,
// plus 0.1 noise per dimension. shift moves every centre by shift * 4 along
// one shared latent direction (with per-cluster jitter): distribution drift.
int generate(long n, int dim, int clusters, uint64_t seed, double shift, long first, double spread) {
    const int latent = std::min(16, dim);
    drift::Rng model{seed};
    std::vector<double> centres(static_cast<size_t>(clusters) * latent), dir(static_cast<size_t>(latent)),
        map(static_cast<size_t>(dim) * latent);
    for (auto &c : centres) c = gauss(model) * spread;
    for (auto &m : map) m = gauss(model) / std::sqrt(double(latent));
    for (auto &d : dir) d = gauss(model);
    double norm = 0;
    for (double d : dir) norm += d * d;
    norm = std::sqrt(norm);
    for (int c = 0; c < clusters; ++c)
        for (int l = 0; l < latent; ++l)
            centres[size_t(c) * latent + l] += shift * (4.0 * dir[size_t(l)] / norm + 0.5 * gauss(model));
    drift::Rng rows{seed ^ 0xABCDEF0123456789ULL ^ uint64_t(shift * 1000) ^ (uint64_t(first) << 20)};
    std::vector<double> z(static_cast<size_t>(latent));
    std::string line;
    char buf[32];
    for (long i = 0; i < n; ++i) {
        size_t c = size_t(rows.below(uint64_t(clusters)));
        for (int l = 0; l < latent; ++l) z[size_t(l)] = centres[c * latent + l] + gauss(rows);
        line = std::to_string(first + i) + "\t{";
        for (int j = 0; j < dim; ++j) {
            double x = 0.1 * gauss(rows);
            for (int l = 0; l < latent; ++l) x += map[size_t(j) * latent + l] * z[size_t(l)];
            std::snprintf(buf, sizeof(buf), "%s%.6g", j ? "," : "", x);
            line += buf;
        }
        line += "}\n";
        std::fputs(line.c_str(), stdout);
    }
    return 0;
}

}  // namespace

int main(int argc, char **argv) {
    if (argc < 3) usage("missing arguments");
    std::string cmd = argv[1];
    if (cmd == "fvecs") return dump<float>(argv[2], argc > 3 ? std::atol(argv[3]) : -1);
    if (cmd == "ivecs") return dump<int32_t>(argv[2], argc > 3 ? std::atol(argv[3]) : -1);
    if (cmd == "gen") {
        if (argc < 6) usage("gen needs N DIM CLUSTERS SEED");
        return generate(std::atol(argv[2]), std::atoi(argv[3]), std::atoi(argv[4]), std::strtoull(argv[5], nullptr, 10),
                        argc > 6 ? std::atof(argv[6]) : 0.0, argc > 7 ? std::atol(argv[7]) : 0,
                        argc > 8 ? std::atof(argv[8]) : 1.5);
    }
    usage("unknown command");
}
