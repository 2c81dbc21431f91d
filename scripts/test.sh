#!/usr/bin/env bash
# Runs every drift test: C++ unit tests of src/core, the segment reader's
# fuzzer (FUZZ_SECONDS, default 90), pg_regress (sql/,
# expected/), pgTAP (test/pgtap/, recall on ../shared/data, on real[] and
# pgvector's types), Perl TAP (test/t/: standby, crash, corruption), and
# the client examples (examples/run.sh). Builds with -Werror and PostgreSQL
# assertions first. Exits non-zero if anything fails.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
make -s clean
make -s DRIFT_CHECK=1
make -s install
make -s DRIFT_CHECK=1 tools build/unit_tests
source scripts/cluster.sh
export DRIFT_DATA

passed=0 failed=0
failures=()
# record NAME STATUS: counts one suite's result.
record() {
    if [ "$2" = 0 ]; then passed=$((passed + 1)); echo "== $1: ok"
    else failed=$((failed + 1)); failures+=("$1"); echo "== $1: FAILED"; fi
}

echo "== unit tests (GoogleTest)"
set +e
build/unit_tests --gtest_brief=1
record unit $?
set -e

echo "== fuzzer of the segment reader (libFuzzer, ${FUZZ_SECONDS:-90} s)"
set +e
make -s fuzz FUZZ_SECONDS="${FUZZ_SECONDS:-90}" > build/fuzz.log 2>&1
status=$?
grep -E '^(#[0-9]+[[:space:]]+DONE|Done )' build/fuzz.log
[ $status = 0 ] || tail -n 60 build/fuzz.log
record fuzz $status
set -e

WORK=$(pg_tmpdir test)
cleanup() { cluster_stop "$WORK/pg"; rm -rf "$WORK"; }
trap cleanup EXIT
as_pg mkdir -p "$WORK/pg" "$WORK/regress" "$WORK/tap"
cluster_start "$WORK/pg" 55440

echo "== pg_regress"
set +e
as_pg "$(pg_config --pkglibdir)/pgxs/src/test/regress/pg_regress" \
    --bindir="$PG_BIN" --host="$PGHOST" --port="$PGPORT" --user=postgres \
    --inputdir=. --outputdir="$WORK/regress" --dbname=drift_regression \
    $(ls sql/*.sql | xargs -n1 basename | sed 's/\.sql$//')
status=$?
[ $status = 0 ] || cat "$WORK/regress/regression.diffs" 2>/dev/null | head -200
record pg_regress $status
set -e

echo "== pgTAP"
dpsql -d postgres -c "CREATE DATABASE drift_tap"
dpsql -d drift_tap -c "CREATE EXTENSION drift" -c "CREATE EXTENSION pgtap"
load_vectors drift_tap sift_base fvecs "$DRIFT_DATA/siftsmall/siftsmall_base.fvecs"
load_vectors drift_tap sift_query fvecs "$DRIFT_DATA/siftsmall/siftsmall_query.fvecs"
load_vectors drift_tap sift_truth ivecs "$DRIFT_DATA/siftsmall/siftsmall_groundtruth.ivecs" 10
load_vectors drift_tap glove_base fvecs "$DRIFT_DATA/glove50/glove50_base.fvecs"
load_vectors drift_tap glove_query fvecs "$DRIFT_DATA/glove50/glove50_query.fvecs"
load_vectors drift_tap glove_truth ivecs "$DRIFT_DATA/glove50/glove50_groundtruth_cosine_k100.ivecs" 10
load_vectors drift_tap mnist_base fvecs "$DRIFT_DATA/mnist/mnist_t10k_base9000.fvecs"
load_vectors drift_tap mnist_query fvecs "$DRIFT_DATA/mnist/mnist_t10k_query1000.fvecs"
load_vectors drift_tap mnist_truth ivecs "$DRIFT_DATA/mnist/mnist_t10k_groundtruth_l2_k100.ivecs" 10
dpsql -d drift_tap -f test/pgtap/helpers/recall.sql
set +e
as_pg env PGHOST="$PGHOST" PGPORT="$PGPORT" pg_prove -U postgres -d drift_tap test/pgtap/*.sql
record pgtap $?
set -e

echo "== Perl TAP"
set +e
as_pg env PATH="$PG_BIN:$PATH" TESTDIR="$WORK/tap" PG_REGRESS="$(pg_config --pkglibdir)/pgxs/src/test/regress/pg_regress" DRIFT_ROOT="$DRIFT_ROOT" DRIFT_DATA="$DRIFT_DATA" \
    prove -I "$(pg_config --pkglibdir)/pgxs/src/test/perl" -I test/t test/t/*.pl
status=$?
[ $status = 0 ] || tail -n 50 "$WORK"/tap/tmp_check/log/*.log 2>/dev/null | tail -100
record tap $status
set -e

echo "== client examples (examples/)"
set +e
examples/run.sh
record examples $?
set -e

echo
echo "suites: $passed passed, $failed failed"
[ "$failed" = 0 ] || { echo "failed suites: ${failures[*]}"; exit 1; }
