# Corrupted index pages give an ERROR naming the index, never a crash.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use DriftTest;

my $node = new_node('corrupt');
my $vec = vector_sql(8);
my $q = "'{0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8}'";
for my $t (qw(magic pageid link counts)) {
    $node->safe_psql('postgres', "CREATE TABLE t_$t (id int, v real[]);
        INSERT INTO t_$t SELECT i, $vec FROM generate_series(1, 2000) i;
        CREATE INDEX t_${t}_idx ON t_$t USING drift (v) WITH (lists = 4);");
}
my $blcksz = $node->safe_psql('postgres', 'SHOW block_size');
$node->safe_psql('postgres', 'CHECKPOINT');  # the files hold every page from here on

# Overwrites bytes at offset of block blk of an index's main fork.
sub poke {
    my ($index, $blk, $offset, $bytes) = @_;
    my $path = $node->data_dir . '/' . $node->safe_psql('postgres', "SELECT pg_relation_filepath('$index')");
    return sub {
        open(my $fh, '+<', $path) or die "open $path: $!";
        binmode $fh;
        seek($fh, $blk * $blcksz + $offset, 0) or die;
        print $fh $bytes;
        close $fh;
    };
}

# The first block of a given drift page type (special space, 16 bytes: next u32, chain u32, type u16, id u16).
sub first_block_of_type {
    my ($index, $type) = @_;
    my $path = $node->data_dir . '/' . $node->safe_psql('postgres', "SELECT pg_relation_filepath('$index')");
    open(my $fh, '<', $path) or die;
    binmode $fh;
    my $blk = 0;
    while (read($fh, my $page, $blcksz) == $blcksz) {
        my ($next, $chain, $ptype) = unpack('L L S', substr($page, $blcksz - 16, 10));
        return $blk if $ptype == $type;
        $blk++;
    }
    die "no page of type $type";
}

my @pokes = (
    # the metapage's magic number (first field after the 24-byte page header)
    poke('t_magic_idx', 0, 24, pack('L', 0xDEADBEEF)),
    # a bucket page's page ID
    poke('t_pageid_idx', first_block_of_type('t_pageid_idx', 4), $blcksz - 6, pack('S', 0x1234)),
    # the directory's chain link points far outside the index
    poke('t_link_idx', first_block_of_type('t_link_idx', 4), $blcksz - 16, pack('L', 999999)),
    # a bucket page claims more slots than fit
    poke('t_counts_idx', first_block_of_type('t_counts_idx', 4), 24 + 4, pack('S', 65000)),
);
$node->stop;
$_->() for @pokes;
$node->start;

my %found = (magic => qr/wrong magic/, pageid => qr/drift page ID/, link => qr/outside the index/, counts => qr/capacity/);
for my $t (qw(magic pageid link counts)) {
    like($node->safe_psql('postgres', "SELECT string_agg(problem, '; ') FROM drift_verify('t_${t}_idx')"), $found{$t},
        "$t: drift_verify reports it");
    my ($ret, $out, $err) = $node->psql('postgres',
        "SET enable_seqscan = off; SET drift.probes = 4; SELECT id FROM t_$t ORDER BY v <-> $q LIMIT 5");
    isnt($ret, 0, "$t: the query fails");
    like($err, qr/ERROR:  drift index "t_${t}_idx" is corrupt/, "$t: with an ERROR naming the index");
    like($err, qr/HINT:  REINDEX the index/, "$t: and a hint");
    # (a statement timeout turns a hang into a failure)
    ($ret, $out, $err) = $node->psql('postgres', "SET statement_timeout = '30s'; INSERT INTO t_$t SELECT i, $vec FROM generate_series(1, 50) i");
    $ret == 0 || like($err, qr/is corrupt/, "$t: an insert either succeeds or reports the corruption");
    is($node->safe_psql('postgres', 'SELECT 1'), '1', "$t: the server is still up");
}

($_, my $out, my $err) = $node->psql('postgres', "SELECT * FROM drift_index_stats('t_magic_idx')");
like($err, qr/is corrupt/, 'drift_index_stats reports the corrupt metapage');

# REINDEX repairs a corrupted index.
$node->safe_psql('postgres', 'REINDEX INDEX t_pageid_idx');
is($node->safe_psql('postgres', "SET enable_seqscan = off; SELECT count(*) FROM (SELECT id FROM t_pageid ORDER BY v <-> $q) s"),
    $node->safe_psql('postgres', 'SELECT count(*) FROM t_pageid'), 'REINDEX repairs it');
is($node->safe_psql('postgres', "SELECT count(*) FROM drift_verify('t_pageid_idx')"), '0', 'and drift_verify agrees');

my $log = slurp_file($node->logfile);
unlike($log, qr/terminated by signal|server process .* was terminated/, 'no backend crashed');
$node->stop;
done_testing();
