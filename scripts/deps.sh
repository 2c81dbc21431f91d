#!/usr/bin/env bash
# Installs what drift needs to build, test and benchmark on Debian 12
# (PostgreSQL 15), and pgvector, which Debian 12 carries no package of: its
# source package is fetched from a later Debian release (PGVECTOR_SUITE,
# default trixie) through a private apt configuration, built with Debian's
# patches against the installed PostgreSQL and installed, unless a pgvector
# is installed already. Needs root (or sudo). DRIFT_SKIP_DEPS=1 skips all.
set -euo pipefail
[ "${DRIFT_SKIP_DEPS:-0}" = 1 ] && exit 0
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends \
    build-essential ca-certificates perl dpkg-dev \
    postgresql-15 postgresql-server-dev-15 postgresql-15-pgtap \
    libtap-parser-sourcehandler-pgtap-perl libipc-run-perl \
    libxsimd-dev libgtest-dev libbenchmark-dev libxxhash-dev clang libclang-rt-dev \
    python3-psycopg python3-numpy python3-yaml python3-matplotlib nodejs $(command -v npm >/dev/null || echo npm) >/dev/null
# (npm: Debian's, unless the nodejs installed already carries its own.)
echo "deps: installed"

# pgvector from Debian's source package.
PG_CONFIG=${PG_CONFIG:-pg_config}
if [ -f "$("$PG_CONFIG" --sharedir)/extension/vector.control" ]; then
    echo "deps: pgvector already installed"
    exit 0
fi
cd "$(dirname "$0")/.."
source scripts/apt-source.sh
work=$(mktemp -d "${TMPDIR:-/tmp}/pgvector.XXXXXX")
trap 'rm -rf "$work"' EXIT
apt_source pgvector "$work/src" "${PGVECTOR_SUITE:-trixie}"
# (--no-check: apt checked every file against the signed Sources index; the
# .dsc's own signature would need Debian's developer keyring.)
(cd "$work" && dpkg-source --no-check -x src/pgvector_*.dsc build >/dev/null)
make -s -C "$work/build" PG_CONFIG="$PG_CONFIG" >/dev/null
$SUDO make -s -C "$work/build" PG_CONFIG="$PG_CONFIG" install >/dev/null
echo "deps: pgvector $(sed -n "s/^default_version = '\\(.*\\)'/\\1/p" "$work/build/vector.control") installed from $(basename "$work"/src/*.dsc .dsc)"
