#!/usr/bin/env bash
# Runs drift's pg_regress suite, and any Perl TAP tests named as arguments,
# with every PostgreSQL backend under Valgrind memcheck (PostgreSQL's own
# src/tools/valgrind.supp), then summarizes what Valgrind found, in full
# for the error stacks that pass through drift's code.
#
#   scripts/valgrind.sh [test/t/NNN_name.pl ...]
#
# Tests the installed drift.so (make install first; build it with -g, as
# PGXS does by default, so frames have file:line). Environment:
#   VALGRIND_REGRESS="index functions"  the pg_regress tests (default: all of sql/)
#   VALGRIND_SUPP=FILE                  a suppression file (default: fetched
#                                       once from Debian's postgresql-15 source
#                                       package, cached in ~/.cache/drift)
#   VALGRIND_OPTS="..."                 extra valgrind options
# Logs stay in a temporary directory (printed); exits non-zero if a suite
# failed or an error stack involves drift.
#
# Debian's PostgreSQL is not built with USE_VALGRIND, so palloc chunks are
# not tracked one by one: reads past a palloc'd array within its memory
# context block go unnoticed. Memory from new/malloc (std containers) is
# tracked exactly.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/cluster.sh
source scripts/apt-source.sh
command -v valgrind >/dev/null || { echo "valgrind not installed (apt-get install valgrind)" >&2; exit 1; }

REAL_BIN=$PG_BIN
PG_MAJOR=$("$REAL_BIN/postgres" -V | sed 's/.* \([0-9]*\)\..*/\1/')

# The suppression file of the installed PostgreSQL's source package.
supp=${VALGRIND_SUPP:-${XDG_CACHE_HOME:-$HOME/.cache}/drift/valgrind-pg$PG_MAJOR.supp}
if [ ! -s "$supp" ]; then
    pkg=postgresql-$PG_MAJOR
    ver=$(dpkg-query -W -f '${Version}' "$pkg" 2>/dev/null || true)
    src=$(mktemp -d)
    apt_source "$pkg${ver:+=$ver}" "$src"
    mkdir -p "$(dirname "$supp")"
    tar -xf "$src"/*.orig.tar.* -O --wildcards '*/src/tools/valgrind.supp' >"$supp.tmp"
    mv "$supp.tmp" "$supp"
    echo "valgrind: suppressions from $(basename "$src"/*.dsc .dsc) in $supp"
    rm -rf "$src"
fi

WORK=$(pg_tmpdir valgrind)
LOGS=$WORK/logs
as_pg mkdir -p "$WORK/pg" "$WORK/regress" "$WORK/tap" "$LOGS" "$WORK/bin"
cp "$supp" "$WORK/valgrind.supp"
chmod 644 "$WORK/valgrind.supp"

