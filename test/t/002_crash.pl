# kill -9 of the server, three times, while inserts, deletes, vacuums,
# drift_maintain calls and the janitor's flushes and splits are under way,
# on tables whose indexes keep each kind of code (and one that keeps no
# vectors, re-ranking from the table): after each restart
# every committed row is still found through each index and drift_verify
# passes; an unlogged table's index comes back empty and usable.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use DriftTest;

my $node = new_node('crash', preload => 1, conf => "drift.l0_flush_rows = 300\n");
my $vec = vector_sql(16);
my %options = (sq8 => 'codes = sq8', rabitq => 'codes = rabitq', heap => 'codes = rabitq, rerank = heap');
my @kinds = sort keys %options;
for my $k (@kinds) {
    $node->safe_psql('postgres', "CREATE TABLE items_$k (id bigserial PRIMARY KEY, v real[]);
        INSERT INTO items_$k (v) SELECT $vec FROM generate_series(1, 2000) i;
        CREATE INDEX items_${k}_idx ON items_$k USING drift (v) WITH ($options{$k}, lists = 8, max_bucket_size = 300);");
}
$node->safe_psql('postgres', "CREATE UNLOGGED TABLE scratch (id int, v real[]);
    INSERT INTO scratch SELECT i, $vec FROM generate_series(1, 500) i;
    CREATE INDEX scratch_idx ON scratch USING drift (v);");

# Writers: single-row inserts (L0 pages fill and new ones get linked),
# deletes with vacuums (slots freed, buckets compacted), drift_maintain
# calls, and the janitor flushing, splitting and extending its memtable
# graph (L0 is flushed past 300 rows) every 100 ms.
my $dir = PostgreSQL::Test::Utils::tempdir;
for my $k (@kinds) {
    PostgreSQL::Test::Utils::append_to_file("$dir/insert.sql",
        "INSERT INTO items_$k (v) SELECT array_agg((random() * 2 - 1)::real) FROM generate_series(1, 16);\n");
    PostgreSQL::Test::Utils::append_to_file("$dir/delete.sql",
        "\\set id random(1, 20000)\nDELETE FROM items_$k WHERE id = :id;\n");
}
my $q0 = $node->safe_psql('postgres', "SELECT $vec FROM (SELECT 7 AS i) s");
my $seen = 2000;
for my $round (1 .. 3) {
    my @writers;
    for my $script ('insert.sql', 'insert.sql', 'delete.sql') {
        push @writers, IPC::Run::start(
            [ 'pgbench', '-n', '-c', '1', '-T', '60', '-f', "$dir/$script", '-h', $node->host, '-p', $node->port, 'postgres' ],
            '>', \my $o, '2>', \my $e);
    }
    for my $sql ('VACUUM ' . join(', ', map { "items_$_" } @kinds), 'SELECT ' . join(', ', map { "drift_maintain('items_${_}_idx')" } @kinds)) {
        push @writers, IPC::Run::start(
            [ 'bash', '-c', "for i in \$(seq 1 300); do psql -X -q -h '" . $node->host . "' -p " . $node->port . " -d postgres -c \"$sql\" || exit 0; sleep 0.2; done" ],
            '>', \my $vo, '2>', \my $ve);
    }
    # Let the writers and maintainers run, then crash mid-stream.
    my $want = $seen + 2500;
    $node->poll_query_until('postgres', "SELECT count(*) > $want FROM items_sq8") or die 'writers made no progress';
    crash_restart($node);
    $_->kill_kill for @writers;

    my $rows = $node->safe_psql('postgres', 'SELECT count(*) FROM items_sq8');
    cmp_ok($rows, '>', $seen, "round $round: rows committed before the crash survive ($rows)");
    $seen = $rows;
    for my $k (@kinds) {
        my $items = "items_$k";

        # Every row is returned by a full index scan, once (in any order: with
        # drift.strict_order a row the memtable graph missed, coming late, is skipped).
        my $missing = $node->safe_psql('postgres', "SET enable_seqscan = off; SET drift.probes = 32768; SET drift.strict_order = off;
            SELECT count(*) FROM (SELECT id FROM $items EXCEPT SELECT id FROM (SELECT id FROM $items ORDER BY v <-> '$q0') s) m");
        is($missing, '0', "round $round, $k: a full index scan finds every committed row");
        my $dups = $node->safe_psql('postgres', "SET enable_seqscan = off;
            SELECT count(*) - count(DISTINCT id) FROM (SELECT id FROM $items ORDER BY v <-> '$q0') s");
        is($dups, '0', "round $round, $k: and returns none twice");

        # Every row is found by an exact-match query on its own vector (every
        # bucket probed: this checks presence, not routing).
        my $lost = $node->safe_psql('postgres', "SET enable_seqscan = off; SET drift.probes = 32768;
            SELECT count(*) FROM $items a
             WHERE NOT EXISTS (SELECT 1 FROM (SELECT b.id FROM $items b ORDER BY b.v <-> a.v LIMIT 3) n WHERE n.id = a.id)");
        is($lost, '0', "round $round, $k: every committed row is found by a query on its own vector");
        is($node->safe_psql('postgres', "SELECT string_agg(blkno || ': ' || problem, E'\n') FROM drift_verify('${items}_idx')"),
            '', "round $round, $k: drift_verify finds the recovered index sound");
    }
}
for my $k (@kinds) {
    my $plan = $node->safe_psql('postgres', "SET enable_seqscan = off;
        EXPLAIN (COSTS OFF) SELECT count(*) FROM items_$k a
         WHERE NOT EXISTS (SELECT 1 FROM (SELECT b.id FROM items_$k b ORDER BY b.v <-> a.v LIMIT 3) n WHERE n.id = a.id)");
    like($plan, qr/Index Scan using items_${k}_idx/, "$k: those checks run through the drift index");
    my ($flushes, $splits, $codes) = split /\|/, $node->safe_psql('postgres', "SELECT flushes, splits, codes FROM drift_index_stats('items_${k}_idx')");
    (my $want = $options{$k}) =~ s/^codes = (\w+).*/$1/;
    is($codes, $want, "$k: the index keeps $want codes");
    cmp_ok($flushes, '>', 0, "$k: flushes were under way ($flushes)");
    cmp_ok($splits, '>', 0, "$k: splits were under way ($splits)");

    # The index keeps working after recovery.
    $node->safe_psql('postgres', "INSERT INTO items_$k (id, v) VALUES (-1, '{9,9,9,9,9,9,9,9,9,9,9,9,9,9,9,9}')");
    is($node->safe_psql('postgres', "SET enable_seqscan = off; SELECT id FROM items_$k ORDER BY v <-> '{9,9,9,9,9,9,9,9,9,9,9,9,9,9,9,9}' LIMIT 1"),
        '-1', "$k: inserts after recovery are found");
}

# Unlogged: reset to the init fork, then usable (rows go to L0 first).
is($node->safe_psql('postgres', 'SELECT count(*) FROM scratch'), '0', 'the unlogged table was reset by the crash');
is($node->safe_psql('postgres', "SELECT live_entries FROM drift_index_stats('scratch_idx')"), '0', 'its index was reset from the init fork');
$node->safe_psql('postgres', "INSERT INTO scratch SELECT i, $vec FROM generate_series(1, 300) i");
my $q = $node->safe_psql('postgres', "SELECT $vec FROM (SELECT 123 AS i) s");
is(index_ids($node, 'scratch', $q, 1), '123', 'the unlogged index works after the reset');

$node->stop;
done_testing();
