# .drift segments end to end, on real data (MNIST, L2, RaBitQ codes; GloVe,
# cosine, SQ8 codes): an export taken while rows are inserted, deleted,
# vacuumed and maintained holds exactly the rows its snapshot sees, each
# once, bit for bit; `drift-segment verify`, `info` and `dump` read it
# without PostgreSQL; the rows imported into a fresh table and an index
# started from the segment's centroids answer with the recall of an index
# trained on them; ids come from the primary key, a named column or the
# TIDs; a partial index exports its rows only; and every bad file, path,
# option and role gets an ERROR with a hint, leaving no partial file.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use POSIX qw(mkfifo);
use DriftTest;

my $node = new_node('segments', preload => 1);
my $root = $ENV{DRIFT_ROOT} // '.';
my $data = $ENV{DRIFT_DATA} // "$root/../shared/data";
my $tool = `pg_config --bindir`;
chomp $tool;
$tool .= '/drift-segment';
my $dir = PostgreSQL::Test::Utils::tempdir;
my $vecdata = "$root/build/vecdata";

# Loads an fvecs file into table (id int PRIMARY KEY, v real[]).
sub load {
    my ($table, $file) = @_;
    $node->safe_psql('postgres', "CREATE TABLE $table (id int PRIMARY KEY, v real[]);
        COPY $table FROM PROGRAM '$vecdata fvecs $file'");
}
load('mnist', "$data/mnist/mnist_t10k_base9000.fvecs");
load('mnist_q', "$data/mnist/mnist_t10k_query1000.fvecs");
load('glove', "$data/glove50/glove50_base.fvecs");
load('glove_q', "$data/glove50/glove50_query.fvecs");
$node->safe_psql('postgres', "CREATE INDEX mnist_idx ON mnist USING drift (v);
    CREATE INDEX glove_idx ON glove USING drift (v drift_cosine_ops);");
is($node->safe_psql('postgres', "SELECT codes FROM drift_index_stats('mnist_idx')"), 'rabitq', 'MNIST: RaBitQ codes');
is($node->safe_psql('postgres', "SELECT codes FROM drift_index_stats('glove_idx')"), 'sq8', 'GloVe: SQ8 codes');

# Recall@10 of table's drift index at probes 10 over qtable's first 50
# queries, against exact results computed with the index off.
sub recall10 {
    my ($table, $qtable, $op) = @_;
    $node->safe_psql('postgres', "DROP TABLE IF EXISTS truth; SET enable_indexscan = off;
        CREATE TABLE truth AS SELECT q.id, ARRAY(SELECT t.id FROM $table t ORDER BY t.v $op q.v LIMIT 10) AS ids
        FROM $qtable q WHERE q.id < 50");
    return $node->safe_psql('postgres', "SET drift.probes = 10; SET enable_seqscan = off;
        SELECT round(avg((SELECT count(*) FROM unnest(ARRAY(SELECT t.id FROM $table t ORDER BY t.v $op q.v LIMIT 10)) x
                          WHERE x = ANY (tr.ids)))::numeric / 10, 3)
        FROM $qtable q JOIN truth tr USING (id)");
}

# --- An export under concurrent writes and maintenance.
my $script = "$dir/write.sql";
PostgreSQL::Test::Utils::append_to_file($script,
    "\\set id random(1, 8999)\n"
      . "INSERT INTO mnist SELECT id + 100000 + (random() * 1000000)::int, v FROM mnist WHERE id = :id ON CONFLICT DO NOTHING;\n"
      . "DELETE FROM mnist WHERE id = :id - 1;\n");
my $writers = IPC::Run::start(
    [ 'pgbench', '-n', '-c', '1', '-T', '30', '-R', '300', '-f', $script, '-h', $node->host, '-p', $node->port, 'postgres' ],
    '>', \my $wo, '2>', \my $we);
my $maint = IPC::Run::start(
    [ 'bash', '-c', "for i in \$(seq 1 60); do psql -X -q -h '" . $node->host . "' -p " . $node->port
        . " -d postgres -c 'VACUUM mnist' -c \"SELECT drift_maintain('mnist_idx')\" >/dev/null || exit 0; sleep 0.3; done" ],
    '>', \my $mo, '2>', \my $me);
sleep 3;
my $seg = "$dir/mnist.drift";
my $out = $node->safe_psql('postgres', "BEGIN ISOLATION LEVEL REPEATABLE READ;
    CREATE TABLE seen AS SELECT id, v FROM mnist;
    SELECT rows FROM drift_export_segment('mnist_idx', '$seg');
    SELECT count(*) FROM seen;
    COMMIT;");
my ($exported, $seen) = split /\n/, $out;
$writers->finish;
$maint->finish;
is($exported, $seen, "the export under writes holds the rows its snapshot sees ($exported)");
ok(!glob("$seg.partial*"), 'no partial file is left beside the segment');

# The file outside PostgreSQL.
my ($cout, $cerr) = ('', '');
ok(IPC::Run::run([ $tool, 'verify', $seg ], '>', \$cout, '2>', \$cerr), "drift-segment verify: $cout");
IPC::Run::run([ $tool, 'info', $seg ], '>', \$cout, '2>', \$cerr);
like($cout, qr/^rows: $exported$/m, 'drift-segment info: rows');
like($cout, qr/^checksums_ok: true$/m, 'drift-segment info: checksums hold');
my ($ratio) = $cout =~ /^compression_ratio: ([\d.]+)$/m;
cmp_ok($ratio, '>', 2.5, "MNIST's vectors (integers 0..255) compress ${ratio}x");
IPC::Run::run([ $tool, 'dump', $seg, '--format', 'fvecs', '-o', "$dir/dump.fvecs", '--ids', "$dir/dump.ids" ]);
is(-s "$dir/dump.fvecs", $exported * (4 + 4 * 784), 'dump --format fvecs: one record per row');
IPC::Run::run([ $tool, 'dump', $seg, '-o', "$dir/dump.csv" ]);
$node->safe_psql('postgres', "CREATE TABLE from_csv (id int, bucket int, v real[]); COPY from_csv FROM '$dir/dump.csv' CSV");
is($node->safe_psql('postgres', "SELECT count(*) FROM from_csv f FULL JOIN seen s USING (id) WHERE f.v IS DISTINCT FROM s.v"),
    '0', 'dump as CSV loads back into PostgreSQL bit for bit');
is($node->safe_psql('postgres', "SELECT count(*) FROM (SELECT id, v FROM seen EXCEPT SELECT id, v FROM from_csv) d"),
    '0', '... the same rows as the snapshot');

# Import: the rows, each once, bit for bit; their ids; the Bloom filter.
$node->safe_psql('postgres', "CREATE TABLE mnist2 AS SELECT id::int, embedding AS v FROM drift_segment_rows('$seg');
    ALTER TABLE mnist2 ADD PRIMARY KEY (id)");
is($node->safe_psql('postgres', "SELECT count(*) FROM (SELECT id, v FROM seen EXCEPT SELECT id, v FROM mnist2) d"),
    '0', 'every row the snapshot saw is imported');
is($node->safe_psql('postgres', "SELECT count(*) FROM (SELECT id, v FROM mnist2 EXCEPT SELECT id, v FROM seen) d"),
    '0', 'and no other (each once: the primary key holds)');
is($node->safe_psql('postgres', "SELECT bool_and(drift_segment_contains('$seg', id)) FROM (SELECT id FROM seen LIMIT 500) s"),
    't', 'drift_segment_contains finds exported ids');
cmp_ok($node->safe_psql('postgres', "SELECT count(*) FILTER (WHERE drift_segment_contains('$seg', -i)) FROM generate_series(1, 2000) i"),
    '<', 60, 'and rarely claims an absent one');

# An index started from the segment's centroids: no training, the recall
# of an index trained on the same rows into as many buckets.
my $lists = $node->safe_psql('postgres', "SELECT buckets FROM drift_segment_info('$seg')");
$node->safe_psql('postgres', "CREATE TABLE mnist3 AS SELECT * FROM mnist2;
    CREATE INDEX mnist2_idx ON mnist2 USING drift (v) WITH (segment = '$seg');
    CREATE INDEX mnist3_idx ON mnist3 USING drift (v) WITH (lists = $lists);");
is($node->safe_psql('postgres', "SELECT lists || ' ' || codes FROM drift_index_stats('mnist2_idx')"),
    $node->safe_psql('postgres', "SELECT buckets || ' ' || codes FROM drift_segment_info('$seg')"),
    "the index has the segment's buckets and code kind");
my $r_seg = recall10('mnist2', 'mnist_q', '<->');
my $r_trained = recall10('mnist3', 'mnist_q', '<->');
# (the segment's centroids went through the concurrent maintenance above,
# which splits and merges buckets rather than re-running k-means)
cmp_ok($r_seg, '>=', $r_trained - 0.04, "MNIST: recall from the segment's $lists centroids $r_seg, trained $r_trained");
cmp_ok($r_seg, '>=', 0.95, 'MNIST: recall@10 >= 0.95 at probes 10');
# From a freshly trained index's segment, the same index: the same recall.
my $seg3 = "$dir/mnist3.drift";
$node->safe_psql('postgres', "SELECT drift_export_segment('mnist3_idx', '$seg3');
    CREATE TABLE mnist4 AS SELECT * FROM mnist3;
    CREATE INDEX mnist4_idx ON mnist4 USING drift (v) WITH (segment = '$seg3');");
my $r4 = recall10('mnist4', 'mnist_q', '<->');
is($r4, $r_trained, "MNIST: an index started from a trained index's segment has its recall ($r4)");

# Cosine, SQ8, ids from a named column.
my $gseg = "$dir/glove.drift";
# (a stored generated column: the table is rewritten and its index rebuilt)
$node->safe_psql('postgres', "ALTER TABLE glove ADD COLUMN ext bigint GENERATED ALWAYS AS (id * 10 + 3) STORED;
    ALTER TABLE glove ADD COLUMN maybe int;");
is($node->safe_psql('postgres', "SELECT rows FROM drift_export_segment('glove_idx', '$gseg', 'ext')"), '4545', 'GloVe exported');
is($node->safe_psql('postgres', "SELECT ids || ' ' || id_column || ' ' || metric || ' ' || codes FROM drift_segment_info('$gseg')"),
    'column ext cosine sq8', 'GloVe segment: ids from the named column, cosine, SQ8');
is($node->safe_psql('postgres', "SELECT count(*) FROM drift_segment_rows('$gseg') s JOIN glove g ON g.ext = s.id AND g.v = s.embedding"),
    '4545', 'GloVe rows come back exactly, the table\'s values (not normalized)');
$node->safe_psql('postgres', "CREATE TABLE glove2 AS SELECT (id - 3) / 10 AS id, embedding AS v FROM drift_segment_rows('$gseg');
    CREATE TABLE glove3 AS SELECT * FROM glove2;
    CREATE INDEX ON glove2 USING drift (v drift_cosine_ops) WITH (segment = '$gseg');");
$lists = $node->safe_psql('postgres', "SELECT buckets FROM drift_segment_info('$gseg')");
$node->safe_psql('postgres', "CREATE INDEX ON glove3 USING drift (v drift_cosine_ops) WITH (lists = $lists);");
$r_seg = recall10('glove2', 'glove_q', '<=>');
$r_trained = recall10('glove3', 'glove_q', '<=>');
cmp_ok($r_seg, '>=', $r_trained - 0.02, "GloVe: recall from the segment's centroids $r_seg, trained $r_trained");

# pgvector's types (when pgvector is installed): a halfvec index re-ranking
# from the table exports the column's values; they import into a vector
# column whose index starts from the segment.
SKIP: {
    skip 'pgvector is not installed', 4
      unless $node->safe_psql('postgres', "SELECT count(*) FROM pg_available_extensions WHERE name = 'vector'");
    $node->safe_psql('postgres', "CREATE EXTENSION drift_vector CASCADE;
        CREATE TABLE gh (id int PRIMARY KEY, h halfvec(50));
        INSERT INTO gh SELECT id, v::vector::halfvec FROM glove;
        CREATE INDEX gh_idx ON gh USING drift (h drift_halfvec_cosine_ops) WITH (rerank = heap);");
    my $hseg = "$dir/gh.drift";
    is($node->safe_psql('postgres', "SELECT rows FROM drift_export_segment('gh_idx', '$hseg')"), '4545', 'a halfvec index exported');
    is($node->safe_psql('postgres', "SELECT count(*) FROM drift_segment_rows('$hseg') s JOIN gh USING (id)
        WHERE s.embedding::vector::halfvec = gh.h"), '4545', 'its rows come back as the column\'s values');
    $node->safe_psql('postgres', "CREATE TABLE gv AS SELECT id::int, embedding::vector(50) AS v FROM drift_segment_rows('$hseg');
        CREATE INDEX gv_idx ON gv USING drift (v drift_vector_cosine_ops) WITH (segment = '$hseg');");
    is($node->safe_psql('postgres', "SELECT lists FROM drift_index_stats('gv_idx')"),
        $node->safe_psql('postgres', "SELECT buckets FROM drift_segment_info('$hseg')"), 'a vector index starts from it');
    my ($r, $o2, $e2) = $node->psql('postgres', "CREATE TABLE gv2 (id int, v vector(768));
        CREATE INDEX ON gv2 USING drift (v drift_vector_cosine_ops) WITH (segment = '$hseg')");
    like($e2, qr/has 50 dimensions, but the column of index .* has 768/, "an empty table's column type must match the segment");
}

# TIDs as ids, and a partial index's rows only.
$node->safe_psql('postgres', "CREATE TABLE nopk (v real[], n int);
    INSERT INTO nopk SELECT v, id FROM glove;
    CREATE INDEX nopk_idx ON nopk USING drift (v) WHERE n % 2 = 0;");
my $tseg = "$dir/nopk.drift";
is($node->safe_psql('postgres', "SELECT rows FROM drift_export_segment('nopk_idx', '$tseg')"), '2273',
    'a partial index exports the rows its predicate takes');
is($node->safe_psql('postgres', "SELECT count(*) FROM drift_segment_rows('$tseg') s
    JOIN nopk t ON t.ctid = format('(%s,%s)', s.id >> 16, s.id & 65535)::tid AND t.v = s.embedding AND t.n % 2 = 0"),
    '2273', 'ids without a primary key are the rows\' TIDs (block << 16 | offset)');

# An index started from a segment on an empty table is trained at once.
$node->safe_psql('postgres', "CREATE TABLE empty (id int, v real[]);
    CREATE INDEX empty_idx ON empty USING drift (v drift_cosine_ops) WITH (segment = '$gseg');
    INSERT INTO empty SELECT id, v FROM glove LIMIT 300;");
is($node->safe_psql('postgres', "SELECT trained, live_entries FROM drift_index_stats('empty_idx')"), 't|300',
    'an empty table\'s index started from a segment is trained');

# A rebuild whose file is gone trains instead (with a warning); a CREATE
# INDEX naming a missing file fails.
IPC::Run::run([ 'cp', $gseg, "$dir/gone.drift" ]);
$node->safe_psql('postgres', "CREATE TABLE rebuilt AS SELECT id, v FROM glove;
    CREATE INDEX rebuilt_idx ON rebuilt USING drift (v drift_cosine_ops) WITH (segment = '$dir/gone.drift');");
unlink "$dir/gone.drift";
my ($rret, $rout, $rerr) = $node->psql('postgres', 'REINDEX INDEX rebuilt_idx');
is($rret, 0, 'REINDEX of an index whose segment file is gone succeeds');
like($rerr, qr/WARNING:.*does not exist: the index is trained on its rows instead/, '... with a warning');
is($node->safe_psql('postgres', "SELECT trained, live_entries FROM drift_index_stats('rebuilt_idx')"), 't|4545',
    '... and a trained index');
($rret, $rout, $rerr) = $node->psql('postgres', "CREATE INDEX ON rebuilt USING drift (v drift_cosine_ops) WITH (segment = '$dir/gone.drift')");
like($rerr, qr/could not open segment file/, 'CREATE INDEX naming a missing segment file fails');

# --- Bad files: every one an ERROR naming the problem, never a crash.
sub fails_like {
    my ($sql, $re, $name) = @_;
    my ($ret, $o, $e) = $node->psql('postgres', $sql);
    isnt($ret, 0, "$name: fails");
    like($e, $re, "$name: $re");
}
sub copy_file {
    my ($from, $to, $len) = @_;
    open my $in, '<:raw', $from or die;
    local $/;
    my $bytes = <$in>;
    close $in;
    $bytes = substr($bytes, 0, $len) if defined $len;
    open my $o, '>:raw', $to or die;
    print $o $bytes;
    close $o;
    return length $bytes;
}
my $size = copy_file($gseg, "$dir/trunc.drift", (-s $gseg) - 1);
fails_like("SELECT * FROM drift_segment_info('$dir/trunc.drift')", qr/not a valid drift segment: no segment footer.*\n.*HINT/,
    'a truncated file');
copy_file($gseg, "$dir/flip.drift");
{
    open my $f, '+<:raw', "$dir/flip.drift" or die;
    seek $f, 64 + 4545 * 50 + 100, 0;    # inside the cold region
    print $f "\xff\xee";
    close $f;
}
like($node->safe_psql('postgres', "SELECT checksums_ok, problem FROM drift_segment_info('$dir/flip.drift')"),
    qr/^f\|a block of bucket \d+ fails its checksum$/, 'a damaged block: info reports the checksum');
fails_like("SELECT count(*) FROM drift_segment_rows('$dir/flip.drift')", qr/fails its checksum/, 'reading a damaged block');
ok(!IPC::Run::run([ $tool, 'verify', "$dir/flip.drift" ], '>', \$cout, '2>', \$cerr), "drift-segment verify refuses it: $cerr");
copy_file("$root/README.md", "$dir/readme.drift");
fails_like("SELECT * FROM drift_segment_info('$dir/readme.drift')", qr/not a valid drift segment/, 'a file that is no segment');
fails_like("SELECT * FROM drift_segment_rows('$dir/none.drift')", qr/could not open segment file/, 'a missing file');
fails_like("SELECT * FROM drift_segment_info('$dir')", qr/is not a regular file/, 'a directory');
mkfifo("$dir/fifo.drift", 0666) or die;
fails_like("SELECT * FROM drift_segment_info('$dir/fifo.drift')", qr/is not a regular file/, 'a FIFO (no hang)');
fails_like("SELECT * FROM drift_segment_info('mnist.drift')", qr/relative path not allowed/, 'a relative path');
fails_like("CREATE INDEX ON glove2 USING drift (v drift_cosine_ops) WITH (segment = '$seg')",
    qr/exported from an index of l2 distance.*\n.*HINT/, 'a segment of another metric');
fails_like("CREATE INDEX ON glove2 USING drift (v) WITH (segment = '$seg')", qr/has 784 dimensions, but the rows/,
    'a segment of another dimension');
fails_like("CREATE INDEX ON mnist2 USING drift (v) WITH (segment = '$seg', codes = sq8)", qr/holds rabitq codes/,
    'a segment of another code kind');
fails_like("CREATE INDEX ON mnist2 USING drift (v) WITH (segment = '$seg', lists = 10)", qr/both lists and segment/,
    'lists beside segment');
fails_like("CREATE INDEX ON mnist2 USING drift (v) WITH (segment = 'x.drift')", qr/must be an absolute path/,
    'a relative segment option');
fails_like("SELECT drift_export_segment('glove_idx', '$dir/g2.drift', 'v')", qr/not an integer/, 'a non-integer id column');
fails_like("SELECT drift_export_segment('glove_idx', '$dir/g2.drift', 'nope')", qr/does not exist/, 'a missing id column');
fails_like("SELECT drift_export_segment('glove_idx', '$dir/g2.drift', 'maybe')", qr/its id column is NULL/, 'a NULL id');
ok(!glob("$dir/g2.drift*"), 'a failed export leaves no file');
fails_like("SELECT drift_export_segment('glove_idx', '$dir/no/such/dir.drift')", qr/could not create segment file/,
    'an export into a missing directory');
$node->safe_psql('postgres', "CREATE TABLE untrained (id int PRIMARY KEY, v real[]); CREATE INDEX untrained_idx ON untrained USING drift (v);");
fails_like("SELECT drift_export_segment('untrained_idx', '$dir/u.drift')", qr/has no centroids yet/, 'an untrained index');

# --- Roles: reading takes pg_read_server_files, writing pg_write_server_files (and SELECT on the table).
$node->safe_psql('postgres', "CREATE ROLE plain LOGIN; CREATE ROLE reader LOGIN IN ROLE pg_read_server_files;
    CREATE ROLE writer LOGIN IN ROLE pg_write_server_files; GRANT SELECT ON glove TO writer;");
sub as_role {
    my ($role, $sql) = @_;
    return $node->psql('postgres', "SET ROLE $role; $sql");
}
my ($ret, $o, $e) = as_role('plain', "SELECT rows FROM drift_segment_info('$gseg')");
like($e, qr/permission denied to read segment file.*\n.*HINT:.*pg_read_server_files/, 'a plain role may not read a segment');
($ret, $o, $e) = as_role('reader', "SELECT rows FROM drift_segment_info('$gseg')");
is($o, '4545', 'pg_read_server_files may');
($ret, $o, $e) = as_role('reader', "SELECT drift_export_segment('glove_idx', '$dir/r.drift')");
like($e, qr/permission denied to write segment file/, 'but not write one');
($ret, $o, $e) = as_role('writer', "SELECT rows FROM drift_export_segment('mnist_idx', '$dir/w.drift')");
like($e, qr/permission denied/, 'pg_write_server_files needs SELECT on the table too');
($ret, $o, $e) = as_role('writer', "SELECT rows FROM drift_export_segment('glove_idx', '$dir/w.drift')");
is($o, '4545', 'with it, pg_write_server_files may export');

done_testing();
