# The memtable graph (shared_preload_libraries): the janitor indexes L0 rows
# in an HNSW graph in shared memory, scans search it and brute-force only
# the rows it does not hold yet, and the graph is rebuilt from the L0 pages
# after a restart, after a crash and on a hot standby. A full graph makes
# the janitor flush L0.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use DriftTest;

my $dim = 16;
my $a = vector_sql($dim);
my $b = "(SELECT array_agg((4 + sin(i * 0.37 + j * 1.7 + (i % 13) * j))::real ORDER BY j) FROM generate_series(1, $dim) j)";

my $primary = new_node('mem_primary', preload => 1, allows_streaming => 1,
    conf => "drift.l0_flush_rows = 1000000\ndrift.l0_max_rows = 1000000\ndrift.memtable_mem = 4MB\ndrift.l0_idle_flush = 0\n");
$primary->backup('base');
my $standby = PostgreSQL::Test::Cluster->new('mem_standby');
$standby->init_from_backup($primary, 'base', has_streaming => 1);
$standby->start;

# L0 rows and how many of them the graph holds.
sub l0 {
    my ($node) = @_;
    return split /\|/, $node->safe_psql('postgres', "SELECT l0_entries, l0_in_graph FROM drift_index_stats('items_idx')");
}

# Waits until node's graph holds every L0 row.
sub graph_caught_up {
    my ($node, $what) = @_;
    ok($node->poll_query_until('postgres', "SELECT l0_in_graph = l0_entries FROM drift_index_stats('items_idx')"),
        "$what: the graph holds every L0 row");
}

