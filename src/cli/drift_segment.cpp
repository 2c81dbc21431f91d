// drift-segment: inspect, verify and dump .drift segment files without
// PostgreSQL (docs/segments.md).
//
//   drift-segment info FILE
//   drift-segment verify FILE
//   drift-segment dump FILE [--format csv|fvecs] [--ids IDFILE] [-o OUT]
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <string>

#include "../storage/segment.hpp"

namespace {

const char *kUsage =
    "usage: drift-segment info FILE\n"
    "       drift-segment verify FILE\n"
    "       drift-segment dump FILE [--format csv|fvecs] [--ids IDFILE] [-o OUT]\n"
    "\n"
    "info    the header and footer fields, section sizes, compression, and whether every checksum holds\n"
    "verify  checks every checksum and decodes every block; exit status 0 if the file is sound\n"
    "dump    every row: CSV lines id,bucket,\"{v1,...}\" (default), or fvecs vectors with their ids,\n"
    "        one per line, in IDFILE\n";

// Opens path for reading, or exits with a message.
int open_or_die(const char *path) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        fprintf(stderr, "drift-segment: could not open \"%s\": %s\n", path, strerror(errno));
        exit(2);
    }
    return fd;
}

// The name of a metric.
const char *metric_name(drift::Metric m) {
    return m == drift::Metric::L2 ? "l2" : m == drift::Metric::InnerProduct ? "inner_product" : "cosine";
}

// The name of an id kind.
const char *ids_name(drift::SegmentIds k) {
    return k == drift::SegmentIds::PrimaryKey ? "primary_key" : k == drift::SegmentIds::Column ? "column" : "tid";
}

// Prints the file's fields and sizes, then verifies it; returns the exit status.
int info(const char *path) {
    int fd = open_or_die(path);
    drift::FdSource src(fd);
    drift::SegmentReader r(src);
    const drift::SegmentHeader &h = r.header();
    const drift::SegmentLayout &l = r.layout();
    drift::SegmentCodecCounts counts;
    std::string problem = drift::segment_verify(src, &counts);
    uint64_t cold = l.meta_offset - l.cold_offset, raw = h.rows * h.dim * 4;
    time_t created = time_t(h.created_us / 1000000);
    char when[64];
    strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", gmtime(&created));
    printf("format_version: %u\n", drift::kSegmentVersion);
    printf("created: %s\n", when);
    printf("index: %s\n", r.index_name().c_str());
    printf("ids: %s%s%s\n", ids_name(h.ids), r.id_name().empty() ? "" : " ", r.id_name().c_str());
    printf("dimension: %u\nmetric: %s\ncodes: %s\ncode_bytes: %u\n", h.dim, metric_name(h.metric),
           h.code_kind == 1 ? "rabitq" : "sq8", h.code_bytes);
    printf("rows: %llu\nbuckets: %u\n", (unsigned long long) h.rows, h.buckets);
    printf("file_bytes: %llu\n", (unsigned long long) l.file_bytes);
    printf("header_bytes: %zu\nhot_bytes: %llu\ncold_bytes: %llu\nmeta_bytes: %llu\nbloom_bytes: %llu\nfooter_bytes: %zu\n",
           drift::kSegmentHeaderBytes, (unsigned long long) (l.cold_offset - l.hot_offset), (unsigned long long) cold,
           (unsigned long long) (l.bloom_offset - l.meta_offset),
           (unsigned long long) (l.file_bytes - drift::kSegmentFooterBytes - l.bloom_offset), drift::kSegmentFooterBytes);
    printf("raw_vector_bytes: %llu\n", (unsigned long long) raw);
    printf("compression_ratio: %.3f\n", cold > 0 ? double(raw) / double(cold) : 0.0);
    printf("columns_alp: %llu\ncolumns_alp_rd: %llu\ncolumns_raw: %llu\n", (unsigned long long) counts.alp,
           (unsigned long long) counts.alp_rd, (unsigned long long) counts.raw);
    printf("checksums_ok: %s\n", problem.empty() ? "true" : "false");
    if (!problem.empty()) printf("problem: %s\n", problem.c_str());
    close(fd);
    return problem.empty() ? 0 : 1;
}

