// Bit-packing, the frame-of-reference integer codec, and float vectors coded
// with ALP, ALP_RD or raw. docs/segment-codecs.md is the byte-level spec;
// every constant and formula below that a decoder sees is defined there.
#include "alp.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <utility>

#include "bytes.hpp"

namespace drift {

namespace {

// The low w bits set (w 0..64).
constexpr uint64_t low_mask(unsigned w) { return w >= 64 ? ~uint64_t(0) : (uint64_t(1) << w) - 1; }

// Bits needed for x (0 for 0).
inline unsigned bit_width(uint64_t x) { return x ? 64 - unsigned(__builtin_clzll(x)) : 0; }

// --- Bit-unpacking. A block of 64 values of W bits is exactly W
// little-endian words, so whole blocks are unpacked with shifts fixed at
// compile time; the last n % 64 values go through a byte-wise loop.

// Value I of a block of W-bit values held in the words w.
template <unsigned W, size_t I>
inline uint64_t extract(const uint64_t *w) {
    constexpr size_t p = I * W, k = p / 64, off = p % 64;
    if constexpr (off + W > 64)
        return ((w[k] >> off) | (w[k + 1] << (64 - off))) & low_mask(W);
    else
        return (w[k] >> off) & low_mask(W);
}

// Unpacks one block of 64 values of W (1..64) bits.
template <unsigned W, size_t... I>
inline void unpack_block(const uint8_t *in, uint64_t *out, std::index_sequence<I...>) {
    uint64_t w[W];
    for (unsigned k = 0; k < W; ++k) w[k] = load64(in + 8 * k);
    ((out[I] = extract<W, I>(w)), ...);
}

// Unpacks `blocks` whole blocks of W-bit values.
template <unsigned W>
void unpack_blocks(const uint8_t *in, size_t blocks, uint64_t *out) {
    if constexpr (W == 0) {
        std::fill(out, out + 64 * blocks, uint64_t(0));
    } else {
        for (size_t b = 0; b < blocks; ++b) unpack_block<W>(in + 8 * W * b, out + 64 * b, std::make_index_sequence<64>());
    }
}

using UnpackFn = void (*)(const uint8_t *, size_t, uint64_t *);

// The block unpackers for widths 0..64.
template <size_t... W>
constexpr std::array<UnpackFn, 65> make_unpackers(std::index_sequence<W...>) {
    return {{&unpack_blocks<unsigned(W)>...}};
}

constexpr std::array<UnpackFn, 65> kUnpackers = make_unpackers(std::make_index_sequence<65>());

// Unpacks n (< 64) values from bitpack_bytes(n, width) bytes, reading none beyond.
void unpack_tail(const uint8_t *in, size_t n, unsigned width, uint64_t *v) {
    size_t bytes = bitpack_bytes(n, width);
    for (size_t i = 0; i < n; ++i) {
        size_t p = i * width, b = p / 8;
        unsigned s = unsigned(p % 8);
        uint64_t lo = 0;
        size_t m = std::min<size_t>(8, bytes - b);
        for (size_t j = 0; j < m; ++j) lo |= uint64_t(in[b + j]) << (8 * j);
        uint64_t x = lo >> s;
        if (s + width > 64) x |= uint64_t(in[b + 8]) << (64 - s);
        v[i] = x & low_mask(width);
    }
}

// --- Frame-of-reference blocks: width byte, int64 minimum, packed differences.

constexpr size_t kForHeader = 9;

// Writes a frame-of-reference header.
inline void put_for_header(uint8_t *p, unsigned width, int64_t min) {
    p[0] = uint8_t(width);
    store64(p + 1, uint64_t(min));
}

// Reads a frame-of-reference header of a block of n values and checks that
// all of it fits in avail bytes; returns the packed bytes that follow it.
size_t get_for_header(const uint8_t *in, size_t avail, size_t n, unsigned *width, uint64_t *min) {
    if (avail < kForHeader) throw Error("truncated integer block");
    *width = in[0];
    if (*width > 64) throw Error("bad integer bit width");
    *min = load64(in + 1);
    size_t packed = bitpack_bytes(n, *width);
    if (avail - kForHeader < packed) throw Error("truncated integer block");
    return packed;
}

// --- ALP. A value v is stored as the integer x = round(v * 10^e * 10^-f);
// it decodes as float(double(x) * 10^f * 10^-e), each product rounded to the
// nearest double. Values that do not come back bit for bit are exceptions.

constexpr unsigned kMaxExponent = 10;

// 10^k, exact in double.
constexpr double kPow10[kMaxExponent + 1] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10};

// The double nearest 10^-k.
constexpr double kNegPow10[kMaxExponent + 1] = {1e0,  1e-1, 1e-2, 1e-3, 1e-4, 1e-5,
                                                1e-6, 1e-7, 1e-8, 1e-9, 1e-10};

// ALP integers are below 2^51 in magnitude (larger ones are exceptions), so
// adding kRoundMagic rounds them to an integer, ties to even.
constexpr double kAlpLimit = 2251799813685248.0;     // 2^51
constexpr double kRoundMagic = 6755399441055744.0;   // 2^52 + 2^51
constexpr uint64_t kAlpMaxMin = uint64_t(1) << 52;   // |minimum| a decoder accepts
constexpr unsigned kAlpMaxWidth = 52;                // bit width a decoder accepts

// Bytes of one ALP exception (uint16 position, uint32 bits) and of one
// ALP_RD exception (uint16 position, uint16 left part).
constexpr size_t kAlpException = 6, kRdException = 4;

// Values of a vector the exponent search looks at.
constexpr size_t kAlpSample = 32;

// The float that ALP integer x decodes to under exponent e and factor f.
inline float alp_value(int64_t x, unsigned e, unsigned f) { return float(double(x) * kPow10[f] * kNegPow10[e]); }

// The ALP integer of v under (e, f) into *x; false if v must be an exception.
// Branch-free (a range failure computes with 0): exceptions come at random.
inline bool alp_int(float v, unsigned e, unsigned f, int64_t *x) {
    double d = double(v) * kPow10[e] * kNegPow10[f];
    bool in_range = std::fabs(d) < kAlpLimit;
    *x = int64_t(((in_range ? d : 0.0) + kRoundMagic) - kRoundMagic);
    return in_range & (float_bits(alp_value(*x, e, f)) == float_bits(v));
}

// A vector coded with ALP, before serialization.
struct AlpVector {
    unsigned e = 0, f = 0, width = 0;
    int64_t min = 0;
    size_t exceptions = 0;
    uint64_t diffs[kFloatVector];     // x - min, per value (0 at exceptions)
    uint16_t positions[kFloatVector];
    uint32_t raw[kFloatVector];

