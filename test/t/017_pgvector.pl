# drift on pgvector's vector and halfvec columns, as on real[]: a streaming
# standby replays build, inserts, a drift (flushes, splits, seeding),
# deletes and VACUUM, and answers like the primary; every row survives a
# kill -9; 3,072-dimensional halfvec indexes (half-precision storage) find
# their neighbours; the vector index and the wide one re-rank from the
# table (rerank = heap); pg_dump and restore bring the indexes back; an index
# made by drift 0.1 keeps working after ALTER EXTENSION drift UPDATE; and a
# mismatched operator class is refused.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use DriftTest;

my $primary = new_node('vec_primary', preload => 1, allows_streaming => 1, conf => "wal_consistency_checking = 'generic'\n");
$primary->safe_psql('postgres', 'CREATE EXTENSION drift_vector CASCADE');
$primary->backup('base');
my $standby = PostgreSQL::Test::Cluster->new('vec_standby');
$standby->init_from_backup($primary, 'base', has_streaming => 1);
$standby->start;

my $dim = 32;
# Row i of a distribution moved by shift, as pgvector text.
sub vec_sql {
    my ($shift) = @_;
    return "(SELECT '[' || string_agg((sin(i * 0.37 + j * 1.7 + (i % 11) * j) + $shift)::real::text, ',' ORDER BY j) || ']' "
      . "FROM generate_series(1, $dim) j)";
}

# Buckets the index scans of these checks probe (they check what maintenance
# keeps, not tuning: with the default 10, recall once the drift below has
# split the buckets came within 0.02 of the threshold, and once under it).
my $probes = 16;

# Ids of the 10 nearest rows of table by column col and operator op to the
# row `id`'s vector, through the index or by exact search.
sub nearest {
    my ($node, $table, $col, $op, $id, $exact) = @_;
    my $set = $exact ? 'SET enable_indexscan = off; SET enable_bitmapscan = off' : "SET enable_seqscan = off; SET drift.probes = $probes";
    return $node->safe_psql('postgres', "$set; SELECT string_agg(id::text, ',') FROM (SELECT id FROM $table "
          . "ORDER BY $col $op (SELECT $col FROM $table WHERE id = $id)" . ($exact ? ', id' : '') . ' LIMIT 10) s');
}

# Mean recall@10 through the index against exact search for the given query rows.
sub recall_of {
    my ($node, $table, $col, $op, @ids) = @_;
    my ($hits, $total) = (0, 0);
    for my $id (@ids) {
        my %exact = map { $_ => 1 } split /,/, nearest($node, $table, $col, $op, $id, 1);
        $hits += grep { $exact{$_} } split /,/, nearest($node, $table, $col, $op, $id, 0);
        $total += 10;
    }
    return $hits / $total;
}

