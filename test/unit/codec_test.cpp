// Unit tests of the segment codecs: bit-packing, the integer codec, float
// vectors (ALP, ALP_RD, raw) against a bit-at-a-time decoder written from
// docs/segment-codecs.md, malformed input, and the Bloom filter.
#include <gtest/gtest.h>

#include <cfloat>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "core/alp.hpp"
#include "core/bloom.hpp"

#define XXH_INLINE_ALL
#include <xxhash.h>

namespace {

using drift::FloatCodec;

// The bit pattern of f.
uint32_t bits_of(float f) {
    uint32_t b;
    std::memcpy(&b, &f, 4);
    return b;
}

// The float with bit pattern b.
float float_of(uint32_t b) {
    float f;
    std::memcpy(&f, &b, 4);
    return f;
}

// Uniform in [lo, hi) from 24 random bits.
float uniform(std::mt19937_64 &g, float lo, float hi) { return lo + float(g() >> 40) * 0x1p-24f * (hi - lo); }

// --- A decoder written from docs/segment-codecs.md alone, bit by bit, for
// valid input only: the codec must agree with it.

// Reads `width` bits LSB-first starting at bit `bit` of p.
uint64_t spec_bits(const uint8_t *p, size_t bit, unsigned width) {
    uint64_t x = 0;
    for (unsigned j = 0; j < width; ++j, ++bit) x |= uint64_t((p[bit / 8] >> (bit % 8)) & 1) << j;
    return x;
}

// Reads a little-endian unsigned integer of `bytes` bytes.
uint64_t spec_le(const uint8_t *p, unsigned bytes) {
    uint64_t x = 0;
    for (unsigned j = 0; j < bytes; ++j) x |= uint64_t(p[j]) << (8 * j);
    return x;
}

// The spec's decode of an encoded float vector of n values; *used gets its size.
std::vector<uint32_t> spec_decode(const uint8_t *p, size_t n, size_t *used) {
    // The doc's tables, as hex literals.
    static const double pow10[11] = {0x1p+0,      0x1.4p+3,    0x1.9p+6,     0x1.f4p+9,    0x1.388p+13,  0x1.86ap+16,
                                     0x1.e848p+19, 0x1.312dp+23, 0x1.7d784p+26, 0x1.dcd65p+29, 0x1.2a05f2p+33};
    static const double negpow10[11] = {0x1p+0,
                                        0x1.999999999999ap-4,
                                        0x1.47ae147ae147bp-7,
                                        0x1.0624dd2f1a9fcp-10,
                                        0x1.a36e2eb1c432dp-14,
                                        0x1.4f8b588e368f1p-17,
                                        0x1.0c6f7a0b5ed8dp-20,
                                        0x1.ad7f29abcaf48p-24,
                                        0x1.5798ee2308c3ap-27,
                                        0x1.12e0be826d695p-30,
                                        0x1.b7cdfd9d7bdbbp-34};
    std::vector<uint32_t> out(n);
    size_t at = 1;
    if (p[0] == 0) {
        for (size_t i = 0; i < n; ++i) out[i] = uint32_t(spec_le(p + 1 + 4 * i, 4));
        at += 4 * n;
    } else if (p[0] == 1) {
        unsigned e = p[1], f = p[2], w = p[3];
        int64_t min = int64_t(spec_le(p + 4, 8));
        at = 12;
        for (size_t i = 0; i < n; ++i) {
            int64_t x = min + int64_t(spec_bits(p + at, i * w, w));
            out[i] = bits_of(float(double(x) * pow10[f] * negpow10[e]));
        }
        at += (n * w + 7) / 8;
        size_t exc = spec_le(p + at, 2);
        for (size_t j = 0; j < exc; ++j)
            out[spec_le(p + at + 2 + 2 * j, 2)] = uint32_t(spec_le(p + at + 2 + 2 * exc + 4 * j, 4));
        at += 2 + 6 * exc;
    } else {
        unsigned r = p[1], d = p[2], iw = 0;
        while ((1u << iw) < d) ++iw;
        at = 3 + 2 * d;
        const uint8_t *index = p + at, *right = index + (n * iw + 7) / 8;
        for (size_t i = 0; i < n; ++i) {
            uint64_t left = spec_le(p + 3 + 2 * spec_bits(index, i * iw, iw), 2);
            out[i] = uint32_t(left << r | spec_bits(right, i * r, r));
        }
        at = size_t(right - p) + (n * r + 7) / 8;
        size_t exc = spec_le(p + at, 2);
        for (size_t j = 0; j < exc; ++j) {
            size_t pos = spec_le(p + at + 2 + 2 * j, 2);
            out[pos] = uint32_t(spec_le(p + at + 2 + 2 * exc + 2 * j, 2) << r | (out[pos] & ((1u << r) - 1)));
        }
        at += 2 + 4 * exc;
    }
    *used = at;
    return out;
}

// Encodes v after a prefix, checks that both decoders return every bit
// pattern and the size, and returns the encoding (without the prefix).
std::vector<uint8_t> round_trip(const std::vector<float> &v, FloatCodec *codec = nullptr) {
    std::vector<uint8_t> out = {0xEE, 0xEE, 0xEE};
    FloatCodec c = drift::float_encode(v.data(), v.size(), out);
    EXPECT_EQ(out[3], uint8_t(c));
    if (codec) *codec = c;
    std::vector<uint8_t> enc(out.begin() + 3, out.end());
    std::vector<float> back(v.size() + 1, 12345.0f);
    EXPECT_EQ(drift::float_decode(enc.data(), enc.size(), v.size(), back.data()), enc.size());
    EXPECT_EQ(back[v.size()], 12345.0f);  // nothing written beyond n
    size_t used = 0;
    std::vector<uint32_t> spec = spec_decode(enc.data(), v.size(), &used);
    EXPECT_EQ(used, enc.size());
    for (size_t i = 0; i < v.size(); ++i) {
        EXPECT_EQ(bits_of(back[i]), bits_of(v[i])) << "value " << i;
        EXPECT_EQ(spec[i], bits_of(v[i])) << "spec decoder, value " << i;
    }
    return enc;
}

// Values ALP codes exactly: integers, and decimals with 1..4 digits.
std::vector<float> decimals(std::mt19937_64 &g, size_t n, int digits, int range) {
    std::vector<float> v(n);
    double scale = std::pow(10.0, digits);
    for (auto &x : v) x = float(double(int64_t(g() % uint64_t(2 * range * scale + 1)) - int64_t(range * scale)) / scale);
    return v;
}

// Bit patterns no ALP integer produces: zeros, subnormals, extremes, NaNs, infinities.
std::vector<float> edge_values() {
    std::vector<float> v = {-0.0f,
                            0.0f,
                            std::numeric_limits<float>::denorm_min(),
                            -std::numeric_limits<float>::denorm_min(),
                            float_of(0x007fffff),  // largest subnormal
                            FLT_MIN,
                            -FLT_MIN,
                            FLT_MAX,
                            -FLT_MAX,
                            1e30f,
                            -3e38f,
                            1e-30f,
                            float_of(0x7fc00000),  // quiet NaN
                            float_of(0x7fc00001),  // quiet NaN with payload
                            float_of(0xffbfffff),  // negative NaN, full payload
                            float_of(0x7f800001),  // signaling NaN
                            INFINITY,
                            -INFINITY};
    return v;
}

TEST(Bitpack, RoundTripEveryWidth) {
    std::mt19937_64 g(1);
    for (unsigned w = 0; w <= 64; ++w) {
        for (size_t n : {0, 1, 3, 7, 9, 63, 64, 65, 127, 129, 333, 1023, 1025}) {
            SCOPED_TRACE("width " + std::to_string(w) + " n " + std::to_string(n));
            std::vector<uint64_t> v(n), back(n, 7);
            for (auto &x : v) x = g();  // high bits beyond the width are ignored
            size_t bytes = drift::bitpack_bytes(n, w);
            ASSERT_EQ(bytes, (n * w + 7) / 8);
            std::vector<uint8_t> buf(bytes + 8, 0xAB);
            drift::bitpack(v.data(), n, w, buf.data());
            for (size_t i = bytes; i < buf.size(); ++i) ASSERT_EQ(buf[i], 0xAB);
            drift::bitunpack(buf.data(), n, w, back.data());
            uint64_t mask = w == 64 ? ~uint64_t(0) : (uint64_t(1) << w) - 1;
            for (size_t i = 0; i < n; ++i) {
                ASSERT_EQ(back[i], v[i] & mask) << "value " << i;
                ASSERT_EQ(spec_bits(buf.data(), i * w, w), v[i] & mask) << "value " << i;
            }
            // The padding bits of the last byte are zero.
            if (n * w % 8) {
                ASSERT_EQ(buf[bytes - 1] >> (n * w % 8), 0);
            }
        }
    }
}

TEST(Bitpack, LsbFirstLittleEndian) {
    uint64_t v[5] = {1, 2, 3, 4, 5};
    uint8_t out[2];
    drift::bitpack(v, 5, 3, out);
    EXPECT_EQ(out[0], 0xD1);  // 1 | 2 << 3 | (3 & 3) << 6
    EXPECT_EQ(out[1], 0x58);  // 3 >> 2 | 4 << 1 | 5 << 4
    uint64_t wide = 0x0102030405060708ULL;
    uint8_t w8[8];
    drift::bitpack(&wide, 1, 64, w8);
    for (int i = 0; i < 8; ++i) EXPECT_EQ(w8[i], 8 - i);
}

TEST(Bitpack, RejectsWidthAbove64) {
    uint64_t v = 0;
    uint8_t buf[16];
    EXPECT_THROW(drift::bitpack_bytes(1, 65), drift::Error);
    EXPECT_THROW(drift::bitpack(&v, 1, 65, buf), drift::Error);
    EXPECT_THROW(drift::bitunpack(buf, 1, 65, &v), drift::Error);
}

TEST(CodecInt, RoundTrips) {
    std::mt19937_64 g(2);
    const int64_t lo = INT64_MIN, hi = INT64_MAX;
    std::vector<std::vector<int64_t>> cases = {
        {},
        {42},
        {-5, -5, -5},
        {lo, hi},
        {hi, lo, 0, -1, 1, hi, lo},
        {lo, lo + 1, lo + 2},
        {hi - 7, hi},
        {1000, 1003, 1001, 1002},
    };
    std::vector<int64_t> big(3000), wide(1500);
    for (auto &x : big) x = int64_t(g() % 100000) - 50000;
    for (auto &x : wide) x = int64_t(g());
    cases.push_back(big);
    cases.push_back(wide);
    for (const auto &v : cases) {
        std::vector<uint8_t> out = {9};
        drift::int_encode(v.data(), v.size(), out);
        std::vector<int64_t> back(v.size() + 1, 77);
        EXPECT_EQ(drift::int_decode(out.data() + 1, out.size() - 1, v.size(), back.data()), out.size() - 1);
        for (size_t i = 0; i < v.size(); ++i) EXPECT_EQ(back[i], v[i]);
        EXPECT_EQ(back[v.size()], 77);
    }
}

TEST(CodecInt, LayoutAndSize) {
    std::vector<int64_t> v = {-3, 0, 4};  // width 3, minimum -3
    std::vector<uint8_t> out;
    drift::int_encode(v.data(), v.size(), out);
    ASSERT_EQ(out.size(), 9u + 2u);
    EXPECT_EQ(out[0], 3);
    for (int i = 0; i < 8; ++i) EXPECT_EQ(out[1 + i], i ? 0xFF : 0xFD);
    EXPECT_EQ(spec_bits(&out[9], 0, 3), 0u);
    EXPECT_EQ(spec_bits(&out[9], 3, 3), 3u);
    EXPECT_EQ(spec_bits(&out[9], 6, 3), 7u);
    std::vector<int64_t> same(1000, 123456789);
    out.clear();
    drift::int_encode(same.data(), same.size(), out);
    EXPECT_EQ(out.size(), 9u);  // width 0: the header alone
}

TEST(CodecInt, MalformedThrows) {
    std::vector<int64_t> v = {5, -9, 700, 3};
    std::vector<uint8_t> out;
    drift::int_encode(v.data(), v.size(), out);
    int64_t back[4];
    for (size_t len = 0; len < out.size(); ++len)
        EXPECT_THROW(drift::int_decode(out.data(), len, v.size(), back), drift::Error) << len;
    out[0] = 65;
    EXPECT_THROW(drift::int_decode(out.data(), out.size(), v.size(), back), drift::Error);
}

TEST(CodecFloat, IntegersPickAlpAtAboutOneByte) {
    std::mt19937_64 g(3);
    std::vector<float> v(1024);
    for (auto &x : v) x = float(g() % 256);
    FloatCodec c;
    auto enc = round_trip(v, &c);
    EXPECT_EQ(c, FloatCodec::Alp);
    EXPECT_LE(enc.size(), 1024u + 16u);
    EXPECT_EQ(enc[1], 0);  // e = 0
    EXPECT_EQ(enc[2], 0);  // f = 0
    EXPECT_EQ(enc[3], 8);  // 8-bit integers
}

TEST(CodecFloat, DecimalsPickAlp) {
    std::mt19937_64 g(4);
    for (int digits = 1; digits <= 4; ++digits) {
        SCOPED_TRACE("digits " + std::to_string(digits));
        // 2 * 10^4 steps in the range: 15-bit integers.
        auto v = decimals(g, 1024, digits, int(std::pow(10.0, 4 - digits)));
        FloatCodec c;
        auto enc = round_trip(v, &c);
        EXPECT_EQ(c, FloatCodec::Alp);
        EXPECT_EQ(enc[1], digits);
        EXPECT_LE(enc.size(), 1024u * 15 / 8 + 16 + 6 * 8);  // a few exceptions at most
    }
}

TEST(CodecFloat, UniformPicksAlpRdBelowRaw) {
    std::mt19937_64 g(5);
    std::vector<float> v(1024);
    for (auto &x : v) x = uniform(g, -1, 1);
    FloatCodec c;
    auto enc = round_trip(v, &c);
    EXPECT_EQ(c, FloatCodec::AlpRd);
    EXPECT_LT(enc.size(), 1024u * 29 / 8);  // raw would be 32 bits a value
}

TEST(CodecFloat, GaussianBelowRaw) {
    std::mt19937_64 g(6);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::vector<float> v(1024);
    for (auto &x : v) x = normal(g);
    FloatCodec c;
    auto enc = round_trip(v, &c);
    EXPECT_EQ(c, FloatCodec::AlpRd);
    EXPECT_LT(enc.size(), 1024u * 30 / 8);
}

TEST(CodecFloat, RandomBitsPickRaw) {
    std::mt19937_64 g(7);
    std::vector<float> v(1000);
    for (auto &x : v) x = float_of(uint32_t(g()));
    FloatCodec c;
    auto enc = round_trip(v, &c);
    EXPECT_EQ(c, FloatCodec::Raw);
    ASSERT_EQ(enc.size(), 1 + 4 * v.size());
    for (size_t i = 0; i < v.size(); ++i) EXPECT_EQ(spec_le(&enc[1 + 4 * i], 4), bits_of(v[i]));
}

TEST(CodecFloat, EdgeValuesBecomeAlpExceptions) {
    std::mt19937_64 g(8);
    auto v = decimals(g, 1024, 2, 100);
    auto edges = edge_values();
    for (size_t j = 0; j < edges.size(); ++j) v[17 + 50 * j] = edges[j];
    FloatCodec c;
    auto enc = round_trip(v, &c);
    EXPECT_EQ(c, FloatCodec::Alp);
    EXPECT_LE(enc.size(), 1024u * 15 / 8 + 16 + 6 * edges.size());
}

TEST(CodecFloat, OnlyEdgeValues) {
    auto edges = edge_values();
    round_trip(edges);
    std::vector<float> zeros(1024, -0.0f), nans(1024, float_of(0x7fc12345)), inf(5, INFINITY);
    FloatCodec c;
    EXPECT_LE(round_trip(zeros, &c).size(), 2 * zeros.size() + 16);
    EXPECT_EQ(c, FloatCodec::AlpRd);  // one left part, 16-bit right parts of zeros
    round_trip(nans);
    round_trip(inf);
    std::vector<float> subnormal(700);
    for (size_t i = 0; i < subnormal.size(); ++i) subnormal[i] = float_of(uint32_t(i * 977));
    round_trip(subnormal);
}

TEST(CodecFloat, AlpIntegerLimits) {
    // Around 2^51, where ALP integers stop; big integral floats; tiny decimals.
    std::vector<float> v = {0x1p50f, -0x1p50f, 0x1p51f, -0x1p51f, 0x1p52f, 3e15f, -3e15f, 0x1p36f, 1e-10f, 12345678.0f, 0.5f};
    for (size_t rep = 0; rep < 50; ++rep) v.push_back(float(rep) * 0.25f);
    round_trip(v);
}

TEST(CodecFloat, ConstantVectorIsTiny) {
    std::vector<float> v(1024, 3.25f);
    FloatCodec c;
    auto enc = round_trip(v, &c);
    EXPECT_EQ(c, FloatCodec::Alp);
    EXPECT_EQ(enc.size(), 1u + 2 + 9 + 2);  // width 0, no exceptions
}

TEST(CodecFloat, EveryLength) {
    std::mt19937_64 g(9);
    for (size_t n = 1; n <= drift::kFloatVector; n += (n < 70 ? 1 : 97)) {
        SCOPED_TRACE("n " + std::to_string(n));
        std::vector<float> a(n), b(n), c(n);
        for (size_t i = 0; i < n; ++i) {
            a[i] = float(g() % 1000) / 10.0f;
            b[i] = uniform(g, -1, 1);
            c[i] = float_of(uint32_t(g()));
        }
        round_trip(a);
        round_trip(b);
        round_trip(c);
    }
    round_trip({-0.0f});
    round_trip({float_of(0x7fc00001)});
    round_trip({1.5f});
    round_trip(std::vector<float>(drift::kFloatVector, 1.0f));
}

TEST(CodecFloat, RejectsBadLengths) {
    std::vector<float> v(drift::kFloatVector + 1, 1.0f);
    std::vector<uint8_t> out;
    EXPECT_THROW(drift::float_encode(v.data(), 0, out), drift::Error);
    EXPECT_THROW(drift::float_encode(v.data(), v.size(), out), drift::Error);
    drift::float_encode(v.data(), 4, out);
    EXPECT_THROW(drift::float_decode(out.data(), out.size(), 0, v.data()), drift::Error);
    EXPECT_THROW(drift::float_decode(out.data(), out.size(), v.size(), v.data()), drift::Error);
}

// Encodings of every codec, with exceptions, for the malformed-input tests.
std::vector<std::pair<std::vector<float>, std::vector<uint8_t>>> sample_encodings() {
    std::mt19937_64 g(10);
    std::vector<std::vector<float>> inputs;
    auto alp = decimals(g, 300, 2, 50);
    alp[3] = -0.0f;
    alp[200] = float_of(0x7fc00001);
    inputs.push_back(alp);
    std::vector<float> rd(257), raw(40);
    for (auto &x : rd) x = uniform(g, -1, 1);
    rd[5] = 1e30f;  // a left part outside the dictionary
    rd[100] = -1e-30f;
    for (auto &x : raw) x = float_of(uint32_t(g()));
    inputs.push_back(rd);
    inputs.push_back(raw);
    inputs.push_back({7.0f});
    std::vector<std::pair<std::vector<float>, std::vector<uint8_t>>> out;
    for (auto &v : inputs) {
        std::vector<uint8_t> enc;
        drift::float_encode(v.data(), v.size(), enc);
        out.emplace_back(v, enc);
    }
    return out;
}

TEST(CodecFloat, EveryTruncationThrows) {
    for (auto &[v, enc] : sample_encodings()) {
        SCOPED_TRACE("codec " + std::to_string(enc[0]));
        std::vector<float> back(v.size());
        for (size_t len = 0; len < enc.size(); ++len) {
            // A copy of exactly len bytes, so a read beyond it is an ASan error.
            std::vector<uint8_t> cut(enc.begin(), enc.begin() + len);
            EXPECT_THROW(drift::float_decode(cut.data(), len, v.size(), back.data()), drift::Error) << len;
        }
    }
}

TEST(CodecFloat, ByteFlipsThrowOrDecode) {
    std::mt19937_64 g(11);
    for (auto &[v, enc] : sample_encodings()) {
        std::vector<float> back(v.size());
        for (int trial = 0; trial < 4000; ++trial) {
            std::vector<uint8_t> bad = enc;
            int flips = 1 + int(g() % 3);
            for (int k = 0; k < flips; ++k) bad[g() % bad.size()] ^= uint8_t(1 + g() % 255);
            if (trial % 2) bad[g() % std::min<size_t>(bad.size(), 16)] = uint8_t(g());  // headers more often
            try {
                EXPECT_LE(drift::float_decode(bad.data(), bad.size(), v.size(), back.data()), bad.size());
            } catch (const drift::Error &) {
            }
        }
    }
}

// Decodes enc (n values), expecting drift::Error.
void expect_rejected(const std::vector<uint8_t> &enc, size_t n) {
    std::vector<float> back(n);
    EXPECT_THROW(drift::float_decode(enc.data(), enc.size(), n, back.data()), drift::Error);
}

// Appends the little-endian bytes of x.
void put_le(std::vector<uint8_t> &b, uint64_t x, unsigned bytes) {
    for (unsigned j = 0; j < bytes; ++j) b.push_back(uint8_t(x >> (8 * j)));
}

TEST(CodecFloat, HandBuiltAlp) {
    // e = 2, f = 0, integers {123, -45}: minimum -45, differences {168, 0} in 8 bits.
    std::vector<uint8_t> enc = {1, 2, 0, 8};
    put_le(enc, uint64_t(int64_t(-45)), 8);
    enc.push_back(168);
    enc.push_back(0);
    put_le(enc, 1, 2);           // one exception
    put_le(enc, 1, 2);           // at position 1
    put_le(enc, 0x80000000, 4);  // -0.0
    float back[2];
    ASSERT_EQ(drift::float_decode(enc.data(), enc.size(), 2, back), enc.size());
    EXPECT_EQ(bits_of(back[0]), bits_of(1.23f));
    EXPECT_EQ(bits_of(back[1]), 0x80000000u);
    // e = 3, f = 1: 123 * 10 * 10^-3.
    enc[1] = 3;
    enc[2] = 1;
    ASSERT_EQ(drift::float_decode(enc.data(), enc.size(), 2, back), enc.size());
    EXPECT_EQ(bits_of(back[0]), bits_of(1.23f));
}

TEST(CodecFloat, HandBuiltAlpRd) {
    // Right parts of 20 bits, dictionary {0x3f8, 0xbfc} (1.0's and -1.5's high bits), 1-bit indices.
    std::vector<uint8_t> enc = {2, 20, 2};
    put_le(enc, 0x3f8, 2);
    put_le(enc, 0xbfc, 2);
    enc.push_back(0b010);  // indices 0, 1, 0
    std::vector<uint64_t> rights = {0, 0, 0x12345};
    uint8_t packed[8];
    drift::bitpack(rights.data(), 3, 20, packed);
    enc.insert(enc.end(), packed, packed + 8);  // ceil(60 / 8) = 8 bytes
    put_le(enc, 1, 2);
    put_le(enc, 2, 2);      // position 2
    put_le(enc, 0x7f8, 2);  // left part 0x7f8: +inf's high bits
    float back[3];
    ASSERT_EQ(drift::float_decode(enc.data(), enc.size(), 3, back), enc.size());
    EXPECT_EQ(back[0], 1.0f);
    EXPECT_EQ(back[1], -1.5f);
    EXPECT_EQ(bits_of(back[2]), 0x7f812345u);  // a NaN
}

TEST(CodecFloat, MalformedFieldsThrow) {
    std::mt19937_64 g(12);
    auto alp_v = decimals(g, 100, 1, 10);
    alp_v[10] = -0.0f;
    alp_v[20] = -0.0f;
    std::vector<uint8_t> alp;
    ASSERT_EQ(drift::float_encode(alp_v.data(), 100, alp), FloatCodec::Alp);
    size_t exc_at = 12 + drift::bitpack_bytes(100, alp[3]);
    ASSERT_EQ(spec_le(&alp[exc_at], 2), 2u);
    auto bad = alp;
    bad[0] = 3;  // unknown codec
    expect_rejected(bad, 100);
    bad = alp;
    bad[1] = 11;  // e beyond the tables
    expect_rejected(bad, 100);
    bad = alp;
    bad[2] = uint8_t(bad[1] + 1);  // f > e
    expect_rejected(bad, 100);
    bad = alp;
    bad[3] = 53;  // integer width beyond 52
    bad.resize(bad.size() + 1000);
    expect_rejected(bad, 100);
    bad = alp;
    bad[11] = 0x40;  // minimum beyond 2^52
    expect_rejected(bad, 100);
    bad = alp;
    bad[exc_at] = 101;  // more exceptions than values
    expect_rejected(bad, 100);
    bad = alp;
    bad[exc_at + 2] = 20;  // positions not rising
    expect_rejected(bad, 100);
    bad = alp;
    bad[exc_at + 4] = 100;  // position out of range
    expect_rejected(bad, 100);

    std::vector<float> rd_v(64);
    for (auto &x : rd_v) x = uniform(g, -1, 1);
    rd_v[7] = 1e30f;
    std::vector<uint8_t> rd;
    ASSERT_EQ(drift::float_encode(rd_v.data(), 64, rd), FloatCodec::AlpRd);
    for (uint8_t r : {0, 15, 32, 200}) {
        bad = rd;
        bad[1] = r;  // split outside 16..31
        bad.resize(bad.size() + 1000);
        expect_rejected(bad, 64);
    }
    for (uint8_t d : {0, 9}) {
        bad = rd;
        bad[2] = d;  // dictionary size outside 1..8
        bad.resize(bad.size() + 1000);
        expect_rejected(bad, 64);
    }
    // One value, 1-bit left parts, a dictionary of 3 entries.
    std::vector<uint8_t> three = {2, 31, 3, 0, 0, 1, 0, 0, 0};
    three.push_back(0b11);  // index 3 (2 bits)
    put_le(three, 0, 4);    // one 31-bit right part
    put_le(three, 0, 2);
    expect_rejected(three, 1);
    three[9] = 0b10;  // index 2: valid
    float one;
    EXPECT_EQ(drift::float_decode(three.data(), three.size(), 1, &one), three.size());
    three[5] = 2;  // dictionary entry wider than the left part
    expect_rejected(three, 1);
    three[5] = 1;
    // An exception's left part wider than the split allows.
    three.resize(three.size() - 2);
    put_le(three, 1, 2);
    put_le(three, 0, 2);
    put_le(three, 2, 2);
    expect_rejected(three, 1);
}

// The filter bits the documented rule sets for ids, computed independently.
std::vector<uint8_t> spec_filter(drift::BloomShape shape, const std::vector<int64_t> &ids) {
    std::vector<uint8_t> f(shape.bits / 8);
    for (int64_t id : ids) {
        uint8_t le[8];
        for (int j = 0; j < 8; ++j) le[j] = uint8_t(uint64_t(id) >> (8 * j));
        XXH128_hash_t h = XXH3_128bits(le, 8);
        for (uint64_t i = 0; i < shape.hashes; ++i) {
            uint64_t bit = (h.low64 + i * (h.high64 | 1)) % shape.bits;
            f[bit / 8] |= uint8_t(1 << (bit % 8));
        }
    }
    return f;
}

TEST(Bloom, Shape) {
    auto s = drift::bloom_shape(1000, 0.01);  // 9585.06 bits -> 9600; 9.6 * ln 2 = 6.65 -> 7
    EXPECT_EQ(s.bits, 9600u);
    EXPECT_EQ(s.hashes, 7u);
    s = drift::bloom_shape(0, 0.01);
    EXPECT_EQ(s.bits, 64u);
    EXPECT_EQ(s.hashes, 16u);
    s = drift::bloom_shape(1000000, 0.5);
    EXPECT_EQ(s.bits % 64, 0u);
    EXPECT_EQ(s.hashes, 1u);
    for (double fp : {0.0, 1.0, -0.5, 2.0, std::nan("")}) EXPECT_THROW(drift::bloom_shape(10, fp), drift::Error);
}

TEST(Bloom, MatchesDocumentedHashing) {
    drift::BloomShape shape{128, 3};
    std::vector<int64_t> ids = {0, 1, -1, 42, INT64_MIN, INT64_MAX};
    std::vector<uint8_t> f(16);
    for (int64_t id : ids) drift::bloom_add(f.data(), shape, id);
    EXPECT_EQ(f, spec_filter(shape, ids));
}

TEST(Bloom, NoFalseNegativesAndRateNearTarget) {
    for (double fp : {0.01, 0.001}) {
        const uint64_t n = 100000;
        auto shape = drift::bloom_shape(n, fp);
        std::vector<uint8_t> f(shape.bits / 8);
        std::mt19937_64 g(13);
        std::vector<int64_t> ids(n);
        for (auto &id : ids) id = int64_t(g() >> 1);  // non-negative; probes below are negative
        for (int64_t id : ids) drift::bloom_add(f.data(), shape, id);
        for (int64_t id : ids) ASSERT_TRUE(drift::bloom_test(f.data(), shape, id));
        size_t hits = 0, probes = 200000;
        for (size_t i = 0; i < probes; ++i) hits += drift::bloom_test(f.data(), shape, -1 - int64_t(i));
        double rate = double(hits) / double(probes);
        EXPECT_LT(rate, 2 * fp) << "fp " << fp;
        EXPECT_GT(rate, fp / 2) << "fp " << fp;
    }
}

TEST(Bloom, RejectsBadShapes) {
    uint8_t f[16] = {};
    for (drift::BloomShape s : {drift::BloomShape{0, 1}, drift::BloomShape{100, 1}, drift::BloomShape{128, 0},
                                drift::BloomShape{128, 17}}) {
        EXPECT_THROW(drift::bloom_add(f, s, 1), drift::Error);
        EXPECT_THROW(drift::bloom_test(f, s, 1), drift::Error);
    }
}

}  // namespace
