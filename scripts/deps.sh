#!/usr/bin/env bash
# Installs what drift needs to build, test and benchmark on Debian 12
# (PostgreSQL 15). Needs root (or sudo). Set DRIFT_SKIP_DEPS=1 to skip.
set -euo pipefail
[ "${DRIFT_SKIP_DEPS:-0}" = 1 ] && exit 0
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends \
    build-essential ca-certificates perl \
    postgresql-15 postgresql-server-dev-15 postgresql-15-pgtap \
    libtap-parser-sourcehandler-pgtap-perl libipc-run-perl \
    libxsimd-dev libgtest-dev libbenchmark-dev >/dev/null
echo "deps: installed"
