# What drift keeps in shared memory about its scans (drift preloaded):
# recent hits heat a bucket for drift.lambda, on a primary and on a standby;
# sampled scans are re-checked by the janitor, whose measured recall
# drift_index_stats shows, within drift.recall_sample_budget.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use DriftTest;

my $primary = new_node('primary', preload => 1, allows_streaming => 1,
    conf => "drift.recall_sample_rate = 1\ndrift.recall_sample_budget = 100000000\n");

# Two clusters of 1,000 rows, A around the origin and B around (10, 0, 0, 0).
$primary->safe_psql('postgres', q{
    CREATE TABLE h (id int PRIMARY KEY, v real[]);
    INSERT INTO h SELECT i, ARRAY[(CASE WHEN i <= 1000 THEN 0 ELSE 10 END) + sin(i * 1.3)::real / 2,
                                  sin(i * 1.7)::real / 2, sin(i * 2.3)::real / 2, sin(i * 3.1)::real / 2]
      FROM generate_series(1, 2000) i;
    CREATE INDEX h_idx ON h USING drift (v) WITH (lists = 2);
});
$primary->backup('b');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'b', has_streaming => 1);
$standby->append_conf('postgresql.conf', "drift.recall_sample_rate = 1\ndrift.recall_sample_budget = 100000000\n");
$standby->start;
$primary->wait_for_catchup($standby);

# The first row of the query nearer A than B, with one probe and lambda = 10.
my $midway = "SET enable_seqscan = off; SET drift.probes = 1; SET drift.lambda = 10; "
  . "SELECT id FROM h ORDER BY v <-> '{4.5,0,0,0}' LIMIT 1";
# Scans whose first rows come from B.
my $near_b = "SET enable_seqscan = off; SET drift.probes = 1; "
  . "SELECT count(*) FROM generate_series(1, 20) g, LATERAL (SELECT id FROM h ORDER BY v <-> ARRAY[10, g / 20.0, 0, 0]::real[] LIMIT 10) s";
for my $node ($primary, $standby) {
    my $name = $node->name;
    ok($node->safe_psql('postgres', $midway) <= 1000, "$name: no hits yet: A, the nearest, answers");
    $node->safe_psql('postgres', $near_b);
    ok($node->safe_psql('postgres', $midway) > 1000, "$name: after scans hit B, lambda sends the query to B");
    ok($node->safe_psql('postgres', $midway =~ s/lambda = 10/lambda = 0/r) <= 1000, "$name: lambda = 0: A again");
}

# Each server samples its own scans (its janitor re-checks them).
for my $node ($primary, $standby) {
    my $ok = 0;
    for (1 .. 50) {
        $ok = $node->safe_psql('postgres', "SELECT recall_samples > 0 FROM drift_index_stats('h_idx')") eq 't';
        last if $ok;
        usleep(100_000);
    }
    ok($ok, $node->name . ': its scans were sampled and re-checked');
}

# Recall sampling: every scan of items (uniform in 16 dimensions) is kept
# (rate 1) and the janitor re-checks it with its settings (one probe)
# against the exact answer.
my $uniform = sub { "(SELECT array_agg(((hashint4($_[0] * 16 + j) & 1023) / 1024.0)::real ORDER BY j) FROM generate_series(1, 16) j)" };
$primary->safe_psql('postgres', 'CREATE TABLE items (id int PRIMARY KEY, v real[]); '
      . 'INSERT INTO items SELECT i, ' . $uniform->('i') . ' FROM generate_series(1, 5000) i; '
      . 'CREATE INDEX items_idx ON items USING drift (v) WITH (lists = 50)');
my $query = $uniform->('-g');
my $queries = "SET enable_seqscan = off; SET drift.probes = 1; "
  . "SELECT count(*) FROM generate_series(1, 40) g, LATERAL (SELECT id FROM items ORDER BY v <-> $query LIMIT 10) s";
my $samples = "SELECT recall_samples FROM drift_index_stats('items_idx')";
is($primary->safe_psql('postgres', $samples), '0', 'no sample of items before any scan');
for (1 .. 20) {
    $primary->safe_psql('postgres', $queries);
    last if $primary->safe_psql('postgres', $samples) >= 20;
    usleep(200_000);
}
cmp_ok($primary->safe_psql('postgres', $samples), '>=', 20, 'the janitor re-checked sampled scans');
my $expected = $primary->safe_psql('postgres', "SET drift.probes = 1; SELECT avg(e.recall) FROM generate_series(1, 40) g, "
      . "drift_evaluate_recall('items_idx', $query, 10) e");
my $measured = $primary->safe_psql('postgres', "SELECT sampled_recall FROM drift_index_stats('items_idx')");
cmp_ok($expected, '<', 0.8, "one probe misses rows ($expected)");
cmp_ok(abs($measured - $expected), '<', 0.2, "the sampled recall ($measured) follows the scans' recall ($expected)");

# The budget bounds the work: none left, no sample is kept.
$primary->append_conf('postgresql.conf', "drift.recall_sample_budget = 0\n");
$primary->reload;
usleep(500_000);
my $before = $primary->safe_psql('postgres', $samples);
$primary->safe_psql('postgres', $queries) for 1 .. 3;
usleep(500_000);
is($primary->safe_psql('postgres', $samples), $before, 'with no budget left, no scan is sampled');

# Rate 0: no scan is sampled, budget or not.
$primary->append_conf('postgresql.conf', "drift.recall_sample_budget = 100000000\ndrift.recall_sample_rate = 0\n");
$primary->reload;
usleep(500_000);
$primary->safe_psql('postgres', $queries) for 1 .. 3;
usleep(500_000);
is($primary->safe_psql('postgres', $samples), $before, 'with rate 0, no scan is sampled');

# REINDEX makes another index: its sampled recall starts afresh.
$primary->safe_psql('postgres', 'REINDEX INDEX items_idx');
is($primary->safe_psql('postgres', "SELECT recall_samples FROM drift_index_stats('items_idx')"), '0',
    'REINDEX starts the sampled recall afresh');

done_testing();
