# Every maintenance step can be cut short and the next pass simply goes on:
# 100 flushes cancelled in a row at random points by statement_timeout
# (inline flushes of inserts, and drift_maintain passes that also split,
# steal, merge and compact), with kill -9 during some, and afterwards every
# row is found exactly once by a full index scan, no row sits in two buckets,
# drift_verify is clean, and flushing works.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use DriftTest;

my $seed = $ENV{DRIFT_RESTART_SEED} // 20261130;
srand($seed);
note("seed $seed");
my $node = new_node('restartable', conf => "drift.l0_max_rows = 400\n");
my $dim = 48;
my $vec = vector_sql($dim);
$node->safe_psql('postgres', "CREATE TABLE t (id serial PRIMARY KEY, v real[]);
    INSERT INTO t (v) SELECT $vec FROM generate_series(1, 3000) i;
    CREATE INDEX t_idx ON t USING drift (v) WITH (lists = 6, max_bucket_size = 700);");

# A batch of rows from a distribution that moves with n, so flushes seed
# new buckets and passes split, steal and requantize.
sub rows_sql {
    my ($n, $count) = @_;
    return "INSERT INTO t (v) SELECT (SELECT array_agg((sin(i * 0.37 + j * 1.7) + $n * 0.05)::real ORDER BY j) "
      . "FROM generate_series(1, $dim) j) FROM generate_series(1, $count) i";
}

my ($cancelled, $crashes, $completed) = (0, 0, 0);
for my $n (1 .. 100) {
    my $ms = 1 + int(rand(20));
    my $sql = $n % 2
      ? "SET statement_timeout = '${ms}ms'; " . rows_sql($n, 450)    # an insert whose inline flush is cut
      : rows_sql($n, 450) . "; SET statement_timeout = '${ms}ms'; SELECT drift_maintain('t_idx')";
    if ($n % 25 == 0) {
        # kill -9 while a pass runs
        my $h = IPC::Run::start([ 'psql', '-X', '-h', $node->host, '-p', $node->port, '-d', 'postgres', '-c',
                                  rows_sql($n, 450) . "; SELECT drift_maintain('t_idx')" ], '>', \my $o, '2>', \my $e);
        select(undef, undef, undef, 0.02 + rand(0.2));
        crash_restart($node);
        $h->finish;
        $crashes++;
        next;
    }
    my ($ret, $out, $err) = $node->psql('postgres', $sql);
    if ($ret == 0) { $completed++ }
    elsif ($err =~ /canceling statement due to statement timeout/) { $cancelled++ }
    else { fail("pass $n: unexpected error: $err") }
}
note("$cancelled cancelled, $completed completed, $crashes crashed");
cmp_ok($cancelled, '>=', 30, 'many passes were cut short');

my $rows = $node->safe_psql('postgres', 'SELECT count(*) FROM t');
my $full = "SET enable_seqscan = off; SET drift.probes = 32768; SET drift.rerank = 1000000; SET drift.strict_order = off; "
  . "SELECT count(*), count(DISTINCT id) FROM (SELECT id FROM t ORDER BY v <-> (SELECT v FROM t LIMIT 1)) s";
is($node->safe_psql('postgres', $full), "$rows|$rows", 'a full index scan finds every row exactly once');
is($node->safe_psql('postgres', "SELECT count(*) FROM drift_verify('t_idx')"), '0', 'drift_verify is clean');

# Maintenance goes on; then (once VACUUM has removed the entries of the
# cancelled inserts' rows) every row sits in exactly one bucket.
$node->safe_psql('postgres', "SELECT drift_maintain('t_idx')");
$node->safe_psql('postgres', 'VACUUM t');
my $s = $node->safe_psql('postgres', "SELECT l0_entries, live_entries FROM drift_index_stats('t_idx')");
is($s, "0|$rows", 'a pass flushes L0, and the buckets hold each row once');
$node->safe_psql('postgres', rows_sql(101, 500) . "; SELECT drift_maintain('t_idx')");
is($node->safe_psql('postgres', "SELECT l0_entries FROM drift_index_stats('t_idx')"), '0', 'and flushing goes on working');
is($node->safe_psql('postgres', "SELECT count(*) FROM drift_verify('t_idx')"), '0', 'drift_verify is still clean');
unlike(slurp_file($node->logfile), qr/terminated by signal (?!9)/, 'no backend crashed');
$node->stop;
done_testing();