# B rows among the 10 a query near row 100500 returns with drift.ef_search = ef.
sub b_rows_at_ef {
    my ($node, $ef) = @_;
    my $q = $node->safe_psql('postgres', "SELECT v FROM items WHERE id = 100500");
    return $node->safe_psql('postgres', "SET enable_seqscan = off; SET drift.ef_search = $ef;
        SELECT count(*) FILTER (WHERE id > 100000) FROM (SELECT id FROM items ORDER BY v <-> '$q' LIMIT 10) s");
}

$primary->safe_psql('postgres', "CREATE TABLE items (id int PRIMARY KEY, v real[]);
    INSERT INTO items SELECT i, $a FROM generate_series(1, 4000) i;
    CREATE INDEX items_idx ON items USING drift (v) WITH (lists = 20);
    INSERT INTO items SELECT i, $b FROM generate_series(100001, 105000) i;");
graph_caught_up($primary, 'primary');
my ($rows, $in_graph) = l0($primary);
is($rows, 5000, 'the janitor keeps L0 below drift.l0_flush_rows unflushed');
is($primary->safe_psql('postgres', "SELECT flushes FROM drift_index_stats('items_idx')"), '0', 'no flush happened');
my $r = recall($primary, 100001, 105000);
cmp_ok($r, '>=', 0.9, "recall\@10 on L0 rows through the graph ($r)");
# With drift.ef_search = 1 the graph gives one L0 row; no bucket row
# farther than it comes before the rest of L0 (a pass over the rows the
# graph did not give), so all ten still come from L0.
is(b_rows_at_ef($primary, 1), '10', 'with drift.ef_search = 1 the rest of L0 comes before any farther bucket row');
is(b_rows_at_ef($primary, 40), '10', 'with drift.ef_search = 40 all ten come from L0');

# Rows the graph does not hold yet are found by the scan's pass over the rest of L0.
$primary->append_conf('postgresql.conf', "drift.janitor_naptime = 1h\n");
$primary->reload;
sleep 2;    # a janitor round under way ends
$primary->safe_psql('postgres', "INSERT INTO items SELECT i, $b FROM generate_series(105001, 105300) i");
($rows, $in_graph) = l0($primary);
cmp_ok($in_graph, '<', $rows, "fresh rows are not in the graph yet ($in_graph of $rows)");
my ($found, $total) = (0, 0);
for my $i (105001, 105100, 105200, 105300) {
    my $q = $primary->safe_psql('postgres', "SELECT v FROM items WHERE id = $i");
    $found++ if (split /,/, index_ids($primary, 'items', $q, 1))[0] == $i;
    $total++;
}
is($found, $total, 'each fresh row is the first answer to its own vector');
$primary->append_conf('postgresql.conf', "drift.janitor_naptime = 100\n");
$primary->reload;
graph_caught_up($primary, 'after fresh inserts');

# Deleted rows, once VACUUM removed them, are never returned, even if
# their heap slots are reused by new rows; every answer is in exact order.
$primary->safe_psql('postgres', "DELETE FROM items WHERE id BETWEEN 100001 AND 101000; VACUUM items;
    INSERT INTO items SELECT i, $a FROM generate_series(200001, 201000) i;");
graph_caught_up($primary, 'after VACUUM');
$r = recall($primary, 101001, 105000);
cmp_ok($r, '>=', 0.9, "recall\@10 after VACUUM and reinserts ($r)");

# The standby builds its own graph from the replayed L0 pages and answers alike.
$primary->wait_for_catchup($standby, 'replay');
graph_caught_up($standby, 'standby');
for my $i (101500, 102500, 104500) {
    my $q = $primary->safe_psql('postgres', "SELECT v FROM items WHERE id = $i");
    is(index_ids($standby, 'items', $q, 10), index_ids($primary, 'items', $q, 10), "standby answers like the primary (row $i)");
}

# After a restart and after a crash, the graph is rebuilt from L0 and no row is lost.
for my $how ('restart', 'crash') {
    if ($how eq 'restart') { $primary->restart; } else { crash_restart($primary); }
    graph_caught_up($primary, "after a $how");
    ($rows, $in_graph) = l0($primary);
    cmp_ok($in_graph, '>', 0, "after a $how: $in_graph rows in the graph");
    is($primary->safe_psql('postgres', "SET enable_seqscan = off; SET drift.probes = 32768;
        SELECT count(*) FROM (SELECT id FROM items ORDER BY v <-> (SELECT v FROM items WHERE id = 1)) s"),
        $primary->safe_psql('postgres', 'SELECT count(*) FROM items'), "after a $how: the index returns every row");
    $r = recall($primary, 101001, 105000);
    cmp_ok($r, '>=', 0.9, "after a $how: recall\@10 on L0 rows ($r)");
}

# 4 MB hold fewer rows than this: the full graph makes the janitor flush L0.
$primary->safe_psql('postgres', "INSERT INTO items SELECT i, $b FROM generate_series(300001, 315000) i");
ok($primary->poll_query_until('postgres', "SELECT flushes > 0 AND l0_entries < 15000 FROM drift_index_stats('items_idx')"),
    'a full graph makes the janitor flush L0');
graph_caught_up($primary, 'after the flush');

# An L0 no row has reached for drift.l0_idle_flush is flushed whatever its size.
$primary->safe_psql('postgres', "INSERT INTO items SELECT i, $b FROM generate_series(400001, 400500) i");
graph_caught_up($primary, 'before going idle');
$primary->append_conf('postgresql.conf', "drift.l0_idle_flush = 1s\n");
$primary->reload;
ok($primary->poll_query_until('postgres', "SELECT l0_entries = 0 FROM drift_index_stats('items_idx')"),
    'an idle L0 is flushed');

# drift.janitor = off stops the janitor (its nap is still 100 ms); once on,
# an insert that finds L0 past drift.l0_flush_rows wakes it, long before its
# nap time (now an hour) is up.
my $flushes = sub { $primary->safe_psql('postgres', "SELECT flushes FROM drift_index_stats('items_idx')") };
$primary->append_conf('postgresql.conf', "drift.janitor = off\ndrift.l0_flush_rows = 300\n");
$primary->reload;
sleep 1;    # the launcher's current round ends and it reads the settings
my $before = $flushes->();
$primary->safe_psql('postgres', "INSERT INTO items SELECT i, $b FROM generate_series(500001, 502000) i");
sleep 2;
is($flushes->(), $before, 'with drift.janitor = off nothing flushes L0');
$primary->append_conf('postgresql.conf', "drift.janitor = on\ndrift.janitor_naptime = 1h\n");
$primary->reload;    # the reload itself wakes the launcher for one round
ok($primary->poll_query_until('postgres', "SELECT flushes > $before FROM drift_index_stats('items_idx')"),
    'with drift.janitor = on again, the janitor flushes L0');
sleep 1;    # that round ends; the launcher naps for an hour
$before = $flushes->();
$primary->safe_psql('postgres', "INSERT INTO items SELECT i, $b FROM generate_series(502001, 504000) i");
ok($primary->poll_query_until('postgres', "SELECT flushes > $before FROM drift_index_stats('items_idx')"),
    'an insert past drift.l0_flush_rows wakes the napping janitor, which flushes L0');

# Another session's temporary drift index: only that session can read it, so
# the janitor leaves it alone (its inserts flush it inline).
my $log_offset = -s $primary->logfile;
my $bg = $primary->background_psql('postgres');
$bg->query_safe("SET client_min_messages = warning; CREATE TEMP TABLE tmp_items (id int, v real[]);
    CREATE INDEX tmp_idx ON tmp_items USING drift (v);
    INSERT INTO tmp_items SELECT i, $a FROM generate_series(1, 2000) i;");
sleep 2;    # about twenty janitor rounds
unlike(slurp_file($primary->logfile, $log_offset), qr/ERROR/, 'the janitor reports no error with a temporary drift index around');
is($bg->query_safe("SET enable_seqscan = off; SELECT id FROM tmp_items ORDER BY v <-> (SELECT v FROM tmp_items WHERE id = 7) LIMIT 1"),
    '7', 'the temporary index answers its own session');
$bg->quit;
is($primary->safe_psql('postgres', "SELECT string_agg(blkno || ': ' || problem, E'\n') FROM drift_verify('items_idx')"), '',
    'drift_verify finds the index sound');
$standby->stop;
$primary->stop;
done_testing();
