// Drift-aware routing: the order in which a scan probes buckets (bucket
// heat and density, drift.lambda and drift.tau) and the estimate of the
// recall a set of probed buckets gives (drift.target_recall). Pure
// functions; docs/routing.md gives the formulas and the reasoning.
#pragma once

#include "core.hpp"

namespace drift {

// Heat of a bucket in [0, 1]: the mean of its recent arrivals (temperature:
// decayed rows flushed in per member, capped at 1) and its share of recent
// scan hits (its hits over the most any bucket of the index has, in [0, 1]).
float bucket_heat(float temperature, float hit_share);

// Density of a bucket in (0, 1]: min(1, max(members, 1) / tau); 1 with tau <= 0.
float bucket_density(uint32_t members, float tau);

// Probe order score of a bucket (lower first): its centroid distance `dist`,
// moved back by (1 / density - 1) windows (a bucket of tau members or more
// not at all, one of tau / 4 three windows) and forward by lambda * heat
// windows, where `window` is the query's probe window (distance of the
// drift.probes-th nearest centroid, at least the second, minus that of the
// nearest).
float routing_score(float dist, float window, float heat, float density, float lambda);

// Fraction of the volume of a ball in `dim` dimensions that lies beyond a
// hyperplane at distance t * radius from its centre: 1/2 I_{1-t^2}((dim+1)/2, 1/2)
// for t in [0, 1), 0 from t = 1 on, 1/2 at t = 0.
double cap_fraction(double t, double dim);

// cap_fraction as a table for the dimension rounded to a whole number:
// kCapSteps + 1 values at t = i / kCapSteps, made on first use and kept
// (scans read it for many buckets per query).
constexpr int kCapSteps = 128;
const float *cap_table(double dim);

// cap_fraction(t, dim) read from cap_table(dim), linear between its points.
double cap_from_table(const float *table, double t);

// Local intrinsic dimension at a query (maximum-likelihood estimate of
// Levina and Bickel) from its n nearest neighbour distances d[0..n),
// ascending, in distance units: (n - 1) / sum_i log(d[n-1] / d[i]),
// clamped to [1, max_dim]; max_dim when the distances do not tell (n < 3,
// or all equal).
double local_dimension(const float *d, size_t n, double max_dim);

// The intrinsic dimension of a set of rows (n x dim, row-major): the median
// of local_dimension at up to 200 of them, each from its 20 nearest among
// up to 2,000 of them (both spread evenly over the n; L2); 0 for fewer
// than 22 rows.
double sample_dimension(const float *rows, size_t n, size_t dim);

// The dimension the recall estimate's geometry takes for data of local
// intrinsic dimension lid in `ambient` dimensions: min(ambient,
// kDimensionScale * lid). Rows near a low-dimensional surface spread
// along a boundary's normal less than a ball of dimension lid does, so a
// ball of that dimension overstates how much of the ball crosses it;
// kDimensionScale is calibrated on SIFT10K (docs/routing.md).
constexpr double kDimensionScale = 4.0;
double effective_dimension(double lid, double ambient);

// The recall of a set of probed buckets, estimated from the ball around
// the query that reaches its k-th nearest row so far (radius; the k nearest
// rows lie in it): each bucket other than the query's own (the nearest)
// takes the share f of the ball beyond the nearest point of its region
// (`gap`: the boundary between the query's bucket and this one, or the
// bucket's sphere, whichever is farther; cap_fraction), the caps taken as
// independent: the query's own bucket holds prod(1 - f) of the rows, and
// the rest is shared among the others in proportion to f. The estimate is
// the share of the probed buckets.
class RecallEstimate {
  public:
    RecallEstimate(double radius, double dim) : radius_(radius), table_(cap_table(dim)) {}
    // Adds the query's own bucket.
    void add_own(bool probed) { own_probed_ = probed; }
    // Adds another bucket at distance gap from the query.
    void add(double gap, bool probed);
    // The estimated recall.
    double value() const;

  private:
    double radius_;
    const float *table_;
    bool own_probed_ = false;
    double sum_ = 0, probed_ = 0;
};

}  // namespace drift
