# PGXS build of drift: one shared library from C++17 sources.
#   make                 build (add DRIFT_CHECK=1 for -Werror and assertions)
#   make install         install into the PostgreSQL found by PG_CONFIG
#   make unit            build and run the C++ unit tests of src/core
#   make bench-kernels   build the kernel micro-benchmarks
#   make installcheck    pg_regress (sql/, expected/) against a running server
#   make prove_installcheck  the Perl TAP tests (test/t/; not as root)
MODULE_big = drift
EXTENSION = drift drift_vector
DATA = drift--0.1.sql drift--0.1--0.2.sql drift--0.2--0.3.sql drift--0.3--0.4.sql drift--0.4--0.5.sql drift_vector--0.1.sql
PGFILEDESC = "drift - vector similarity search index that adapts as data drifts"
REGRESS = functions index index_codes security
TAP_TESTS = 1
PROVE_TESTS = test/t/*.pl
PROVE_FLAGS = -I test/t

CORE_SRCS = src/core/distance.cpp src/core/half.cpp src/core/sq8.cpp src/core/rabitq.cpp src/core/codes.cpp src/core/kmeans.cpp src/core/maintenance.cpp src/core/hnsw.cpp src/core/routing.cpp src/core/alp.cpp src/core/bloom.cpp
ARCH := $(shell uname -m)
ifeq ($(ARCH),x86_64)
SIMD_SRCS = src/core/simd/kernels_sse2.cpp src/core/simd/kernels_avx2.cpp src/core/simd/kernels_avx512.cpp
endif
STORAGE_SRCS = $(wildcard src/storage/*.cpp)
AM_SRCS = $(wildcard src/am/*.cpp)
OBJS = $(patsubst %.cpp,%.o,$(CORE_SRCS) $(SIMD_SRCS) $(STORAGE_SRCS) $(AM_SRCS))

# The segment command (src/cli/), installed beside PostgreSQL's programs (pg_config --bindir).
SCRIPTS_built = build/drift-segment

PG_CONFIG ?= pg_config
SHLIB_LINK += -lstdc++ -lm
PG_CXXFLAGS := -std=c++17 -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers -Wno-register
# Frame pointers, as PostgreSQL keeps them: profiles (bench/overhead.sh) see whole call stacks.
PG_CXXFLAGS += -fno-omit-frame-pointer
ifeq ($(DRIFT_CHECK),1)
PG_CXXFLAGS += -Werror -DUSE_ASSERT_CHECKING
endif
# No LLVM bitcode: it would need clang with our C++ flags, and buys nothing here.
override with_llvm = no
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# Per-ISA flags apply to the per-ISA kernel files only (GCC 12 warns falsely
# about its own AVX-512 intrinsics, hence -Wno-maybe-uninitialized there).
src/core/simd/kernels_avx2.o: override CXXFLAGS += -mavx2 -mfma -mf16c
src/core/simd/kernels_avx512.o: override CXXFLAGS += -mavx512f -mavx512bw -mavx512vl -mavx512dq -mfma -mf16c -Wno-maybe-uninitialized

$(OBJS): $(wildcard src/core/*.hpp src/core/simd/*.hpp src/storage/*.h src/storage/*.hpp src/am/*.h)

# Unit tests and benchmarks of src/core, built without any server header.
CORE_TEST_CXX = $(CXX) -std=c++17 -O2 -g -Wall -Wextra $(if $(filter 1,$(DRIFT_CHECK)),-Werror)
CORE_ALL = $(CORE_SRCS) $(SIMD_SRCS)
core_objs = $(patsubst src/%.cpp,build/%.o,$(CORE_ALL))
build/core/%.o: src/core/%.cpp $(wildcard src/core/*.hpp src/core/simd/*.hpp)
	@mkdir -p $(dir $@)
	$(CORE_TEST_CXX) $(if $(findstring avx512,$<),-mavx512f -mavx512bw -mavx512vl -mavx512dq -mfma -mf16c -Wno-maybe-uninitialized,$(if $(findstring avx2,$<),-mavx2 -mfma -mf16c)) -c $< -o $@

build/storage/segment.o: src/storage/segment.cpp src/storage/segment.hpp $(wildcard src/core/*.hpp)
	@mkdir -p $(dir $@)
	$(CORE_TEST_CXX) -c $< -o $@

build/unit_tests: $(core_objs) build/storage/segment.o $(wildcard test/unit/*.cpp)
	$(CORE_TEST_CXX) -Isrc $(wildcard test/unit/*.cpp) $(core_objs) build/storage/segment.o -lgtest -lgtest_main -pthread -o $@

build/drift-segment: src/cli/drift_segment.cpp build/storage/segment.o $(core_objs)
	$(CORE_TEST_CXX) -Isrc $< build/storage/segment.o $(core_objs) -pthread -o $@

# The segment reader's fuzzer (clang's libFuzzer) and its seed corpus of valid files.
FUZZ_CXX = clang++ -std=c++17 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -DFUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION -Isrc
FUZZ_SRCS = src/storage/segment.cpp src/core/alp.cpp src/core/bloom.cpp
build/segment_fuzz: test/fuzz/segment_fuzz.cpp $(FUZZ_SRCS) src/storage/segment.hpp
	@mkdir -p build
	$(FUZZ_CXX) test/fuzz/segment_fuzz.cpp $(FUZZ_SRCS) -o $@
build/segment_seeds: test/fuzz/segment_seeds.cpp build/storage/segment.o $(core_objs)
	$(CORE_TEST_CXX) -Isrc $< build/storage/segment.o $(core_objs) -pthread -o $@

build/bench_kernels: $(core_objs) bench/kernels.cpp
	$(CORE_TEST_CXX) -Isrc bench/kernels.cpp $(core_objs) -lbenchmark -lbenchmark_main -pthread -o $@

build/vecdata: bench/vecdata.cpp $(core_objs)
	$(CORE_TEST_CXX) -Isrc bench/vecdata.cpp $(core_objs) -o $@

# Runs the fuzzer for FUZZ_SECONDS (default 90) from the seed corpus; fails on any finding.
FUZZ_SECONDS ?= 90
fuzz: build/segment_fuzz build/segment_seeds
	rm -rf build/fuzz-corpus && mkdir -p build/fuzz-corpus build/fuzz-findings
	build/segment_seeds build/fuzz-corpus
	build/segment_fuzz -max_total_time=$(FUZZ_SECONDS) -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
	    -artifact_prefix=build/fuzz-findings/ build/fuzz-corpus

.PHONY: unit bench-kernels tools fuzz
unit: build/unit_tests
	build/unit_tests
bench-kernels: build/bench_kernels
tools: build/vecdata

clean: clean-core
clean-core:
	rm -rf build