$primary->safe_psql('postgres', "CREATE TABLE items (id int PRIMARY KEY, v vector($dim), h halfvec($dim));
    INSERT INTO items SELECT i, v::vector, v::halfvec FROM (SELECT i, " . vec_sql(0) . " AS v FROM generate_series(1, 4000) i) s;
    CREATE INDEX items_v ON items USING drift (v) WITH (lists = 8, max_bucket_size = 1000, rerank = heap);
    CREATE INDEX items_h ON items USING drift (h drift_halfvec_cosine_ops) WITH (lists = 8, max_bucket_size = 1000);");
is($primary->safe_psql('postgres', "SELECT metric || ' ' || dimension FROM drift_index_stats('items_h')"), "cosine $dim",
    'a halfvec cosine index');

my @probe = map { $_ * 397 + 3 } 0 .. 9;
# After each step: recall against exact search, and the standby answers like the primary.
sub check_step {
    my ($step, @ids) = @_;
    settle($primary, $_) for 'items_v', 'items_h';
    cmp_ok(recall_of($primary, 'items', 'v', '<->', @ids), '>=', 0.9, "$step: vector recall\@10 >= 0.9");
    cmp_ok(recall_of($primary, 'items', 'h', '<=>', @ids), '>=', 0.9, "$step: halfvec cosine recall\@10 >= 0.9");
    $primary->wait_for_catchup($standby, 'replay');
    my ($same, $n) = (0, 0);
    for my $id (@ids) {
        for my $c ([ 'v', '<->' ], [ 'h', '<=>' ]) {
            $same++ if nearest($standby, 'items', @$c, $id, 0) eq nearest($primary, 'items', @$c, $id, 0);
            $n++;
        }
    }
    is($same, $n, "$step: the standby answers like the primary");
    for my $index ('items_v', 'items_h') {
        is($primary->safe_psql('postgres', "SELECT count(*) FROM drift_verify('$index')"), '0', "$step: $index verifies");
    }
}
check_step('after build', @probe);

# A drift: rows of a shifted distribution (flushed, seeded and split by the
# janitor), then the oldest deleted and VACUUM.
$primary->safe_psql('postgres', 'INSERT INTO items SELECT i, v::vector, v::halfvec FROM (SELECT i, '
      . vec_sql(3) . ' AS v FROM generate_series(4001, 9000) i) s');
check_step('after the drift', @probe, map { 4001 + $_ * 499 } 0 .. 9);
cmp_ok($primary->safe_psql('postgres', "SELECT splits + flushes FROM drift_index_stats('items_v')"), '>', 1,
    'maintenance flushed and split the vector index');
$primary->safe_psql('postgres', 'DELETE FROM items WHERE id <= 2000; VACUUM items');
check_step('after delete and VACUUM', map { 2001 + $_ * 699 } 0 .. 9);
my $full = 'SET enable_seqscan = off; SET drift.strict_order = off; SET drift.rerank = 1000000';
is($primary->safe_psql('postgres', "$full; SELECT count(*), count(DISTINCT id) FROM "
      . "(SELECT id FROM items ORDER BY v <-> (SELECT v FROM items WHERE id = 2001)) s"), '7000|7000',
    'a full index scan returns every row once');

# A filtered query (iterative scan: the index keeps probing until LIMIT rows
# pass the filter) gives 10 matching rows, nearly the exact ones.
my ($fhits, $frows) = (0, 0);
for my $id (map { 2001 + $_ * 699 } 0 .. 9) {
    my $order = "ORDER BY v <-> (SELECT v FROM items WHERE id = $id)";
    my @got = split /,/, $primary->safe_psql('postgres', "SET enable_seqscan = off; SET drift.probes = 2; "
          . "SELECT string_agg(id::text, ',') FROM (SELECT id FROM items WHERE id % 7 = 0 $order LIMIT 10) s");
    my %exact = map { $_ => 1 } split /,/, $primary->safe_psql('postgres', 'SET enable_indexscan = off; '
          . "SELECT string_agg(id::text, ',') FROM (SELECT id FROM items WHERE id % 7 = 0 $order, id LIMIT 10) s");
    $frows += grep { $_ % 7 == 0 } @got;
    $fhits += grep { $exact{$_} } @got;
}
is($frows, 100, 'filtered queries return 10 matching rows each');
cmp_ok($fhits / 100, '>=', 0.9, 'filtered recall@10 >= 0.9');

# kill -9: every committed row is still found, through both indexes.
$primary->safe_psql('postgres', 'INSERT INTO items SELECT i, v::vector, v::halfvec FROM (SELECT i, '
      . vec_sql(1) . ' AS v FROM generate_series(9001, 9500) i) s');
crash_restart($primary);
for my $c ([ 'v', '<->' ], [ 'h', '<=>' ]) {
    is($primary->safe_psql('postgres', "$full; SELECT count(*) FROM "
          . "(SELECT id FROM items ORDER BY $c->[0] $c->[1] (SELECT $c->[0] FROM items WHERE id = 9001)) s"), '7500',
        "after kill -9 the $c->[0] index finds every row");
}

# 3,072 dimensions (OpenAI's large embeddings) as halfvec: stored in half
# precision, re-ranked from the table (out-of-line values); vector is
# refused past 2,000 with a hint.
$primary->safe_psql('postgres', "CREATE TABLE wide (id int PRIMARY KEY, e halfvec(3072));
    INSERT INTO wide SELECT i, (SELECT array_agg(sin(i * 0.11 + j * 0.7 + (i % 13) * j)::real ORDER BY j)
        FROM generate_series(1, 3072) j)::halfvec FROM generate_series(1, 1500) i;
    CREATE INDEX wide_idx ON wide USING drift (e) WITH (lists = 10, rerank = heap);");
is($primary->safe_psql('postgres', "SELECT dimension || ' ' || live_entries FROM drift_index_stats('wide_idx')"), '3072 1500',
    'a 3,072-dimensional halfvec index');
$primary->safe_psql('postgres', "INSERT INTO wide SELECT id + 1500, e FROM wide WHERE id <= 300");
$primary->safe_psql('postgres', "SELECT drift_maintain('wide_idx')");
cmp_ok(recall_of($primary, 'wide', 'e', '<->', map { $_ * 137 + 1 } 0 .. 9), '>=', 0.9, '3,072-d halfvec recall@10 >= 0.9');
is($primary->safe_psql('postgres', "SELECT count(*) FROM drift_verify('wide_idx')"), '0', 'the 3,072-d index verifies');
# The janitor (which runs without a snapshot of its own) compacts the
# buckets VACUUM left dead entries in, reading their rows' out-of-line
# values from the table.
$primary->safe_psql('postgres', 'DELETE FROM wide WHERE id % 3 = 0; VACUUM wide');
settle($primary, 'wide_idx');
cmp_ok($primary->safe_psql('postgres', "SELECT compactions + merges FROM drift_index_stats('wide_idx')"), '>', 0,
    'the janitor rewrote buckets of the 3,072-d index from the table');
is($primary->safe_psql('postgres', "SELECT live_entries = (SELECT count(*) FROM wide) FROM drift_index_stats('wide_idx')"), 't',
    'and kept every row');
cmp_ok(recall_of($primary, 'wide', 'e', '<->', map { $_ * 135 + 1 } 0 .. 9), '>=', 0.9, 'recall@10 >= 0.9 after the rewrite');
my ($ret, $out, $err) = $primary->psql('postgres', "CREATE TABLE w2 (e vector(2048));
    INSERT INTO w2 SELECT array_fill(1, ARRAY[2048])::vector; CREATE INDEX ON w2 USING drift (e)");
like($err, qr/more than the 2000 a drift index of single precision supports.*HINT:.*precision = half/s,
    'a 2,048-d vector index is refused with a hint');
($ret, $out, $err) = $primary->psql('postgres', 'CREATE INDEX ON w2 USING drift (e) WITH (precision = half)');
is($ret, 0, 'and built WITH (precision = half)');

# pg_dump and restore into a new database: the indexes come back and answer.
my $dump = $primary->basedir . '/dump.sql';
$primary->command_ok([ 'pg_dump', '-d', $primary->connstr('postgres'), '-f', $dump ], 'pg_dump');
$primary->safe_psql('postgres', 'CREATE DATABASE restored');
$primary->command_ok([ 'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', $primary->connstr('restored'), '-f', $dump ],
    'restore');
my $q = "SET enable_seqscan = off; SELECT string_agg(id::text, ',') FROM (SELECT id FROM items ORDER BY v <-> "
  . "(SELECT v FROM items WHERE id = 5001) LIMIT 10) s";
is($primary->safe_psql('restored', $q), $primary->safe_psql('postgres', $q), 'the restored vector index answers the same');
like($primary->safe_psql('restored', "SET enable_seqscan = off; EXPLAIN (COSTS OFF) SELECT id FROM wide ORDER BY e <-> (SELECT e FROM wide LIMIT 1) LIMIT 5"),
    qr/Index Scan using wide_idx/, 'the restored halfvec index is used');

# An index made by drift 0.1 (no support function 2): a clear error until
# ALTER EXTENSION drift UPDATE, then the same pages answer again.
$primary->safe_psql('postgres', 'CREATE DATABASE old');
$primary->safe_psql('old', "CREATE EXTENSION drift VERSION '0.1'; CREATE TABLE t (id int, v real[]);
    INSERT INTO t SELECT i, (SELECT array_agg(sin(i * 0.37 + j)::real) FROM generate_series(1, 8) j) FROM generate_series(1, 2000) i;");
($ret, $out, $err) = $primary->psql('old', 'CREATE INDEX t_idx ON t USING drift (v)');
like($err, qr/lacks drift's support function 2.*HINT:.*ALTER EXTENSION drift UPDATE/s, 'drift 0.1 catalogs: a clear error');
$primary->safe_psql('old', 'ALTER EXTENSION drift UPDATE');
is($primary->safe_psql('old', "SELECT extversion FROM pg_extension WHERE extname = 'drift'"), '0.5', 'updated to 0.5');
is($primary->safe_psql('old', "SELECT count(*) FROM pg_proc WHERE proname IN ('drift_evaluate_recall', 'drift_export_segment')"), '2',
    'the update adds drift_evaluate_recall and the segment functions');
$primary->safe_psql('old', 'CREATE INDEX t_idx ON t USING drift (v)');
is($primary->safe_psql('old', "SET enable_seqscan = off; SELECT string_agg(id::text, ',') FROM "
      . "(SELECT id FROM t ORDER BY v <-> (SELECT v FROM t WHERE id = 5) LIMIT 3) s"),
    $primary->safe_psql('old', "SET enable_indexscan = off; SELECT string_agg(id::text, ',') FROM "
      . "(SELECT id FROM t ORDER BY v <-> (SELECT v FROM t WHERE id = 5), id LIMIT 3) s"), 'and the index answers after the update');

# The memtable graph over L0 rows of a halfvec index (a node whose janitor
# keeps L0 unflushed, as in test/t/007_memtable.pl): it holds the rows,
# widened from half precision, and a query answers from it: with
# drift.ef_search = 1 it gives one L0 row, and the rest of L0 comes before
# any farther bucket row.
my $mem = new_node('vec_mem', preload => 1,
    conf => "drift.l0_flush_rows = 1000000\ndrift.l0_max_rows = 1000000\ndrift.memtable_mem = 4MB\ndrift.l0_idle_flush = 0\n");
$mem->safe_psql('postgres', "CREATE EXTENSION drift_vector CASCADE; CREATE TABLE mem (id int PRIMARY KEY, h halfvec($dim));
    INSERT INTO mem SELECT i, v::halfvec FROM (SELECT i, " . vec_sql(0) . " AS v FROM generate_series(1, 2000) i) s;
    CREATE INDEX mem_idx ON mem USING drift (h) WITH (lists = 8);
    INSERT INTO mem SELECT i, v::halfvec FROM (SELECT i, " . vec_sql(4) . " AS v FROM generate_series(100001, 103000) i) s;");
ok($mem->poll_query_until('postgres', "SELECT l0_entries = 3000 AND l0_in_graph = 3000 FROM drift_index_stats('mem_idx')"),
    'the graph holds every L0 row of the halfvec index');
cmp_ok(recall_of($mem, 'mem', 'h', '<->', map { 100001 + $_ * 293 } 0 .. 9), '>=', 0.9, 'recall@10 on L0 rows through the graph');
is($mem->safe_psql('postgres', "SET enable_seqscan = off; SET drift.ef_search = 1; SELECT count(*) FILTER (WHERE id > 100000) "
      . "FROM (SELECT id FROM mem ORDER BY h <-> (SELECT h FROM mem WHERE id = 101500) LIMIT 10) s"), '10',
    'with drift.ef_search = 1 all ten still come from L0');

# An operator class for another type is refused, and so is one whose
# support function reads another type.
($ret, $out, $err) = $primary->psql('postgres', 'CREATE INDEX ON items USING drift (v drift_halfvec_l2_ops)');
like($err, qr/operator class "drift_halfvec_l2_ops" does not accept data type vector/, 'a halfvec class on a vector column is refused');
($ret, $out, $err) = $primary->psql('postgres', "CREATE OPERATOR CLASS wrong_ops FOR TYPE real[] USING drift AS
    OPERATOR 1 <-> (real[], real[]) FOR ORDER BY float_ops, FUNCTION 1 drift_l2_distance(real[], real[]),
    FUNCTION 2 drift_vector_l2_support(internal);
    CREATE TABLE r (v real[]); INSERT INTO r VALUES ('{1,2}'); CREATE INDEX ON r USING drift (v wrong_ops)");
like($err, qr/support function 2 reads vector, but the operator class is for type real\[\]/, 'a mismatched support function is refused');
is($primary->safe_psql('postgres', "SELECT amvalidate(oid) FROM pg_opclass WHERE opcname = 'wrong_ops'"), 'f',
    'and amvalidate flags it');

$mem->stop;
$standby->stop;
$primary->stop;
done_testing();
