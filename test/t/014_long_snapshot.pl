# A transaction that holds an old snapshot does not stall maintenance: while
# it stays open and rows stream in, the janitor keeps flushing, L0 stays
# within drift.l0_max_rows, and the retired list, once full, overflows
# instead of stopping maintenance; the index grows only with the pages
# written. Once the transaction ends, the retired chains are released and
# their pages reused. And an index that re-ranks from the table, built while
# an old snapshot still sees its column's earlier values (set by HOT
# updates before the build), keeps every row through maintenance: it reads
# each row's latest version, the one it indexed.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use DriftTest;

my $node = new_node('snapshot', preload => 1, conf => "drift.janitor_naptime = 20\ndrift.l0_max_rows = 1500\n");
my $vec = vector_sql(16);
$node->safe_psql('postgres', "CREATE TABLE t (id serial PRIMARY KEY, v real[]);
    INSERT INTO t (v) SELECT $vec FROM generate_series(1, 3000) i;
    CREATE INDEX t_idx ON t USING drift (v) WITH (lists = 8, max_bucket_size = 300);");

# The old snapshot: a REPEATABLE READ transaction left open.
my ($in, $out, $err) = ('', '', '');
my $old = IPC::Run::start([ 'psql', '-X', '-q', '-A', '-t', '-h', $node->host, '-p', $node->port, '-d', 'postgres' ],
    '<', \$in, '>', \$out, '2>', \$err);
$in .= "BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT 'rows', count(*) FROM t;\n";
$old->pump until $out =~ /rows\|\d+/;
my ($snapshot_rows) = $out =~ /rows\|(\d+)/;

# Rows stream in from a moving distribution: flushes, seeding and splits
# retire chains all the time.
my $dir = PostgreSQL::Test::Utils::tempdir;
PostgreSQL::Test::Utils::append_to_file("$dir/insert.sql",
    "INSERT INTO t (v) SELECT array_agg((random() * 2 + extract(epoch FROM clock_timestamp())::int % 60 * 0.2)::real) "
      . "FROM generate_series(1, 16) j, generate_series(1, 10) i GROUP BY i;\n");
my $stream = IPC::Run::start(
    [ 'pgbench', '-n', '-c', '1', '-T', '30', '-R', '60', '-f', "$dir/insert.sql", '-h', $node->host, '-p', $node->port,
      'postgres' ],
    '>', \my $po, '2>', \my $pe);
my $stats = "SELECT l0_entries, flushes, retired_chains, pages FROM drift_index_stats('t_idx')";
my ($max_l0, $max_retired, @flushes) = (0, 0);
for my $s (1 .. 28) {
    sleep 1;
    my ($l0, $fl, $ret, $pages) = split /\|/, $node->safe_psql('postgres', $stats);
    $max_l0 = $l0 if $l0 > $max_l0;
    $max_retired = $ret if $ret > $max_retired;
    push @flushes, $fl;
}
$stream->finish;
note("under the old snapshot: L0 at most $max_l0 rows, retired list at most $max_retired, flushes @flushes[0, 9, 19, 27]");
cmp_ok($flushes[27] - $flushes[18], '>', 10, 'flushes go on through the end of the stream');
cmp_ok($max_l0, '<=', 1500 + 200, 'L0 stays within drift.l0_max_rows');
cmp_ok($max_retired, '>=', 383, 'the retired list filled up (flushes going on past that is the first check)');
is($node->safe_psql('postgres',
    "SELECT count(*) FROM drift_verify('t_idx')"), '0', 'drift_verify is clean');
# With the list overflowing, rewrites wait: the janitor, caught up (L0
# flushed), leaves buckets past max_bucket_size (300) unsplit up to twice it.
ok($node->poll_query_until('postgres', "SELECT l0_entries = 0 FROM drift_index_stats('t_idx')"), 'the stream is flushed');
sleep 1;
my $largest = $node->safe_psql('postgres', "SELECT max(entries) FROM drift_buckets('t_idx')");
note("largest bucket under the old snapshot: $largest entries");
cmp_ok($largest, '>', 300, 'splits wait while old snapshots hold the replaced chains');

# The old snapshot still sees its rows through the index.
$in .= "SET enable_seqscan = off; SET drift.probes = 32768; SET drift.strict_order = off; SET drift.rerank = 1000000;\n"
  . "SELECT 'seen', count(*) FROM (SELECT id FROM t ORDER BY v <-> (SELECT v FROM t LIMIT 1)) s;\n";
$old->pump until $out =~ /seen\|\d+/;
my ($seen) = $out =~ /seen\|(\d+)/;
is($seen, $snapshot_rows, 'the old snapshot finds exactly its rows through the index');
$in .= "COMMIT;\n\\q\n";
$old->finish;

# Once it ends, the retired chains are released and their pages reused.
ok($node->poll_query_until('postgres', "SELECT retired_chains < 50 FROM drift_index_stats('t_idx')"),
    'the retired chains are released once the snapshot ends');
my $pages = $node->safe_psql('postgres', "SELECT pages FROM drift_index_stats('t_idx')");
$node->safe_psql('postgres', "INSERT INTO t (v) SELECT $vec FROM generate_series(1, 3000) i");
ok($node->poll_query_until('postgres', "SELECT l0_entries = 0 FROM drift_index_stats('t_idx')"), 'the new rows are flushed');
my $after = $node->safe_psql('postgres', "SELECT pages FROM drift_index_stats('t_idx')");
note("pages: $pages before 3000 more rows, $after after");
cmp_ok($after, '<=', $pages * 1.05 + 10, 'into freed pages: the index does not grow');

# Rows inserted without vectors, given them by HOT updates (room left on
# each page, no index on the column yet) while an old snapshot still sees
# the versions without.
$node->safe_psql('postgres', "CREATE TABLE hot (id int PRIMARY KEY, v real[]) WITH (fillfactor = 20);
    INSERT INTO hot SELECT i, NULL FROM generate_series(1, 600) i;");
($in, $out) = ('', '');
$old = IPC::Run::start([ 'psql', '-X', '-q', '-A', '-t', '-h', $node->host, '-p', $node->port, '-d', 'postgres' ],
    '<', \$in, '>', \$out, '2>', \$err);
$in .= "BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT 'held', count(*) FROM hot;\n";
$old->pump until $out =~ /held\|\d+/;
$node->safe_psql('postgres', "UPDATE hot SET v = (SELECT array_agg(sin(id * 0.37 + j * 1.7)::real ORDER BY j) FROM generate_series(1, 16) j)");
ok($node->poll_query_until('postgres', "SELECT n_tup_hot_upd > 500 FROM pg_stat_user_tables WHERE relname = 'hot'"),
    'the updates were HOT');
$node->safe_psql('postgres', "CREATE INDEX hot_idx ON hot USING drift (v) WITH (rerank = heap, lists = 2, max_bucket_size = 90)");
my ($split, $live) = split /\|/, $node->safe_psql('postgres',
    "SELECT (SELECT splits FROM drift_maintain('hot_idx')), (SELECT live_entries FROM drift_index_stats('hot_idx'))");
cmp_ok($split, '>', 0, 'maintenance split the buckets, reading their rows from the table');
is($live, '600', 'and kept every row, under the old snapshot');
is($node->safe_psql('postgres', "SET enable_seqscan = off; SET drift.probes = 32768;
    SELECT count(*) FROM hot a WHERE a.id = (SELECT b.id FROM hot b ORDER BY b.v <-> a.v LIMIT 1)"), '600',
    'each row is its own nearest neighbour through the index');
$in .= "COMMIT;\n\\q\n";
$old->finish;
$node->stop;
done_testing();
