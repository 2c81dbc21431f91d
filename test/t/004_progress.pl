# CREATE INDEX reports drift's build phases in pg_stat_progress_create_index.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use DriftTest;

my $node = new_node('progress');
my $vec = vector_sql(64);
$node->safe_psql('postgres', "CREATE TABLE items (id int, v real[]);
    INSERT INTO items SELECT i, $vec FROM generate_series(1, 150000) i;");

# Build in the background and sample the progress view until it finishes.
my $build = IPC::Run::start(
    [ 'psql', '-X', '-q', '-h', $node->host, '-p', $node->port, '-d', 'postgres',
      '-c', 'CREATE INDEX items_idx ON items USING drift (v) WITH (lists = 400)' ],
    '>', \my $out, '2>', \my $err);
my (%phases, $tuples_done);
for (1 .. 6000) {
    my $row = $node->safe_psql('postgres',
        "SELECT phase || '|' || tuples_done FROM pg_stat_progress_create_index WHERE relid = 'items'::regclass");
    if ($row ne '') {
        my ($phase, $done) = split /\|/, $row;
        $phases{$phase} = 1;
        $tuples_done = $done if $done > 0;
    }
    last unless $build->pumpable;
    $build->pump_nb;
    select(undef, undef, undef, 0.01);
}
ok($build->finish, 'the build succeeded') or diag($err);
my @drift = grep { /sampling rows|training centroids and quantizer|assigning rows to buckets|writing bucket pages/ } keys %phases;
cmp_ok(scalar(@drift), '>=', 2, 'drift build phases are reported: ' . join(', ', sort keys %phases));
ok(defined $tuples_done, 'rows done are reported');
is($node->safe_psql('postgres', "SELECT live_entries FROM drift_index_stats('items_idx')"), '150000', 'every row is indexed');

# A cancel during training stops the build at once, leaving no index.
$build = IPC::Run::start(
    [ 'psql', '-X', '-q', '-h', $node->host, '-p', $node->port, '-d', 'postgres',
      '-c', 'CREATE INDEX items_idx2 ON items USING drift (v) WITH (lists = 2000)' ],
    '>', \$out, '2>', \$err);
my $cancelled = $node->poll_query_until('postgres',
    "SELECT pg_cancel_backend(pid) FROM pg_stat_progress_create_index
      WHERE relid = 'items'::regclass AND phase = 'building index: training centroids and quantizer'");
ok($cancelled, 'the build was cancelled while training');
ok(!$build->finish, 'the cancelled build fails');
like($err, qr/canceling statement due to user request/, 'as a cancel');
is($node->safe_psql('postgres', "SELECT count(*) FROM pg_class WHERE relname = 'items_idx2'"), '0', 'leaving no index');

$node->stop;
done_testing();
