# While clients insert, delete ranges, VACUUM (which unlinks emptied bucket
# pages and runs maintenance) and call drift_maintain (flushes, splits,
# merges, compactions, neighbour stealing), every index scan returns each
# row visible to its snapshot exactly once, and top-10 answers with every
# bucket probed match exact search. Without shared_preload_libraries: L0 is
# also flushed inline by the inserting backends.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use DriftTest;

my $node = new_node('concurrency');
my $vec = vector_sql(16);
$node->safe_psql('postgres', "CREATE TABLE items (id serial PRIMARY KEY, v real[]);
    INSERT INTO items (v) SELECT $vec FROM generate_series(1, 4000) i;
    CREATE INDEX items_idx ON items USING drift (v) WITH (lists = 4, max_bucket_size = 1500);
    ALTER SYSTEM SET drift.l0_max_rows = 500; SELECT pg_reload_conf();");

my $dir = PostgreSQL::Test::Utils::tempdir;
PostgreSQL::Test::Utils::append_to_file("$dir/insert.sql",
    "INSERT INTO items (v) SELECT array_agg((random() * 2 - 1)::real) FROM generate_series(1, 16);\n");
# Deletes of 3000 consecutive ids leave buckets with many dead entries, so
# the vacuums compact and merge buckets while scans walk the chains.
PostgreSQL::Test::Utils::append_to_file("$dir/delete.sql",
    "SELECT greatest(max(id) - 6000, 1) AS top FROM items \\gset\n\\set a random(1, :top)\n"
      . "DELETE FROM items WHERE id BETWEEN :a AND :a + 3000;\n");
my @clients;
for my $script ('insert.sql', 'insert.sql', 'delete.sql') {
    # Inserts are rate-limited too: the table stays small enough for the
    # vacuums to come round often, whatever the machine's speed.
    my $rate = $script eq 'delete.sql' ? [ '-R', '4' ] : [ '-R', '3000' ];
    push @clients, IPC::Run::start(
        [ 'pgbench', '-n', '-c', '1', '-T', '22', @$rate, '-f', "$dir/$script", '-h', $node->host, '-p', $node->port, 'postgres' ],
        '>', \my $o, '2>', \my $e);
}
my $vacuum_log = '';
push @clients, IPC::Run::start(
    [ 'bash', '-c', "end=\$((SECONDS + 21)); while [ \$SECONDS -lt \$end ]; do psql -X -q -h '" . $node->host . "' -p "
        . $node->port . " -d postgres -c 'VACUUM (VERBOSE, INDEX_CLEANUP ON) items'; sleep 0.3; done" ],
    '>', \my $vo, '2>', \$vacuum_log);
push @clients, IPC::Run::start(
    [ 'bash', '-c', "end=\$((SECONDS + 21)); while [ \$SECONDS -lt \$end ]; do psql -X -q -h '" . $node->host . "' -p "
        . $node->port . " -d postgres -c \"SELECT drift_maintain('items_idx')\"; sleep 0.2; done" ],
    '>', \my $mo, '2>', \my $me);

# Each check: one REPEATABLE READ snapshot, the index's full ordered scan
# and top-10 against a sequential scan's answers. Every bucket is probed and
# one batch re-ranks every candidate: rows come in exact order only within
# a batch, and rows deleted but not yet vacuumed (invisible to the snapshot)
# can push a top-10 row into a later batch, which would test the batch
# boundary instead of the concurrency.
my ($checks, $bad_full, $dup, $bad_top) = (0, 0, 0, 0);
my $q = $node->safe_psql('postgres', "SELECT $vec FROM (SELECT 11 AS i) s");
my $deadline = time() + 20;
while (time() < $deadline) {
    my $out = $node->safe_psql('postgres', "BEGIN ISOLATION LEVEL REPEATABLE READ;
        SET LOCAL enable_seqscan = off; SET LOCAL drift.probes = 32768; SET LOCAL drift.rerank = 1000000;
        SELECT count(*), count(DISTINCT id), md5(string_agg(id::text, ',' ORDER BY id))
          FROM (SELECT id FROM items ORDER BY v <-> '$q') s;
        SELECT string_agg(id::text, ',') FROM (SELECT id FROM items ORDER BY v <-> '$q' LIMIT 10) s;
        SET LOCAL enable_seqscan = on; SET LOCAL enable_indexscan = off;
        SELECT count(*), count(*), md5(string_agg(id::text, ',' ORDER BY id)) FROM items;
        SELECT string_agg(id::text, ',') FROM (SELECT id FROM items ORDER BY v <-> '$q', id LIMIT 10) s;
        COMMIT;");
    my ($idx, $idx_top, $seq, $seq_top) = split /\n/, $out;
    my ($n, $distinct) = split /\|/, $idx;
    $checks++;
    $dup++ if $n != $distinct;
    $bad_full++ if $idx ne $seq;
    $bad_top++ if $idx_top ne $seq_top;
    diag("index: $idx\nseq:   $seq") if $idx ne $seq && $bad_full < 3;
}
$_->finish for @clients;

cmp_ok($checks, '>=', 20, "$checks snapshots checked under concurrent inserts, deletes and vacuums");
is($dup, 0, 'no scan returned a row twice');
is($bad_full, 0, 'every scan returned exactly the rows of its snapshot');
is($bad_top, 0, 'every top-10 matched exact search');
my ($flushes, $splits, $merges, $compactions) = split /\|/,
    $node->safe_psql('postgres', "SELECT flushes, splits, merges, compactions FROM drift_index_stats('items_idx')");
cmp_ok($flushes, '>', 0, "L0 was flushed during the checks ($flushes flushes)");
cmp_ok($splits, '>', 0, "buckets were split during the checks ($splits splits)");
cmp_ok($merges + $compactions, '>', 0, "buckets were merged or compacted during the checks ($merges merges, $compactions compactions)");

# With every client gone, a VACUUM that does not skip index cleanup (as
# PostgreSQL may when few pages have dead rows) leaves exactly the live rows.
my ($ret, $out, $err) = $node->psql('postgres', 'VACUUM (VERBOSE, INDEX_CLEANUP ON) items');
my $rows = $node->safe_psql('postgres', 'SELECT count(*) FROM items');
my $live = $node->safe_psql('postgres', "SELECT live_entries FROM drift_index_stats('items_idx')");
is($live, $rows, 'the index holds exactly the live rows') or diag($err);
is($node->safe_psql('postgres', "SELECT string_agg(blkno || ': ' || problem, E'\n') FROM drift_verify('items_idx')"), '',
    'drift_verify finds the index sound after the churn');
my $inserted = $node->safe_psql('postgres', "SELECT last_value FROM items_id_seq");
cmp_ok($inserted, '>', 8000, "the clients inserted rows ($inserted ids used)");

$node->stop;
done_testing();