    // Encoded size in bytes, codec byte included.
    size_t bytes(size_t n) const { return 3 + kForHeader + bitpack_bytes(n, width) + 2 + kAlpException * exceptions; }
};

// Picks the exponent for v by the estimated size of an evenly spaced sample.
// The factor stays 0: the paper needs it for doubles, whose decode has no
// spare precision, but a float decoded through doubles has 29 bits to spare,
// and a full (e, f) search never picked f > 0 on real or synthetic data.
void alp_choose(const float *v, size_t n, AlpVector &a) {
    size_t ns = std::min(n, kAlpSample);
    float s[kAlpSample];
    for (size_t i = 0; i < ns; ++i) s[i] = v[i * n / ns];
    uint64_t best = ~uint64_t(0);
    for (unsigned e = 0; e <= kMaxExponent; ++e) {
        int64_t lo = INT64_MAX, hi = INT64_MIN, x;
        uint64_t exc_bits = 0;
        for (size_t i = 0; i < ns && exc_bits < best; ++i) {
            bool ok = alp_int(s[i], e, 0, &x);
            lo = ok ? std::min(lo, x) : lo;
            hi = ok ? std::max(hi, x) : hi;
            exc_bits += ok ? 0 : 8 * kAlpException;
        }
        if (exc_bits >= best) continue;
        uint64_t cost = exc_bits + (lo <= hi ? ns * bit_width(uint64_t(hi) - uint64_t(lo)) : 0);
        if (cost < best) {
            best = cost;
            a.e = e;
        }
        if (exc_bits == 0) break;  // a larger e only widens the integers
    }
}

// Codes v with ALP under the (e, f) alp_choose picked.
void alp_encode(const float *v, size_t n, AlpVector &a) {
    int64_t lo = INT64_MAX, hi = INT64_MIN, x;
    size_t exc = 0;
    for (size_t i = 0; i < n; ++i) {
        bool ok = alp_int(v[i], a.e, a.f, &x);
        lo = ok ? std::min(lo, x) : lo;
        hi = ok ? std::max(hi, x) : hi;
        a.diffs[i] = uint64_t(x);  // at an exception, replaced by the minimum below
        a.positions[exc] = uint16_t(i);
        a.raw[exc] = float_bits(v[i]);
        exc += !ok;
    }
    if (lo > hi) lo = hi = 0;  // all exceptions
    a.min = lo;
    a.width = bit_width(uint64_t(hi) - uint64_t(lo));
    a.exceptions = exc;
    for (size_t j = 0; j < exc; ++j) a.diffs[a.positions[j]] = uint64_t(lo);
    for (size_t i = 0; i < n; ++i) a.diffs[i] -= uint64_t(lo);
}

// Serializes an ALP vector at p (a.bytes(n) bytes).
void alp_write(const AlpVector &a, size_t n, uint8_t *p) {
    *p++ = uint8_t(FloatCodec::Alp);
    *p++ = uint8_t(a.e);
    *p++ = uint8_t(a.f);
    put_for_header(p, a.width, a.min);
    p += kForHeader;
    bitpack(a.diffs, n, a.width, p);
    p += bitpack_bytes(n, a.width);
    store16(p, uint16_t(a.exceptions));
    p += 2;
    for (size_t j = 0; j < a.exceptions; ++j, p += 2) store16(p, a.positions[j]);
    for (size_t j = 0; j < a.exceptions; ++j, p += 4) store32(p, a.raw[j]);
}

// --- ALP_RD. A value's 32 bits split into a left part (the high 32 - R
// bits, coded as an index into a dictionary of at most 8 entries) and a
// right part (the low R bits, packed as they are).

constexpr unsigned kRdMaxLeft = 16, kRdMaxDict = 8;

// Values of a vector the split search looks at.
constexpr size_t kRdSample = 64;

// Bits of a dictionary index for a dictionary of d entries.
inline unsigned rd_index_width(unsigned d) { return bit_width(d - 1); }

// A vector coded with ALP_RD, before serialization.
struct RdVector {
    unsigned right = 0, dict_size = 0;
    uint16_t dict[kRdMaxDict];
    size_t exceptions = 0;
    uint64_t index[kFloatVector];
    uint64_t rights[kFloatVector];
    uint16_t positions[kFloatVector];
    uint16_t lefts[kFloatVector];

