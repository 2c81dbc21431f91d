#!/usr/bin/env bash
# Runs the client examples (python/drift_example.py, node/drift_example.js)
# against a throwaway PostgreSQL cluster with drift preloaded, and checks
# what they print: the index is drift, 22000 rows, 2000 rows inserted while
# querying, every fresh row found, recall@10 >= 0.9. Exits non-zero if
# anything fails; the cluster is removed on exit.
#
# Assumes what scripts/deps.sh installs (python3-psycopg, python3-numpy,
# nodejs, npm) and drift, drift_vector and pgvector installed in the
# PostgreSQL that pg_config names. PYTHON (default /usr/bin/python3, the
# interpreter Debian's packages are for) and DRIFT_EXAMPLES_PORT (default
# 55445) can be set.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/cluster.sh
PYTHON=${PYTHON:-/usr/bin/python3}
PORT=${DRIFT_EXAMPLES_PORT:-55445}

WORK=$(pg_tmpdir examples)
cleanup() { cluster_stop "$WORK"; rm -rf "$WORK"; }
trap cleanup EXIT
cluster_start "$WORK" "$PORT" "shared_preload_libraries = 'drift'"
dpsql -d postgres -c "CREATE DATABASE examples"
export PGDATABASE=examples   # PGHOST, PGPORT, PGUSER come from cluster_start

# check NAME LOG: the lines both examples print.
check() {
    local name=$1 log=$2 line recall
    for line in 'index: drift' 'rows: 22000' 'inserted while querying: 2000' 'fresh rows found: 10/10'; do
        grep -qxF "$line" "$log" || { echo "== examples: $name FAILED: no line '$line'"; return 1; }
    done
    grep -q '^plan: Index Scan using ' "$log" || { echo "== examples: $name FAILED: no index scan"; return 1; }
    recall=$(sed -n 's/^recall@10: \([0-9.]*\)$/\1/p' "$log")
    awk -v r="$recall" 'BEGIN { exit !(r != "" && r + 0 >= 0.9) }' ||
        { echo "== examples: $name FAILED: recall@10 '$recall'"; return 1; }
    echo "== examples: $name ok"
}

# run_example NAME COMMAND...: runs one example, showing and checking its output.
run_example() {
    local name=$1
    shift
    if ! "$@" | tee "$WORK/$name.log"; then
        echo "== examples: $name FAILED: it exited with an error"
        return 1
    fi
    check "$name" "$WORK/$name.log"
}

status=0
echo "== examples: python ($("$PYTHON" --version 2>&1))"
run_example python "$PYTHON" examples/python/drift_example.py || status=1

echo "== examples: node ($(node --version), npm $(npm --version))"
if (cd examples/node && npm ci --no-audit --no-fund --loglevel=error); then
    run_example node node examples/node/drift_example.js || status=1
else
    echo "== examples: node FAILED: npm ci"
    status=1
fi
exit $status
