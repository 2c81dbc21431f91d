// Code kinds: the parts of the interface that are not one-line dispatches.
#include "codes.hpp"

#include "maintenance.hpp"

namespace drift {

// Widths from which RaBitQ codes are the default.
static const size_t kRabitqDefaultWidth = 512;

CodeKind default_code_kind(size_t dim) { return dim >= kRabitqDefaultWidth ? CodeKind::RaBitQ : CodeKind::Sq8; }

bool quantizer_misfits(const Quantizer &q, const float *rows, size_t n) {
    return q.kind == CodeKind::Sq8 && rows_out_of_range(q.a, q.b, rows, n, q.dim);
}

void code_prepare(const Quantizer &q, Metric m, const float *query, CodeQuery &t, float *mem) {
    t.kind = q.kind;
    if (q.kind == CodeKind::RaBitQ) {
        t.rabitq.rq = mem;
        t.rabitq.v = mem + rabitq_padded(q.dim);
        rabitq_prepare(q.dim, m, query, t.rabitq);
    } else {
        t.sq8.a = mem;
        t.sq8.b = mem + q.dim;
        sq8_prepare(Sq8{q.dim, q.a, q.b}, m, query, t.sq8);
    }
}

}  // namespace drift
