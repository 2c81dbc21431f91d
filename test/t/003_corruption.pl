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
# Cases of links and metapage fields that a build once looped on or trusted:
# a bucket page linking to itself, the L0 tail linking to itself (300 rows
# in L0 on two pages: without the janitor L0 stays until drift.l0_max_rows),
# nbuckets 0 and dim 0 on a trained metapage with an intact directory.
for my $t (qw(hotself l0self nbuckets dim)) {
    $node->safe_psql('postgres', "CREATE TABLE t_$t (id int, v real[]);
        INSERT INTO t_$t SELECT i, $vec FROM generate_series(1, 2000) i;
        CREATE INDEX t_${t}_idx ON t_$t USING drift (v) WITH (lists = 4);");
}
$node->safe_psql('postgres', "INSERT INTO t_l0self SELECT i, $vec FROM generate_series(2001, 2300) i");
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

# One block of an index, read from its file (the server is running, after
# CHECKPOINT: the file holds every page).
sub read_block {
    my ($index, $blk) = @_;
    my $path = $node->data_dir . '/' . $node->safe_psql('postgres', "SELECT pg_relation_filepath('$index')");
    open(my $fh, '<', $path) or die "open $path: $!";
    binmode $fh;
    seek($fh, $blk * $blcksz, 0) or die;
    read($fh, my $page, $blcksz) == $blcksz or die "short read of block $blk of $path";
    close $fh;
    return $page;
}

# DriftMetaPageData right after the 24-byte page header: magic u32 (24),
# version u32 (28), dim u32 (32), metric u16 (36), flags u16 (38),
# nbuckets u32 (40), ..., l0_head u32 (64), l0_tail u32 (68). The offsets
# are checked against the bytes of a real metapage before they are patched.
my %meta_off = (magic => 24, dim => 32, flags => 38, nbuckets => 40, l0_head => 64, l0_tail => 68);
for my $t (qw(hotself l0self nbuckets dim)) {
    my $meta = read_block("t_${t}_idx", 0);
    is(unpack('L', substr($meta, $meta_off{magic}, 4)), 0x44524946, "$t: the metapage's magic is at offset 24");
    is(unpack('L', substr($meta, $meta_off{dim}, 4)), 8, "$t: dim is at offset 32");
    is(unpack('S', substr($meta, $meta_off{flags}, 2)) & 1, 1, "$t: the trained flag is at offset 38");
    is(unpack('L', substr($meta, $meta_off{nbuckets}, 4)), 4, "$t: nbuckets is at offset 40");
}
# Special space: next u32 at blcksz - 16, then chain u32, type u16, page ID u16.
my $hot = first_block_of_type('t_hotself_idx', 4);
my $l0_tail = unpack('L', substr(read_block('t_l0self_idx', 0), $meta_off{l0_tail}, 4));
my $l0_head = unpack('L', substr(read_block('t_l0self_idx', 0), $meta_off{l0_head}, 4));
{
    my $page = read_block('t_l0self_idx', $l0_tail);
    my ($next, $chain, $type) = unpack('L L S', substr($page, $blcksz - 16, 10));
    is($type, 6, "l0self: the metapage's l0_tail (block $l0_tail) is an L0 page");
    is($next, 0xFFFFFFFF, 'l0self: and the last of its chain');
    isnt($l0_head, $l0_tail, 'l0self: L0 has more than one page');
    is(unpack('L', substr(read_block('t_hotself_idx', $hot), $blcksz - 16, 4)), 0xFFFFFFFF,
        "hotself: bucket page $hot ends its chain");
}
push @pokes,
    # a bucket page's next link points to itself
    poke('t_hotself_idx', $hot, $blcksz - 16, pack('L', $hot)),
    # the L0 tail page's next link points to itself
    poke('t_l0self_idx', $l0_tail, $blcksz - 16, pack('L', $l0_tail)),
    # the metapage says there are no buckets; the directory still holds 4
    poke('t_nbuckets_idx', 0, $meta_off{nbuckets}, pack('L', 0)),
    # the metapage of a trained index says dim 0
    poke('t_dim_idx', 0, $meta_off{dim}, pack('L', 0));
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

# Runs one statement under statement_timeout = 10s with a 30 s guard around
# psql: a hang (the guard fires: the backend ignores the cancel) kills the
# server and restarts it, and is reported as 'hang'. Returns a hash: status
# (ok, corrupt, error, timeout, hang, lost), sqlstate, message, out.
sub run_op {
    my ($sql) = @_;
    my $timed_out = 0;
    my ($ret, $out, $err) = $node->psql('postgres',
        "SET statement_timeout = '10s'; SET enable_seqscan = off; SET drift.probes = 100;\n$sql",
        extra_params => [ '-v', 'VERBOSITY=verbose' ], timeout => 30, timed_out => \$timed_out);
    if ($timed_out) {
        crash_restart($node);
        return { status => 'hang', message => 'no answer within 30 s (statement_timeout ignored)', out => '' };
    }
    return { status => 'ok', out => $out, message => '' } if $ret == 0;
    my ($state, $msg) = $err =~ /(?:ERROR|FATAL|PANIC):\s+([0-9A-Z]{5}): ([^\n]*)/;
    $state //= '';
    $msg //= $err;
    if ($ret == 2 || $err =~ /connection to server was lost|server closed the connection/) {
        # (the test cluster runs with restart_after_crash = off)
        sleep 1;
        $node->start unless -e $node->data_dir . '/postmaster.pid';
        $node->poll_query_until('postgres', 'SELECT true');
        return { status => 'lost', message => $err, out => '' };
    }
    return { status => 'timeout', sqlstate => $state, message => $msg, out => '' } if $state eq '57014';
    return { status => 'corrupt', sqlstate => $state, message => $msg, out => '' }
        if $msg =~ /is corrupt/ && $state =~ /^XX00[12]$/;
    return { status => 'error', sqlstate => $state, message => $msg, out => '' };
}

sub describe { my ($r) = @_; return $r->{status} . ($r->{message} ne '' ? ": " . ($r->{sqlstate} // '') . " $r->{message}" : ''); }

# Each case: drift_verify reports it; every operation either succeeds or
# fails with an "is corrupt" ERROR (XX001/XX002), within the timeout and
# without a crash; `must_fail` operations fail that way.
my %must_fail = (
    hotself  => [qw(stats scan)],
    l0self   => [qw(scan insert)],
    nbuckets => [qw(scan maintain)],
    dim      => [qw(scan)],);
for my $t (qw(hotself l0self nbuckets dim)) {
    my $logpos = -s $node->logfile;
    my $r = run_op("SELECT string_agg(problem, '; ') FROM drift_verify('t_${t}_idx')");
    ok($r->{status} eq 'ok' && $r->{out} ne '', "$t: drift_verify reports a problem (" . describe($r) . ": '$r->{out}')");
    my %ops = (
        stats    => "SELECT * FROM drift_index_stats('t_${t}_idx')",
        scan     => "SELECT id FROM t_$t ORDER BY v <-> $q LIMIT 5",
        insert   => "INSERT INTO t_$t SELECT i, $vec FROM generate_series(5001, 5050) i",
        maintain => "SELECT * FROM drift_maintain('t_${t}_idx')",
        vacuum   => "VACUUM t_$t",
        verify   => "SELECT count(*) FROM drift_verify('t_${t}_idx')",);
    my %must = map { $_ => 1 } @{ $must_fail{$t} };
    for my $op (qw(stats scan insert maintain vacuum verify)) {
        $r = run_op($ops{$op});
        if ($must{$op}) {
            is($r->{status}, 'corrupt', "$t: $op fails with an 'is corrupt' ERROR (" . describe($r) . ")");
        } else {
            like($r->{status}, qr/^(ok|corrupt)$/, "$t: $op succeeds or reports the corruption (" . describe($r) . ")");
        }
        unlike($r->{message}, qr/floating-point exception/, "$t: $op: no floating-point exception") if $t eq 'dim';
    }
    my $newlog = substr(slurp_file($node->logfile), $logpos);
    unlike($newlog, qr/terminated by signal/, "$t: no backend crashed");
}

# nbuckets 0: after a REINDEX every one of the 2000 rows is found again.
$node->safe_psql('postgres', 'REINDEX INDEX t_nbuckets_idx');
is($node->safe_psql('postgres', "SET enable_seqscan = off; SET drift.probes = 100; "
        . "SELECT count(DISTINCT id) FROM (SELECT id FROM t_nbuckets ORDER BY v <-> $q) s WHERE id <= 2000"),
    '2000', 'nbuckets: after REINDEX all 2000 rows are found through the index');
is($node->safe_psql('postgres', "SELECT count(*) FROM drift_verify('t_nbuckets_idx')"), '0', 'nbuckets: and drift_verify passes');

my $log = slurp_file($node->logfile);
unlike($log, qr/terminated by signal|server process .* was terminated/, 'no backend crashed');
$node->stop;
done_testing();
