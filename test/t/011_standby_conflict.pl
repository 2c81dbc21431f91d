# A hot standby without hot_standby_feedback: while its queries walk an
# index slowly, the primary's maintenance replaces chains, releases them once
# no snapshot on the primary needs them, and reuses their pages. Each standby
# query then returns exactly the rows of its snapshot, or is cancelled by a
# recovery conflict (SQLSTATE 40001, retryable); it never reports corruption
# and never misses rows silently.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use DriftTest;

my $primary = PostgreSQL::Test::Cluster->new('primary');
$primary->init(allows_streaming => 1);
$primary->append_conf('postgresql.conf',
    "shared_preload_libraries = 'drift'\ndrift.janitor_naptime = 100\ndrift.l0_flush_rows = 0\nautovacuum = off\n");
$primary->start;
$primary->safe_psql('postgres', 'CREATE EXTENSION drift');
$primary->backup('base');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'base', has_streaming => 1);
$standby->append_conf('postgresql.conf', "hot_standby_feedback = off\nmax_standby_streaming_delay = 200ms\n");
$standby->start;

my $vec = vector_sql(8);
$primary->safe_psql('postgres', "CREATE TABLE t (id serial PRIMARY KEY, v real[]);
    INSERT INTO t (v) SELECT $vec FROM generate_series(1, 600) i;
    CREATE INDEX t_idx ON t USING drift (v) WITH (lists = 4, max_bucket_size = 200);");
$primary->wait_for_catchup($standby);
my $q = $primary->safe_psql('postgres', "SELECT $vec FROM (SELECT 7 AS i) s");

# The primary keeps inserting rows from a moving distribution: the janitor
# flushes, splits and steals, releases the chains it replaced (no snapshot on
# the primary holds them) and reuses their pages.
my $dir = PostgreSQL::Test::Utils::tempdir;
PostgreSQL::Test::Utils::append_to_file("$dir/insert.sql",
    "INSERT INTO t (v) SELECT array_agg((random() * 4 - 2 + :client_id)::real) FROM generate_series(1, 8);\n");
my $writer = IPC::Run::start(
    [ 'pgbench', '-n', '-c', '1', '-T', '25', '-R', '150', '-f', "$dir/insert.sql", '-h', $primary->host, '-p', $primary->port,
      'postgres' ],
    '>', \my $wo, '2>', \my $we);

# One slow reader on the standby: a REPEATABLE READ snapshot, its row count,
# then a full ordered scan fetched slowly, 20 rows at a time (batches of 5
# re-ranked rows, so cold pages are read long after the scan started).
# Every other scan is fetched at once, and usually completes.
my $fetches = join('', map { "FETCH 20 FROM c;\nSELECT pg_sleep(0.01);\n" } 1 .. 300);
for my $kind ('slow', 'fast') {
    PostgreSQL::Test::Utils::append_to_file("$dir/$kind.sql",
        "\\set ON_ERROR_STOP 1\n\\set VERBOSITY verbose\nBEGIN ISOLATION LEVEL REPEATABLE READ;\n"
          . "SELECT 'count', count(*) FROM t;\nSET LOCAL enable_seqscan = off; SET LOCAL drift.probes = 1000; "
          . "SET LOCAL drift.rerank = 5; SET LOCAL drift.strict_order = off;\n"
          . "DECLARE c CURSOR FOR SELECT 'row', id FROM t ORDER BY v <-> '$q';\n"
          . ($kind eq 'slow' ? $fetches : "FETCH ALL FROM c;\n") . "COMMIT;\n");
}
my ($complete, $cancelled, $wrong, $corrupt, $other) = (0, 0, 0, 0, 0);
my $end = time() + 22;
for (my $n = 0; time() < $end; $n++) {
    my $kind = $n % 2 ? 'fast' : 'slow';
    my ($out, $err) = ('', '');
    IPC::Run::run([ 'psql', '-X', '-q', '-A', '-t', '-F', ' ', '-h', $standby->host, '-p', $standby->port, '-d', 'postgres',
                    '-f', "$dir/$kind.sql" ], '>', \$out, '2>', \$err);
    my ($count) = $out =~ /^count (\d+)$/m;
    my @ids = $out =~ /^row (\d+)$/mg;
    my %seen;
    my $dups = grep { $seen{$_}++ } @ids;
    if ($err =~ /40001/) {
        $cancelled++;
        $wrong++ if $dups;
    } elsif ($err =~ /is corrupt/) {
        $corrupt++;
        diag("standby query: $err");
    } elsif ($err ne '') {
        $other++;
        diag("standby query: $err");
    } else {
        $complete++;
        if (!defined $count || @ids != $count || $dups) {
            $wrong++;
            diag('standby scan returned ' . scalar(@ids) . " rows ($dups repeated) for a snapshot of " . ($count // '?'));
        }
    }
}
$writer->finish;
my $stats = $primary->safe_psql('postgres', "SELECT splits + compactions, flushes FROM drift_index_stats('t_idx')");
note("standby scans: $complete complete, $cancelled cancelled by recovery conflicts; primary: $stats (chain rewrites, flushes)");
cmp_ok($complete, '>', 3, 'the standby completed scans');
cmp_ok((split /\|/, $stats)[0], '>', 5, 'while the primary replaced chains');
is($wrong, 0, 'every complete scan returned exactly its snapshot\'s rows, once each');
is($corrupt, 0, 'no scan reported corruption');
is($other, 0, 'no scan failed otherwise');
cmp_ok($cancelled, '>', 0, 'scans that overlapped a page reuse were cancelled (40001)');
like(slurp_file($standby->logfile), qr/conflict with recovery/, 'by the recovery conflict of the reused pages');

# The standby still answers like the primary once the stream has stopped.
$primary->wait_for_catchup($standby);
my $sql = "SET enable_seqscan = off; SET drift.probes = 1000; SET drift.strict_order = off; "
  . "SELECT count(*) FROM (SELECT id FROM t ORDER BY v <-> '$q') s";
is($standby->safe_psql('postgres', $sql), $primary->safe_psql('postgres', 'SELECT count(*) FROM t'),
    'afterwards the standby\'s index holds every row');
done_testing();
