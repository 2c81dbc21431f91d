# A streaming standby replays index build, inserts, deletes, vacuum (with
# page unlinking and reuse) and REINDEX, and answers like the primary.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use DriftTest;

my $primary = PostgreSQL::Test::Cluster->new('primary');
$primary->init(allows_streaming => 1);
$primary->start;
$primary->safe_psql('postgres', 'CREATE EXTENSION drift');
$primary->backup('base');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'base', has_streaming => 1);
$standby->start;

my $vec = vector_sql(16);
my @queries = map { my $i = $_ * 97 + 5; $primary->safe_psql('postgres', "SELECT $vec FROM (SELECT $i AS i) s") } 1 .. 8;

# After each step: the standby catches up and gives the primary's answers.
sub same_answers {
    my ($step) = @_;
    $primary->wait_for_catchup($standby, 'replay');
    for my $q (@queries) {
        my $p = index_ids($primary, 'items', $q, 10);
        my $s = index_ids($standby, 'items', $q, 10);
        is($s, $p, "$step: standby answers like the primary");
    }
    my $stats = 'SELECT live_entries, dead_entries, pages, lists FROM drift_index_stats(\'items_idx\')';
    is($standby->safe_psql('postgres', $stats), $primary->safe_psql('postgres', $stats), "$step: same index statistics");
}

$primary->safe_psql('postgres', "CREATE TABLE items (id int PRIMARY KEY, v real[]);
    INSERT INTO items SELECT i, $vec FROM generate_series(1, 3000) i;
    CREATE INDEX items_idx ON items USING drift (v) WITH (lists = 2);");
same_answers('after build');

$primary->safe_psql('postgres', "INSERT INTO items SELECT i, $vec FROM generate_series(3001, 5000) i");
same_answers('after inserts');

# Delete the middle of every bucket chain so vacuum unlinks whole pages.
$primary->safe_psql('postgres', 'DELETE FROM items WHERE id BETWEEN 501 AND 2500');
my ($ret, $out, $err) = $primary->psql('postgres', 'VACUUM (VERBOSE) items');
my ($deleted) = $err =~ /index "items_idx": pages: \d+ in total, (\d+) newly deleted/;
cmp_ok($deleted // 0, '>', 0, 'vacuum unlinked emptied bucket pages');
is($primary->safe_psql('postgres', "SELECT live_entries FROM drift_index_stats('items_idx')"), '3000', 'deleted entries are gone');
same_answers('after delete and vacuum');

my $size = $primary->safe_psql('postgres', "SELECT pg_relation_size('items_idx')");
$primary->safe_psql('postgres', "INSERT INTO items SELECT i, $vec FROM generate_series(501, 1100) i");
is($primary->safe_psql('postgres', "SELECT pg_relation_size('items_idx')"), $size, 'freed pages are reused before the index grows');
same_answers('after reusing freed pages');

$primary->safe_psql('postgres', 'REINDEX INDEX items_idx');
same_answers('after REINDEX');

# The standby's index scans agree with exact search when every bucket is probed.
for my $q (@queries[0 .. 2]) {
    my $s = $standby->safe_psql('postgres',
        "SET enable_seqscan = off; SET drift.probes = 3; SELECT string_agg(id::text, ',') FROM (SELECT id FROM items ORDER BY v <-> '$q' LIMIT 10) s");
    is($s, exact_ids($primary, 'items', $q, 10), 'standby with every bucket probed equals exact search');
}

done_testing();