// Checks the whole file; returns the exit status.
int verify(const char *path) {
    int fd = open_or_die(path);
    drift::FdSource src(fd);
    std::string problem = drift::segment_verify(src, nullptr);
    close(fd);
    if (!problem.empty()) {
        fprintf(stderr, "drift-segment: \"%s\" is not sound: %s\n", path, problem.c_str());
        return 1;
    }
    printf("%s: ok\n", path);
    return 0;
}

// Opens an output file (or stdout for "-" or none), or exits with a message.
FILE *open_out(const char *path) {
    if (path == nullptr || strcmp(path, "-") == 0) return stdout;
    FILE *f = fopen(path, "wb");
    if (f == nullptr) {
        fprintf(stderr, "drift-segment: could not create \"%s\": %s\n", path, strerror(errno));
        exit(2);
    }
    return f;
}

// Writes every row as CSV or fvecs (ids to ids_path); returns the exit status.
int dump(const char *path, bool fvecs, const char *out_path, const char *ids_path) {
    if (fvecs && ids_path == nullptr && (out_path == nullptr || strcmp(out_path, "-") == 0)) {
        fprintf(stderr, "drift-segment: fvecs output carries no ids: name a file for them with --ids\n");
        return 2;
    }
    int fd = open_or_die(path);
    drift::FdSource src(fd);
    drift::SegmentReader r(src);
    FILE *out = open_out(out_path);
    FILE *ids = nullptr;
    if (fvecs) {
        std::string p = ids_path ? ids_path : std::string(out_path) + ".ids";
        ids = open_out(p.c_str());
    }
    uint32_t dim = r.header().dim;
    drift::SegmentBlock b;
    while (r.next(&b)) {
        for (uint32_t i = 0; i < b.rows; i++) {
            const float *v = b.vectors.data() + size_t(i) * dim;
            if (fvecs) {
                int32_t d = int32_t(dim);
                fwrite(&d, 4, 1, out);
                fwrite(v, 4, dim, out);
                fprintf(ids, "%lld\n", (long long) b.ids[i]);
            } else {
                fprintf(out, "%lld,%u,\"{", (long long) b.ids[i], b.bucket);
                for (uint32_t j = 0; j < dim; j++) fprintf(out, j ? ",%.9g" : "%.9g", double(v[j]));
                fputs("}\"\n", out);
            }
        }
    }
    bool failed = ferror(out) || (ids && ferror(ids));
    if (out != stdout) failed |= fclose(out) != 0;
    if (ids && ids != stdout) failed |= fclose(ids) != 0;
    close(fd);
    if (failed) {
        fprintf(stderr, "drift-segment: could not write the dump: %s\n", strerror(errno));
        return 2;
    }
    return 0;
}

}  // namespace

int main(int argc, char **argv) {
    if (argc < 3) {
        fputs(kUsage, stderr);
        return 2;
    }
    std::string cmd = argv[1];
    const char *path = argv[2];
    try {
        if (cmd == "info" && argc == 3) return info(path);
        if (cmd == "verify" && argc == 3) return verify(path);
        if (cmd == "dump") {
            bool fvecs = false;
            const char *out = nullptr, *ids = nullptr;
            for (int i = 3; i < argc; i++) {
                std::string a = argv[i];
                if (a == "--format" && i + 1 < argc) {
                    std::string f = argv[++i];
                    if (f != "csv" && f != "fvecs") {
                        fprintf(stderr, "drift-segment: unknown format \"%s\" (csv or fvecs)\n", f.c_str());
                        return 2;
                    }
                    fvecs = f == "fvecs";
                } else if (a == "--ids" && i + 1 < argc) {
                    ids = argv[++i];
                } else if (a == "-o" && i + 1 < argc) {
                    out = argv[++i];
                } else {
                    fputs(kUsage, stderr);
                    return 2;
                }
            }
            return dump(path, fvecs, out, ids);
        }
    } catch (const drift::SegmentError &e) {
        fprintf(stderr, "drift-segment: \"%s\" is not a sound segment: %s\n", path, e.what());
        return 1;
    } catch (const std::exception &e) {
        fprintf(stderr, "drift-segment: %s\n", e.what());
        return 2;
    }
    fputs(kUsage, stderr);
    return 2;
}
