# The index gives space back: after a drift (rows of a shifted
# distribution inserted, the old ones deleted), VACUUM moves the bucket
# chains at the end of the index into free pages before it, the next pass
# releases their old pages and truncates the free end, and the index ends
# within 1.25x of a fresh build on the same rows. A standby replays the
# truncation and answers like the primary; nothing is lost. Once with SQ8
# codes and the vectors kept, once with RaBitQ codes re-ranking from the
# table (no cold pages).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use DriftTest;

my $primary = new_node('shrink_primary', allows_streaming => 1, conf => "log_min_messages = debug1\n");
$primary->backup('base');
my $standby = PostgreSQL::Test::Cluster->new('shrink_standby');
$standby->init_from_backup($primary, 'base', has_streaming => 1);
$standby->start;

my $dim = 128;
# Row i of a distribution moved by shift along every axis, into table t.
sub rows_sql {
    my ($t, $lo, $hi, $shift) = @_;
    return "INSERT INTO $t SELECT i, (SELECT array_agg((sin(i * 0.37 + j * 1.7 + (i % 11) * j) + $shift)::real ORDER BY j) "
      . "FROM generate_series(1, $dim) j) FROM generate_series($lo, $hi) i";
}
# Drifts, shrinks and checks table $t (index ${t}_idx, built WITH (options));
# returns its size, neighbour query and full-scan SQL for the standby checks.
sub shrink_case {
    my ($t, $options) = @_;
    $primary->safe_psql('postgres', "CREATE TABLE $t (id int PRIMARY KEY, v real[]);
        " . rows_sql($t, 1, 10000, 0) . ";
        CREATE INDEX ${t}_idx ON $t USING drift (v) WITH ($options);");
    my $size = "SELECT pg_relation_size('${t}_idx')";
    my $built = $primary->safe_psql('postgres', $size);

    # Two rounds of drift, each maintained to the end: insert shifted rows,
    # delete the oldest, VACUUM.
    my $peak = 0;
    for my $round (1 .. 2) {
        my $lo = $round * 10000 + 1;
        $primary->safe_psql('postgres', rows_sql($t, $lo, $lo + 9999, 3 * $round));
        $primary->safe_psql('postgres', "SELECT drift_maintain('${t}_idx')") for 1 .. 2;
        my $s = $primary->safe_psql('postgres', $size);
        $peak = $s if $s > $peak;
        $primary->safe_psql('postgres', "DELETE FROM $t WHERE id < $lo");
        $primary->safe_psql('postgres', "VACUUM $t");
    }
    my $before = $primary->safe_psql('postgres', $size);
    # Later passes release the chains VACUUM moved (it retires them under the
    # next xid, which the first pass takes), give the free end back, and move
    # more, until there is nothing left to win.
    my ($after, $last, $passes) = ($before, -1, 0);
    while ($after != $last && $passes < 20) {
        $last = $after;
        $primary->safe_psql('postgres', "SELECT drift_maintain('${t}_idx')") for 1 .. 2;
        $after = $primary->safe_psql('postgres', $size);
        $passes += 2;
    }
    note("$t: $passes passes after VACUUM");
    $primary->safe_psql('postgres', "CREATE INDEX ${t}_fresh ON $t USING drift (v) WITH ($options)");
    my $fresh = $primary->safe_psql('postgres', "SELECT pg_relation_size('${t}_fresh')");
    $primary->safe_psql('postgres', "DROP INDEX ${t}_fresh");
    note(sprintf("$t: " . 'built %.1f MB, peak %.1f MB, before the last pass %.1f MB, after %.1f MB, fresh build %.1f MB',
                 map { $_ / 1048576 } $built, $peak, $before, $after, $fresh));
    cmp_ok($after, '<', $before, "$t: the index gave pages back");
    cmp_ok($after, '<=', 1.25 * $fresh, "$t: and is within 1.25x of a fresh build on the same rows");

    my $rows = $primary->safe_psql('postgres', "SELECT count(*) FROM $t");
    my $full = "SET enable_seqscan = off; SET drift.probes = 32768; SET drift.rerank = 1000000; SET drift.strict_order = off; "
      . "SELECT count(*), count(DISTINCT id) FROM (SELECT id FROM $t ORDER BY v <-> (SELECT v FROM $t LIMIT 1)) s";
    is($primary->safe_psql('postgres', $full), "$rows|$rows", "$t: a full index scan finds every row exactly once");
    is($primary->safe_psql('postgres', "SELECT count(*) FROM drift_verify('${t}_idx')"), '0', "$t: drift_verify is clean");
    my $q = "SET enable_seqscan = off; SELECT array_agg(id) FROM (SELECT id FROM $t ORDER BY v <-> (SELECT v FROM $t WHERE id = 25555) LIMIT 10) s";
    my $exact = "SET enable_indexscan = off; SELECT array_agg(id) FROM (SELECT id FROM $t ORDER BY v <-> (SELECT v FROM $t WHERE id = 25555) LIMIT 10) s";
    is($primary->safe_psql('postgres', $q), $primary->safe_psql('postgres', $exact), "$t: a query finds the exact neighbours");

    # Inserts after the truncation extend the index again (L0's new page
    # lands at the end), and are found; once they are deleted, the shrink moves
    # L0 (a flush of the empty L0) and the rest, and gives the end back.
    $primary->safe_psql('postgres', rows_sql($t, 60001, 64000, 6) . "; SELECT drift_maintain('${t}_idx')");
    is($primary->safe_psql('postgres', "SELECT count(*) FROM drift_verify('${t}_idx')"), '0', "$t: drift_verify is clean after more inserts");
    is($primary->safe_psql('postgres', $q), $primary->safe_psql('postgres', $exact), "$t: a query finds the exact neighbours");
    my $grown = $primary->safe_psql('postgres', $size);
    $primary->safe_psql('postgres', "DELETE FROM $t WHERE id > 60000; VACUUM $t");
    $primary->safe_psql('postgres', "SELECT drift_maintain('${t}_idx')") for 1 .. 4;
    cmp_ok($primary->safe_psql('postgres', $size), '<', $grown, "$t: the index shrank again");
    my $log = slurp_file($primary->logfile);
    ok($log =~ /shrinking index "${t}_idx" .* [1-9]\d* directory pages/, "$t: shrinking moved directory pages");
    ok($log =~ /shrinking index "${t}_idx" .* directory pages, 1 L0/, "$t: and L0");
    # (SQ8 codes get a new quantizer after the drift, written late in the
    # index; RaBitQ codes keep the first, near its start)
    ok($log =~ /shrinking index "${t}_idx" .* [1-9]\d* quantizers/, "$t: and a quantizer") if $options !~ /rabitq/;
    return ($size, $q, $full);
}
my ($size, $q, $full) = shrink_case('t', 'lists = 20');
my @heap = shrink_case('th', 'lists = 20, codes = rabitq, rerank = heap');

$primary->wait_for_catchup($standby);
is($standby->safe_psql('postgres', $size), $primary->safe_psql('postgres', $size), 'the standby replayed the truncation');
is($standby->safe_psql('postgres', $q), $primary->safe_psql('postgres', $q), 'and answers like the primary');
my $rows = $primary->safe_psql('postgres', 'SELECT count(*) FROM t');
is($standby->safe_psql('postgres', $full), "$rows|$rows", 'its full index scan finds every row exactly once');
is($standby->safe_psql('postgres', $heap[0]), $primary->safe_psql('postgres', $heap[0]), 'th: the standby replayed the truncation');
is($standby->safe_psql('postgres', $heap[1]), $primary->safe_psql('postgres', $heap[1]), 'th: and answers like the primary');
$rows = $primary->safe_psql('postgres', 'SELECT count(*) FROM th');
is($standby->safe_psql('postgres', $heap[2]), "$rows|$rows", 'th: its full index scan finds every row exactly once');
$standby->stop;
$primary->stop;
done_testing();
