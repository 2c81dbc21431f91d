# Maintenance in both modes. Without shared_preload_libraries: L0 is
# flushed inline past drift.l0_max_rows, and drift_maintain and VACUUM run
# splits, merges and compactions. With it: the janitor does all of it
# alone. Either way, after rows from a shifted distribution arrive, queries
# on the new and the old distribution keep their recall, and the index
# reports what was done.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use DriftTest;

my $dim = 16;
my $a = vector_sql($dim);
my $b = "(SELECT array_agg((4 + sin(i * 0.37 + j * 1.7 + (i % 13) * j))::real ORDER BY j) FROM generate_series(1, $dim) j)";

# Stats as a hash.
sub stats {
    my ($node) = @_;
    my @cols = qw(l0_entries flushes flushed_rows splits merges compactions stolen_rows lists live_entries quantizers_fitted);
    my @vals = split /\|/, $node->safe_psql('postgres', 'SELECT ' . join(',', @cols) . " FROM drift_index_stats('items_idx')");
    my %s;
    @s{@cols} = @vals;
    return \%s;
}

my $q0 = '{' . join(',', (0.5) x $dim) . '}';
for my $mode ('inline', 'janitor') {
    my $node = new_node("maint_$mode", preload => $mode eq 'janitor');
    $node->safe_psql('postgres', "CREATE TABLE items (id int PRIMARY KEY, v real[]);
        INSERT INTO items SELECT i, $a FROM generate_series(1, 6000) i;
        CREATE INDEX items_idx ON items USING drift (v) WITH (lists = 40);");
    $node->append_conf('postgresql.conf', "drift.l0_max_rows = 1000\n");
    $node->reload;
    is(stats($node)->{l0_entries}, 0, "$mode: the build leaves L0 empty");
    $node->safe_psql('postgres', "INSERT INTO items SELECT i, $b FROM generate_series(100001, 106000) i");
    my $s = stats($node);
    if ($mode eq 'inline') {
        cmp_ok($s->{flushes}, '>', 0, "inline: inserting backends flushed L0 ($s->{flushes} flushes)");
        cmp_ok($s->{l0_entries}, '<=', 1000 + 200, "inline: L0 stays near drift.l0_max_rows ($s->{l0_entries})");
        is($s->{splits}, 0, 'inline: inserts do not split buckets');
        cmp_ok($s->{lists}, '>', 40, "inline: flushes gave the shifted rows buckets of their own ($s->{lists} buckets)");
        my $m = $node->safe_psql('postgres', "SELECT flushed_rows, splits FROM drift_maintain('items_idx')");
        my ($flushed, $splits) = split /\|/, $m;
        cmp_ok($splits, '>', 0, "inline: drift_maintain split the overfull buckets ($splits)");
        $node->safe_psql('postgres', "SELECT drift_maintain('items_idx')") for 1 .. 3;
        $node->safe_psql('postgres', 'DELETE FROM items WHERE id BETWEEN 1 AND 2500');
        $node->safe_psql('postgres', 'VACUUM items');
        my $after = stats($node);
        cmp_ok($after->{compactions} + $after->{merges}, '>', 0,
            "inline: VACUUM compacted or merged the emptied buckets ($after->{compactions} compactions, $after->{merges} merges)");
    } else {
        $node->poll_query_until('postgres',
            "SELECT l0_entries = 0 AND splits > 0 FROM drift_index_stats('items_idx')") or die 'the janitor did nothing';
        $node->safe_psql('postgres', 'DELETE FROM items WHERE id BETWEEN 1 AND 2500');
        $node->safe_psql('postgres', 'VACUUM items');
        $node->poll_query_until('postgres', "SELECT l0_entries = 0 FROM drift_index_stats('items_idx')");
        $s = stats($node);
        cmp_ok($s->{flushes}, '>', 0, "janitor: it flushed L0 ($s->{flushes} flushes)");
        cmp_ok($s->{splits}, '>', 0, "janitor: it split buckets ($s->{splits} splits)");
        like(slurp_file($node->logfile), qr/drift janitor: index "items_idx": flushed \d+ rows, \d+ splits/,
            'janitor: its passes are logged');
    }
    $s = stats($node);
    is($s->{live_entries}, $node->safe_psql('postgres', 'SELECT count(*) FROM items'), "$mode: the index holds every live row");
    cmp_ok($s->{lists}, '>', 40, "$mode: buckets were added for the new distribution ($s->{lists})");
    cmp_ok($s->{quantizers_fitted}, '>', 1, "$mode: a quantizer was fitted to the shifted rows' range");
    cmp_ok($s->{stolen_rows}, '>', 0, "$mode: splits took boundary rows from neighbouring buckets ($s->{stolen_rows})");
    my $rb = recall($node, 100001, 106000);
    my $ra = recall($node, 2501, 6000);
    cmp_ok($rb, '>=', 0.9, "$mode: recall\@10 on the shifted distribution ($rb)");
    cmp_ok($ra, '>=', 0.9, "$mode: recall\@10 on the original distribution ($ra)");
    my $buckets = $node->safe_psql('postgres',
        "SELECT count(*), sum(entries), bool_and(radius >= 0), max(moved) > 0 FROM drift_buckets('items_idx')");
    my ($n, $sum, $radius_ok, $moved) = split /\|/, $buckets;
    is($n, $s->{lists}, "$mode: drift_buckets lists every bucket");
    is($sum + $s->{l0_entries}, $s->{live_entries}, "$mode: drift_buckets' sizes add up");
    is($moved, 't', "$mode: centroids moved with their members");
    is($node->safe_psql('postgres', "SELECT string_agg(blkno || ': ' || problem, E'\n') FROM drift_verify('items_idx')"), '',
        "$mode: drift_verify finds the index sound");
    if ($mode eq 'inline') {
        # Buckets emptied by deletes are merged away, and their rows stay findable.
        $node->safe_psql('postgres', "CREATE TABLE few (id int PRIMARY KEY, v real[]);
            INSERT INTO few SELECT i, $a FROM generate_series(1, 3000) i;
            CREATE INDEX few_idx ON few USING drift (v) WITH (lists = 20);
            DELETE FROM few WHERE id % 25 <> 0;
            VACUUM few;");
        my ($lists, $merges) = split /\|/, $node->safe_psql('postgres', "SELECT lists, merges FROM drift_index_stats('few_idx')");
        cmp_ok($merges, '>', 0, "inline: VACUUM merged the emptied buckets ($merges merges, $lists buckets left)");
        is($node->safe_psql('postgres', "SET enable_seqscan = off; SET drift.probes = 32768;
            SELECT count(*) FROM (SELECT id FROM few ORDER BY v <-> '$q0') s"), '120', 'inline: every remaining row is still found');

        # An index built on an empty table is trained by maintenance once L0 holds enough rows.
        # (drift.l0_max_rows is 1000 here: the inserting backend's flush trains it.)
        $node->safe_psql('postgres', "CREATE TABLE late (id int PRIMARY KEY, v real[]);
            CREATE INDEX late_idx ON late USING drift (v);
            INSERT INTO late SELECT i, $a FROM generate_series(1, 500) i;");
        is($node->safe_psql('postgres', "SELECT trained FROM drift_index_stats('late_idx')"), 'f', 'inline: an index built on no rows starts untrained');
        $node->safe_psql('postgres', "SELECT drift_maintain('late_idx')");
        is($node->safe_psql('postgres', "SELECT trained FROM drift_index_stats('late_idx')"), 'f', 'inline: 500 rows are too few to train it');
        $node->safe_psql('postgres', "INSERT INTO late SELECT i, $a FROM generate_series(501, 3000) i");
        my ($trained, $late_lists) = split /\|/, $node->safe_psql('postgres', "SELECT trained, lists FROM drift_index_stats('late_idx')");
        ok($trained eq 't' && $late_lists > 20, "inline: a flush trained it from L0 ($late_lists buckets)");
        $node->safe_psql('postgres', "SELECT drift_maintain('late_idx')");
        is($node->safe_psql('postgres', "SELECT l0_entries FROM drift_index_stats('late_idx')"), '0', 'inline: drift_maintain flushed the rest');
        my $self = 0;
        for my $i (1, 777, 1500, 2999) {
            $self++ if $node->safe_psql('postgres', "SET enable_seqscan = off;
                SELECT id FROM late ORDER BY v <-> (SELECT v FROM late WHERE id = $i) LIMIT 1") eq $i;
        }
        is($self, 4, 'inline: the trained index finds rows by their own vectors');
        is($node->safe_psql('postgres', "SELECT count(*) FROM drift_verify('late_idx')"), '0', 'inline: drift_verify finds the trained index sound');
    }
    $node->stop;
}
done_testing();
