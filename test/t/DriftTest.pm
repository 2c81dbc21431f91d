# Helpers shared by drift's Perl TAP tests.
package DriftTest;

use strict;
use warnings;
use Exporter 'import';
use Test::More;

our @EXPORT = qw(new_node vector_sql exact_ids index_ids recall crash_restart settle);

# A started node with drift created in database postgres. With
# preload => 1, drift is in shared_preload_libraries and its janitor wakes
# every 100 ms and flushes L0 on every pass, unless conf (extra
# postgresql.conf lines) says otherwise.
sub new_node {
    my ($name, %params) = @_;
    my $preload = delete $params{preload};
    my $conf = delete $params{conf} // '';
    my $node = PostgreSQL::Test::Cluster->new($name);
    $node->init(%params);
    $node->append_conf('postgresql.conf', "shared_buffers = 128MB\n");
    $node->append_conf('postgresql.conf',
        "shared_preload_libraries = 'drift'\ndrift.janitor_naptime = 100\ndrift.l0_flush_rows = 0\n") if $preload;
    $node->append_conf('postgresql.conf', $conf);
    $node->start;
    $node->safe_psql('postgres', 'CREATE EXTENSION drift');
    return $node;
}

# SQL for a deterministic DIM-dimensional vector of row i (an expression in i).
sub vector_sql {
    my ($dim) = @_;
    return "(SELECT array_agg(sin(i * 0.37 + j * 1.7 + (i % 11) * j)::real ORDER BY j) FROM generate_series(1, $dim) j)";
}

# Ids of the k rows nearest to query q through the index (seq scan off).
sub index_ids {
    my ($node, $table, $q, $k) = @_;
    return $node->safe_psql('postgres',
        "SET enable_seqscan = off; SELECT string_agg(id::text, ',') FROM "
          . "(SELECT id FROM $table ORDER BY v <-> '$q' LIMIT $k) s");
}

# Ids of the k rows nearest to query q by exact search.
sub exact_ids {
    my ($node, $table, $q, $k) = @_;
    return $node->safe_psql('postgres',
        "SET enable_indexscan = off; SELECT string_agg(id::text, ',') FROM "
          . "(SELECT id FROM $table ORDER BY v <-> '$q', id LIMIT $k) s");
}

# Mean recall@10 of the index on table items against exact search, over
# 20 queries: the vectors of rows lo..hi, evenly spaced.
sub recall {
    my ($node, $lo, $hi) = @_;
    my ($hits, $total) = (0, 0);
    for my $i (map { $lo + int(($hi - $lo) * $_ / 20) } 0 .. 19) {
        my $q = $node->safe_psql('postgres', "SELECT v FROM items WHERE id = $i");
        my %exact = map { $_ => 1 } split /,/, exact_ids($node, 'items', $q, 10);
        $hits += grep { $exact{$_} } split /,/, index_ids($node, 'items', $q, 10);
        $total += 10;
    }
    return $hits / $total;
}

# Waits until the janitor has nothing left to do on index: L0 empty and no
# maintenance counter moving for a second.
sub settle {
    my ($node, $index) = @_;
    my $stats = "SELECT l0_entries, flushes, splits, merges, compactions FROM drift_index_stats('$index')";
    my $last = '';
    for (1 .. 300) {
        my $now = $node->safe_psql('postgres', $stats);
        return if $now eq $last && $now =~ /^0\|/;
        $last = $now;
        sleep 1;
    }
    die "the janitor did not settle on $index";
}

# kill -9 of the postmaster and every server process, then a restart (crash
# recovery from WAL). Where nothing reaps the killed postmaster (a container
# whose PID 1 is not an init), its zombie keeps the PID in postmaster.pid
# alive, so a zombie's pid and socket lock files are removed before the restart.
sub crash_restart {
    my ($node) = @_;
    my $pidfile = $node->data_dir . '/postmaster.pid';
    open(my $fh, '<', $pidfile) or die "no $pidfile";
    my $pid = <$fh>;
    close $fh;
    chomp $pid;
    # Stopped first, the postmaster forks no child between the listing of
    # its children and the kill (a child missed would outlive it, holding
    # its shared memory, and the restart would fail).
    kill 'STOP', $pid;
    my @children = split /\s+/, `pgrep -P $pid`;
    kill 'KILL', $pid, grep { /^\d+$/ } @children;
    $node->{_pid} = undef;
    for (1 .. 100) {
        my @alive = grep { -e "/proc/$_" && !zombie($_) } ($pid, grep { /^\d+$/ } @children);
        last unless @alive;
        select(undef, undef, undef, 0.1);
    }
    if (zombie($pid)) {
        unlink $pidfile;
        unlink $node->host . '/.s.PGSQL.' . $node->port . '.lock';
    }
    $node->start;
}

# True if process pid exists only as a zombie.
sub zombie {
    my ($pid) = @_;
    open(my $st, '<', "/proc/$pid/status") or return 0;
    my ($state) = grep { /^State:/ } <$st>;
    close $st;
    return defined $state && $state =~ /\bZ\b/;
}

1;
