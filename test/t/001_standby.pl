# A streaming standby replays index build, inserts, deletes, vacuum, the
# janitor's flushes, splits, merges and compactions, drift_maintain and
# REINDEX, and answers like the primary: for an index of each code kind,
# and one that re-ranks from the table.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use DriftTest;

my $primary = PostgreSQL::Test::Cluster->new('primary');
$primary->init(allows_streaming => 1);
$primary->append_conf('postgresql.conf', "shared_preload_libraries = 'drift'\ndrift.janitor_naptime = 100\ndrift.l0_flush_rows = 0\n");
# The standby checks every page its replay of drift's (generic) WAL produces
# against the primary's image of it, byte for byte.
$primary->append_conf('postgresql.conf', "wal_consistency_checking = 'generic'\n");
$primary->start;
$primary->safe_psql('postgres', 'CREATE EXTENSION drift');
$primary->backup('base');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'base', has_streaming => 1);
$standby->start;

my $vec = vector_sql(16);
my %options = (sq8 => 'codes = sq8', rabitq => 'codes = rabitq', heap => 'codes = rabitq, rerank = heap');
my @kinds = sort keys %options;
my @queries = map { my $i = $_ * 97 + 5; $primary->safe_psql('postgres', "SELECT $vec FROM (SELECT $i AS i) s") } 1 .. 8;

# Runs sql with TABLE replaced by each kind's table.
sub each_kind {
    my ($sql) = @_;
    for my $k (@kinds) {
        (my $s = $sql) =~ s/TABLE/items_$k/g;
        $primary->safe_psql('postgres', $s);
    }
}

# After each step: the janitor settles, the standby catches up and gives
# the primary's answers.
sub same_answers {
    my ($step) = @_;
    settle($primary, "items_${_}_idx") for @kinds;
    $primary->wait_for_catchup($standby, 'replay');
    for my $k (@kinds) {
        for my $q (@queries) {
            my $p = index_ids($primary, "items_$k", $q, 10);
            my $s = index_ids($standby, "items_$k", $q, 10);
            is($s, $p, "$step, $k: standby answers like the primary");
        }
        my $stats = "SELECT live_entries, dead_entries, pages, lists, codes FROM drift_index_stats('items_${k}_idx')";
        is($standby->safe_psql('postgres', $stats), $primary->safe_psql('postgres', $stats), "$step, $k: same index statistics");
    }
}

for my $k (@kinds) {
    $primary->safe_psql('postgres', "CREATE TABLE items_$k (id int PRIMARY KEY, v real[]);
        INSERT INTO items_$k SELECT i, $vec FROM generate_series(1, 3000) i;
        CREATE INDEX items_${k}_idx ON items_$k USING drift (v) WITH ($options{$k}, lists = 2, max_bucket_size = 800);");
}
same_answers('after build and the janitor\'s splits');

each_kind("INSERT INTO TABLE SELECT i, $vec FROM generate_series(3001, 5000) i");
same_answers('after inserts');

# Deletes leave dead entries; VACUUM removes them, and the janitor it wakes
# compacts and merges buckets.
each_kind('DELETE FROM TABLE WHERE id BETWEEN 501 AND 2500');
each_kind('VACUUM TABLE');
for my $k (@kinds) {
    is($primary->safe_psql('postgres', "SELECT live_entries FROM drift_index_stats('items_${k}_idx')"), '3000', "$k: deleted entries are gone");
    ok($primary->poll_query_until('postgres', "SELECT compactions + merges > 0 FROM drift_index_stats('items_${k}_idx')"),
        "$k: the janitor compacted or merged buckets");
}
same_answers('after delete and vacuum');

# Rows from a shifted distribution: flushed and split by the janitor, then a drift_maintain pass.
my $shifted = "(SELECT array_agg((3 + sin(i * 0.37 + j * 1.7 + (i % 11) * j))::real ORDER BY j) FROM generate_series(1, 16) j)";
each_kind("INSERT INTO TABLE SELECT i, $shifted FROM generate_series(10001, 14000) i");
push @queries, map { my $i = $_ * 89 + 10001; $primary->safe_psql('postgres', "SELECT $shifted FROM (SELECT $i AS i) s") } 1 .. 4;
same_answers('after the janitor handled shifted rows');
for my $k (@kinds) {
    cmp_ok($primary->safe_psql('postgres', "SELECT splits FROM drift_index_stats('items_${k}_idx')"), '>', 1, "$k: the janitor split buckets");
}
each_kind("SELECT drift_maintain('TABLE_idx')");
same_answers('after drift_maintain');

each_kind('REINDEX INDEX TABLE_idx');
same_answers('after REINDEX');

# The standby's index scans agree with exact search when every bucket is probed.
for my $k (@kinds) {
    for my $q (@queries[0 .. 2]) {
        my $s = $standby->safe_psql('postgres',
            "SET enable_seqscan = off; SET drift.probes = 32768; SELECT string_agg(id::text, ',') FROM (SELECT id FROM items_$k ORDER BY v <-> '$q' LIMIT 10) s");
        is($s, exact_ids($primary, "items_$k", $q, 10), "$k: standby with every bucket probed equals exact search");
    }
}

done_testing();