# The wrapped bindir. pg_ctl and initdb run the postgres next to their own
# path with symlinks resolved, so they are copies, not symlinks; postgres
# runs valgrind, except for -V (version checks), initdb's --boot and
# --single runs and -C (no drift code runs there, and valgrind is slow).
for f in "$REAL_BIN"/*; do
    case $(basename "$f") in postgres|postmaster) continue ;; esac
    cp -p "$f" "$WORK/bin/"
done
cat >"$WORK/bin/postgres" <<EOF
#!/bin/sh
# postgres under valgrind memcheck (written by drift's scripts/valgrind.sh)
case "\$1" in
    -V|--version|--boot|--single|--describe-config|-C) exec "$REAL_BIN/postgres" "\$@" ;;
esac
exec valgrind --quiet --trace-children=yes --track-origins=yes --read-var-info=no \\
    --num-callers=30 --error-limit=no --leak-check=no --fullpath-after= \\
    --suppressions="$WORK/valgrind.supp" --log-file="$LOGS/valgrind.%p.log" \\
    ${VALGRIND_OPTS:-} "$REAL_BIN/postgres" "\$@"
EOF
chmod 755 "$WORK/bin/postgres"
ln -s postgres "$WORK/bin/postmaster"
chown -R "$PG_USER" "$WORK/bin"

# Everything waits long: a backend under valgrind runs 20-50 times slower.
export PGCTLTIMEOUT=1200 PG_TEST_TIMEOUT_DEFAULT=1800
PG_BIN=$WORK/bin
cleanup() {
    cluster_stop "$WORK/pg"
    rm -rf "${WORK:?}/pg/data" "${WORK:?}/tap/tmp_check/t_"*_data "${WORK:?}/bin"
}
trap cleanup EXIT
status=0
start=$SECONDS
SO=$(pg_config --pkglibdir)/drift.so
so_mtime=$(stat -c %Y "$SO")
echo "== testing $SO, built $(date -d @"$so_mtime" '+%F %T')"

tests=${VALGRIND_REGRESS:-$(for f in sql/*.sql; do basename "$f" .sql; done | tr '\n' ' ')}
echo "== pg_regress under valgrind: $tests"
cluster_start "$WORK/pg" 55470 "shared_buffers = 32MB" "max_connections = 20" \
    "autovacuum = off" "jit = off" "maintenance_work_mem = 64MB"
set +e
# shellcheck disable=SC2086
as_pg "$(pg_config --pkglibdir)/pgxs/src/test/regress/pg_regress" \
    --bindir="$REAL_BIN" --host="$PGHOST" --port="$PGPORT" --user=postgres \
    --inputdir=. --outputdir="$WORK/regress" --dbname=drift_regression $tests
s=$?
set -e
[ $s = 0 ] || { status=1; head -100 "$WORK/regress/regression.diffs" 2>/dev/null || true; }
cluster_stop "$WORK/pg"
echo "== pg_regress: $((SECONDS - start)) s"

if [ $# -gt 0 ]; then
    t0=$SECONDS
    echo "== Perl TAP under valgrind: $*"
    echo "jit = off" | as_pg tee "$WORK/tap.conf" >/dev/null
    set +e
    as_pg env PATH="$WORK/bin:$PATH" TESTDIR="$WORK/tap" TEMP_CONFIG="$WORK/tap.conf" \
        PGCTLTIMEOUT="$PGCTLTIMEOUT" PG_TEST_TIMEOUT_DEFAULT="$PG_TEST_TIMEOUT_DEFAULT" \
        PG_REGRESS="$(pg_config --pkglibdir)/pgxs/src/test/regress/pg_regress" \
        DRIFT_ROOT="$DRIFT_ROOT" DRIFT_DATA="$DRIFT_DATA" \
        prove -I "$(pg_config --pkglibdir)/pgxs/src/test/perl" -I test/t "$@"
    s=$?
    set -e
    [ $s = 0 ] || { status=1; tail -n 30 "$WORK"/tap/tmp_check/log/*.log 2>/dev/null | tail -60; }
    echo "== Perl TAP: $((SECONDS - t0)) s"
fi

# The summary. An error is a paragraph of a log whose stack ("at 0x...")
# follows its first line; stacks are compared without addresses. A stack
# involves drift if a frame is in drift.so or in src/am, src/storage or
# src/core. It is drift's if the error is raised in drift code, or the
# uninitialised bytes or the block come from drift; a syscall that writes
# bytes which drift did not produce (a WAL flush that happens to run in a
# drift call) only passes through drift.
echo
echo "== valgrind summary (logs in $LOGS)"
perl - "$LOGS" <<'PERL' || status=1
use strict;
use warnings;
my $dir = shift;
my $drift = qr{drift\.so|(?:^|[/(])src/(?:am|storage|core)/};
my $frame = qr{^\s+(?:at|by) };
my (%count, %files, @order);
my ($nlogs, $nbad, $nerr) = (0, 0, 0);
for my $log (sort glob("$dir/valgrind.*.log")) {
    $nlogs++;
    open(my $fh, '<', $log) or next;
    my @paras = ([]);
    while (my $line = <$fh>) {
        next unless $line =~ s/^==\d+== ?//;
        chomp $line;
        if ($line =~ /^\s*$/) { push @paras, [] if @{ $paras[-1] }; next; }
        $line =~ s/0x[0-9A-Fa-f]+: //;
        $line =~ s/0x[0-9A-Fa-f]+/0x.../g;
        $line =~ s{\(\S*/(src/(?:am|storage|core)/)}{($1};
        push @{ $paras[-1] }, $line;
    }
    my $errs = 0;
    for my $p (@paras) {
        next unless @$p >= 2 && $p->[1] =~ /^\s+at /;
        next if $p->[0] =~ /^Process terminating with default action of signal 9 /;
        $errs++;
        my $key = join("\n", @$p);
        push @order, $key unless $count{$key}++;
        $files{$key}{ (split m{/}, $log)[-1] } = 1;
    }
    $nerr += $errs;
    $nbad++ if $errs;
}
my $logs = sub { my $f = shift; my @f = sort keys %$f; scalar(@f) . " log(s), e.g. $f[0]" };
my (@ours, @other, %ocount, %ofiles);
for my $key (@order) {
    my @l = split /\n/, $key;
    my $i = 1;
    $i++ while $i < @l && $l[$i] =~ $frame;
    my @main = @l[1 .. $i - 1];
    my @aux = @l[$i .. $#l];    # Address / origin / allocation, with its stack
    if ($key =~ $drift) {
        my ($top) = grep { /$drift/ } @main;
        my ($origin) = ((grep { /$drift/ } @aux), grep { /$frame/ && !/vg_replace_malloc/ } @aux);
        my $mine = (grep { /$drift/ } @aux) || ($top && $l[0] !~ /^Syscall param/);
        push @ours, [$mine, $key, $top, $origin];
        next;
    }
    # Stacks outside drift: grouped by kind and first frames, libc's skipped.
    my @top = ($main[0], grep { !m{libio/|sysdeps/|libc\.so|vg_replace} } @main[1 .. $#main]);
    splice(@top, 4) if @top > 4;
    my $short = join("\n", $l[0], @top);
    push @other, $short unless $ocount{$short};
    $ocount{$short} += $count{$key};
    $ofiles{$short}{$_} = 1 for keys %{ $files{$key} };
}
my $mine = grep { $_->[0] } @ours;
printf "%d valgrind logs, %d with errors; %d errors, %d distinct stacks; %d involve drift: "
    . "%d drift's, %d passing through drift\n",
    $nlogs, $nbad, $nerr, scalar @order, scalar @ours, $mine, @ours - $mine;
for my $o (sort { $b->[0] <=> $a->[0] } @ours) {
    my ($m, $key, $top, $origin) = @$o;
    my $first = (split /\n/, $key)[0];
    print "\n--- ", ($m ? "DRIFT'S" : "passes through drift"), ": $first\n";
    print "    $count{$key} x in ", $logs->($files{$key}), "\n";
    (my $t = $top // '(none in the error stack)') =~ s/$frame//;
    print "    top drift frame: $t\n";
    if ($origin) { (my $x = $origin) =~ s/$frame//; print "    origin/allocation: $x\n"; }
    print "$key\n";
}
for my $short (@other) {
    my @l = split /\n/, $short;
    print "\n--- not drift: $l[0]\n    $ocount{$short} x in ", $logs->($ofiles{$short}), "\n";
    print "$_\n" for @l[1 .. $#l];
}
exit($mine ? 1 : 0);
PERL
now_mtime=$(stat -c %Y "$SO")
[ "$now_mtime" = "$so_mtime" ] ||
    echo "note: $SO was replaced during the run (now built $(date -d @"$now_mtime" '+%F %T')): backends started before then ran the older build"
echo "== total: $((SECONDS - start)) s"
exit $status