    // Encoded size in bytes, codec byte included.
    size_t bytes(size_t n) const {
        return 3 + 2 * dict_size + bitpack_bytes(n, rd_index_width(dict_size)) + bitpack_bytes(n, right) + 2 +
               kRdException * exceptions;
    }
};

// The at most kRdMaxDict most frequent values of sorted[0..ns) shifted
// right by r, most frequent first (ties: smaller value first), and how often
// each occurs; returns how many.
size_t rd_top(const uint32_t *sorted, size_t ns, unsigned r, uint32_t *value, uint32_t *count) {
    size_t top = 0;
    for (size_t i = 0, j; i < ns; i = j) {
        uint32_t left = sorted[i] >> r;
        for (j = i + 1; j < ns && (sorted[j] >> r) == left; ++j) {
        }
        uint32_t c = uint32_t(j - i);
        size_t p = top;
        while (p > 0 && count[p - 1] < c) --p;
        if (p == kRdMaxDict) continue;
        for (size_t q = std::min<size_t>(top, kRdMaxDict - 1); q > p; --q) {
            value[q] = value[q - 1];
            count[q] = count[q - 1];
        }
        value[p] = left;
        count[p] = c;
        top = std::min<size_t>(top + 1, kRdMaxDict);
    }
    return top;
}

// Picks the split and dictionary of v by the estimated size on a sample, then codes v.
void rd_encode(const float *v, size_t n, RdVector &a) {
    size_t ns = std::min(n, kRdSample);
    uint32_t s[kRdSample], value[kRdMaxDict], count[kRdMaxDict];
    for (size_t i = 0; i < ns; ++i) s[i] = float_bits(v[i * n / ns]);
    std::sort(s, s + ns);
    // Sizes in bits, scaled by ns: n/ns * sample bits + dictionary bits.
    uint64_t best = ~uint64_t(0);
    for (unsigned left = 1; left <= kRdMaxLeft; ++left) {
        unsigned r = 32 - left;
        size_t top = rd_top(s, ns, r, value, count);
        size_t covered = 0;
        for (unsigned d = 1; d <= top; ++d) {
            covered += count[d - 1];
            uint64_t sample_bits = ns * (rd_index_width(d) + r) + (ns - covered) * 8 * kRdException;
            uint64_t cost = n * sample_bits + ns * 16 * d;
            if (cost < best) {
                best = cost;
                a.right = r;
                a.dict_size = d;
            }
        }
    }
    rd_top(s, ns, a.right, value, count);
    // The lookup scans all kRdMaxDict slots without branching; unused slots
    // hold a value no left part has.
    uint32_t slots[kRdMaxDict];
    for (unsigned d = 0; d < kRdMaxDict; ++d) {
        slots[d] = d < a.dict_size ? value[d] : 0x10000;
        if (d < a.dict_size) a.dict[d] = uint16_t(value[d]);
    }
    uint32_t rmask = uint32_t(low_mask(a.right));
    size_t exc = 0;
    for (size_t i = 0; i < n; ++i) {
        uint32_t b = float_bits(v[i]), left = b >> a.right;
        unsigned index = 0, found = 0;
        for (unsigned d = 0; d < kRdMaxDict; ++d) {
            index |= slots[d] == left ? d : 0;
            found |= slots[d] == left;
        }
        a.index[i] = index;
        a.rights[i] = b & rmask;
        a.positions[exc] = uint16_t(i);
        a.lefts[exc] = uint16_t(left);
        exc += !found;
    }
    a.exceptions = exc;
}

// Serializes an ALP_RD vector at p (a.bytes(n) bytes).
void rd_write(const RdVector &a, size_t n, uint8_t *p) {
    *p++ = uint8_t(FloatCodec::AlpRd);
    *p++ = uint8_t(a.right);
    *p++ = uint8_t(a.dict_size);
    for (unsigned d = 0; d < a.dict_size; ++d, p += 2) store16(p, a.dict[d]);
    unsigned iw = rd_index_width(a.dict_size);
    bitpack(a.index, n, iw, p);
    p += bitpack_bytes(n, iw);
    bitpack(a.rights, n, a.right, p);
    p += bitpack_bytes(n, a.right);
    store16(p, uint16_t(a.exceptions));
    p += 2;
    for (size_t j = 0; j < a.exceptions; ++j, p += 2) store16(p, a.positions[j]);
    for (size_t j = 0; j < a.exceptions; ++j, p += 2) store16(p, a.lefts[j]);
}

// Reads an exception count at in (from at most avail bytes) for a vector of
// n values, each exception taking `each` bytes after the count; returns it.
size_t get_exception_count(const uint8_t *in, size_t avail, size_t n, size_t each) {
    if (avail < 2) throw Error("truncated exceptions");
    size_t count = load16(in);
    if (count > n) throw Error("too many exceptions");
    if (avail - 2 < count * each) throw Error("truncated exceptions");
    return count;
}

// Reads exception j's position (count positions at in), checking that
// positions rise strictly and stay below n.
inline size_t get_position(const uint8_t *in, size_t j, size_t n) {
    size_t pos = load16(in + 2 * j);
    if (pos >= n || (j > 0 && pos <= load16(in + 2 * (j - 1)))) throw Error("bad exception position");
    return pos;
}

// Decodes an ALP vector (after the codec byte); returns the bytes read.
size_t alp_decode(const uint8_t *in, size_t avail, size_t n, float *v) {
    if (avail < 2) throw Error("truncated ALP header");
    unsigned e = in[0], f = in[1];
    if (e > kMaxExponent || f > e) throw Error("bad ALP exponent or factor");
    const uint8_t *p = in + 2;
    unsigned width;
    uint64_t umin;
    size_t packed = get_for_header(p, avail - 2, n, &width, &umin);
    if (width > kAlpMaxWidth || umin + kAlpMaxMin > 2 * kAlpMaxMin) throw Error("bad ALP integer range");
    p += kForHeader;
    uint64_t x[kFloatVector];
    bitunpack(p, n, width, x);
    p += packed;
    // |min| <= 2^52 and width <= 52 keep every integer below 2^53, exact in a
    // double, and every product finite as a float.
    double fe = kPow10[f], ie = kNegPow10[e];
    for (size_t i = 0; i < n; ++i) v[i] = float(double(int64_t(umin + x[i])) * fe * ie);
    size_t exc = get_exception_count(p, avail - size_t(p - in), n, kAlpException);
    const uint8_t *pos = p + 2, *raw = pos + 2 * exc;
    for (size_t j = 0; j < exc; ++j) v[get_position(pos, j, n)] = bits_float(load32(raw + 4 * j));
    return size_t(raw + 4 * exc - in);
}

// Decodes an ALP_RD vector (after the codec byte); returns the bytes read.
size_t rd_decode(const uint8_t *in, size_t avail, size_t n, float *v) {
    if (avail < 2) throw Error("truncated ALP_RD header");
    unsigned r = in[0], d = in[1];
    if (r < 32 - kRdMaxLeft || r > 31) throw Error("bad ALP_RD split");
    if (d < 1 || d > kRdMaxDict) throw Error("bad ALP_RD dictionary size");
    unsigned iw = rd_index_width(d);
    size_t index_bytes = bitpack_bytes(n, iw), right_bytes = bitpack_bytes(n, r);
    if (avail - 2 < 2 * d + index_bytes + right_bytes) throw Error("truncated ALP_RD vector");
    const uint8_t *p = in + 2;
    uint32_t dict[kRdMaxDict];
    for (unsigned j = 0; j < d; ++j, p += 2) {
        dict[j] = load16(p);
        if (dict[j] >> (32 - r)) throw Error("bad ALP_RD dictionary entry");
    }
    uint64_t index[kFloatVector], right[kFloatVector];
    bitunpack(p, n, iw, index);
    p += index_bytes;
    bitunpack(p, n, r, right);
    p += right_bytes;
    if (d & (d - 1)) {
        for (size_t i = 0; i < n; ++i)
            if (index[i] >= d) throw Error("bad ALP_RD dictionary index");
    }
    for (size_t i = 0; i < n; ++i) v[i] = bits_float((dict[index[i]] << r) | uint32_t(right[i]));
    size_t exc = get_exception_count(p, avail - size_t(p - in), n, kRdException);
    const uint8_t *pos = p + 2, *left = pos + 2 * exc;
    for (size_t j = 0; j < exc; ++j) {
        size_t i = get_position(pos, j, n);
        uint32_t l = load16(left + 2 * j);
        if (l >> (32 - r)) throw Error("bad ALP_RD exception");
        v[i] = bits_float((l << r) | uint32_t(right[i]));
    }
    return size_t(left + 2 * exc - in);
}

}  // namespace

