#!/usr/bin/env bash
# The drift simulator on a throwaway server: replays a streaming runbook
# (bench/runbooks/*.yaml, or any of the big-ann-benchmarks streaming track)
# against drift (with and without its janitor) and pgvector's ivfflat and
# hnsw, and writes a CSV and a PNG of recall@10, QPS and index size at each
# search step (bench/simulate.py, docs/simulator.md).
#
#   bench/simulate.sh RUNBOOK DATASET [simulate.py options]
#   e.g. bench/simulate.sh bench/runbooks/clustered.yaml siftsmall --out results/
#        bench/simulate.sh bench/runbooks/sliding_window.yaml gen:20000:64
#
# DATASET: siftsmall, mnist, glove50 (under DRIFT_DATA), gen:ROWS:DIM[:SHIFT[:PHASES]]
# (build/vecdata), or an .fvecs file. Environment: PORT (default 55461),
# PYTHON (default /usr/bin/python3, which has Debian's modules).
set -euo pipefail
[ $# -ge 2 ] || { sed -n '2,14s/^# \{0,1\}//p' "$0" >&2; exit 2; }
# (no cd: RUNBOOK, an .fvecs DATASET and --out are relative to the caller)
root=$(cd "$(dirname "$0")/.." && pwd)
source "$root/scripts/cluster.sh"
source "$root/bench/common.sh"
export DRIFT_DATA

case "$2" in gen:*) make -s -C "$root" tools ;; esac
bench_start simulate "${PORT:-55461}" "shared_preload_libraries = 'drift'"
"${PYTHON:-/usr/bin/python3}" "$root/bench/simulate.py" "$@"