size_t bitpack_bytes(size_t n, unsigned width) {
    if (width > 64) throw Error("bit width above 64");
    return n / 8 * width + (n % 8 * width + 7) / 8;
}

void bitpack(const uint64_t *v, size_t n, unsigned width, uint8_t *out) {
    if (width > 64) throw Error("bit width above 64");
    uint64_t acc = 0;  // the stream's pending bits, `fill` (< 64) of them
    unsigned fill = 0;
    for (size_t i = 0; i < n; ++i) {
        uint64_t x = v[i] & low_mask(width);
        acc |= x << fill;
        if (fill + width >= 64) {
            store64(out, acc);
            out += 8;
            acc = fill ? x >> (64 - fill) : 0;
            fill = fill + width - 64;
        } else {
            fill += width;
        }
    }
    for (; fill > 0; fill -= std::min(fill, 8u)) {
        *out++ = uint8_t(acc);
        acc >>= 8;
    }
}

void bitunpack(const uint8_t *in, size_t n, unsigned width, uint64_t *v) {
    if (width > 64) throw Error("bit width above 64");
    size_t blocks = n / 64;
    kUnpackers[width](in, blocks, v);
    unpack_tail(in + 8 * width * blocks, n % 64, width, v + 64 * blocks);
}

void int_encode(const int64_t *v, size_t n, std::vector<uint8_t> &out) {
    int64_t lo = n ? v[0] : 0, hi = lo;
    for (size_t i = 1; i < n; ++i) {
        lo = std::min(lo, v[i]);
        hi = std::max(hi, v[i]);
    }
    unsigned width = bit_width(uint64_t(hi) - uint64_t(lo));
    size_t at = out.size();
    out.resize(at + kForHeader + bitpack_bytes(n, width));
    uint8_t *p = out.data() + at;
    put_for_header(p, width, lo);
    p += kForHeader;
    // Chunks of 1024 values end on byte boundaries.
    uint64_t diffs[1024];
    for (size_t b = 0; b < n; b += 1024) {
        size_t m = std::min<size_t>(1024, n - b);
        for (size_t i = 0; i < m; ++i) diffs[i] = uint64_t(v[b + i]) - uint64_t(lo);
        bitpack(diffs, m, width, p);
        p += bitpack_bytes(m, width);
    }
}

size_t int_decode(const uint8_t *in, size_t avail, size_t n, int64_t *v) {
    unsigned width;
    uint64_t umin;
    size_t packed = get_for_header(in, avail, n, &width, &umin);
    uint64_t *u = reinterpret_cast<uint64_t *>(v);  // (int64_t may alias uint64_t)
    bitunpack(in + kForHeader, n, width, u);
    for (size_t i = 0; i < n; ++i) v[i] = int64_t(u[i] + umin);
    return kForHeader + packed;
}

FloatCodec float_encode(const float *v, size_t n, std::vector<uint8_t> &out) {
    if (n == 0 || n > kFloatVector) throw Error("float vector size out of range");
    size_t raw_bytes = 1 + 4 * n;
    AlpVector alp;
    alp_choose(v, n, alp);
    alp_encode(v, n, alp);
    size_t alp_bytes = alp.bytes(n);
    // ALP_RD takes at least 2 bytes a value (right parts of 16 bits or more).
    size_t rd_floor = 7 + bitpack_bytes(n, 32 - kRdMaxLeft);
    RdVector rd;
    size_t rd_bytes = ~size_t(0);
    if (alp_bytes > rd_floor) {
        rd_encode(v, n, rd);
        rd_bytes = rd.bytes(n);
    }
    size_t at = out.size();
    if (raw_bytes <= alp_bytes && raw_bytes <= rd_bytes) {
        out.resize(at + raw_bytes);
        uint8_t *p = out.data() + at;
        *p++ = uint8_t(FloatCodec::Raw);
        for (size_t i = 0; i < n; ++i, p += 4) store32(p, float_bits(v[i]));
        return FloatCodec::Raw;
    }
    if (alp_bytes <= rd_bytes) {
        out.resize(at + alp_bytes);
        alp_write(alp, n, out.data() + at);
        return FloatCodec::Alp;
    }
    out.resize(at + rd_bytes);
    rd_write(rd, n, out.data() + at);
    return FloatCodec::AlpRd;
}

size_t float_decode(const uint8_t *in, size_t avail, size_t n, float *v) {
    if (n == 0 || n > kFloatVector) throw Error("float vector size out of range");
    if (avail < 1) throw Error("truncated float vector");
    switch (in[0]) {
        case uint8_t(FloatCodec::Raw):
            if (avail - 1 < 4 * n) throw Error("truncated raw float vector");
            for (size_t i = 0; i < n; ++i) v[i] = bits_float(load32(in + 1 + 4 * i));
            return 1 + 4 * n;
        case uint8_t(FloatCodec::Alp):
            return 1 + alp_decode(in + 1, avail - 1, n, v);
        case uint8_t(FloatCodec::AlpRd):
            return 1 + rd_decode(in + 1, avail - 1, n, v);
        default:
            throw Error("unknown float codec");
    }
}

}  // namespace drift
