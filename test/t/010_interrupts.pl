# Interrupts that ask for no cancel do not fail drift's long computations,
# and cancels fail them as cancels.
#
# pg_log_backend_memory_contexts() sets InterruptPending in its target,
# as a cancel does; the target serves it at its next CHECK_FOR_INTERRUPTS
# and goes on. A CREATE INDEX, a REINDEX and a drift_maintain signalled
# that way every 50 ms must succeed. A pg_cancel_backend() in any phase of
# a build, or during drift_maintain's splits, must fail the statement with
# SQLSTATE 57014 ("canceling statement due to user request"), not XX000.
# drift_maintain(0) (no such relation) must not be an internal error.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use DriftTest;

my $rows = $ENV{DRIFT_INTERRUPT_ROWS} // 110000;
my $node = new_node('interrupts');
$node->safe_psql('postgres', "CREATE TABLE t (id int, v real[]);
    INSERT INTO t SELECT i, (SELECT array_agg(random()::real) FROM generate_series(1, 64) j WHERE i > 0)
      FROM generate_series(1, $rows) i;
    CREATE TABLE s (id int, v real[]);
    INSERT INTO s SELECT i, (SELECT array_agg(random()::real) FROM generate_series(1, 64) j WHERE i > 0)
      FROM generate_series(1, 20000) i;");

# Starts SQL in the background in a session named drift_bg, with
# VERBOSITY verbose (errors carry their SQLSTATE).
sub background {
    my ($sql, $out, $err) = @_;
    my $conn = 'host=' . $node->host . ' port=' . $node->port . ' dbname=postgres application_name=drift_bg';
    return IPC::Run::start([ 'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', $conn,
            '-c', '\set VERBOSITY verbose', '-c', $sql ], '>', $out, '2>', $err);
}

# Calls pg_log_backend_memory_contexts on the drift_bg session every 50 ms
# while it runs; returns how many times it was signalled.
sub signal_while_running {
    my ($ret, $out, $err) = $node->psql('postgres', q{DO $$
        DECLARE p int; n int := 0; seen bool := false; t0 timestamptz := clock_timestamp();
        BEGIN
          LOOP
            PERFORM pg_stat_clear_snapshot();
            SELECT pid INTO p FROM pg_stat_activity WHERE application_name = 'drift_bg' AND state = 'active';
            IF p IS NULL THEN
              EXIT WHEN seen OR clock_timestamp() > t0 + interval '30 s';
            ELSE
              seen := true;
              IF pg_log_backend_memory_contexts(p) THEN n := n + 1; END IF;
            END IF;
            PERFORM pg_sleep(0.05);
          END LOOP;
          RAISE NOTICE 'signals: %', n;
        END $$;});
    my ($n) = $err =~ /signals: (\d+)/;
    diag("the signalling loop failed: $err") unless defined $n;
    return $n // 0;
}

# Waits until the drift_bg session is active and, if given, the build is in
# a phase matching phase (LIKE), then cancels it; returns the phase it was
# in, or '' if it ended first.
sub cancel_when {
    my ($phase) = @_;
    my $cond = defined $phase
      ? "EXISTS (SELECT 1 FROM pg_stat_progress_create_index WHERE pid = p AND phase LIKE '$phase')"
      : "clock_timestamp() > t0 + interval '1 s'";
    my ($ret, $out, $err) = $node->psql('postgres', qq{DO \$\$
        DECLARE p int; ph text := ''; seen bool := false; t0 timestamptz;
        BEGIN
          FOR i IN 1 .. 30000 LOOP
            PERFORM pg_stat_clear_snapshot();
            SELECT pid INTO p FROM pg_stat_activity WHERE application_name = 'drift_bg' AND state = 'active';
            IF p IS NULL THEN
              EXIT WHEN seen;
            ELSE
              IF NOT seen THEN t0 := clock_timestamp(); END IF;
              seen := true;
              IF $cond THEN
                SELECT coalesce(phase, 'running') INTO ph FROM pg_stat_activity a
                  LEFT JOIN pg_stat_progress_create_index c USING (pid) WHERE a.pid = p;
                PERFORM pg_cancel_backend(p);
                EXIT;
              END IF;
            END IF;
            PERFORM pg_sleep(0.005);
          END LOOP;
          RAISE NOTICE 'cancelled in: [%]', ph;
        END \$\$;});
    my ($ph) = $err =~ /cancelled in: \[(.*)\]/;
    diag("the cancelling loop failed: $err") unless defined $ph;
    return $ph // '';
}

# The first line of an error (with its SQLSTATE, VERBOSITY verbose).
sub first_error {
    my ($err) = @_;
    my ($line) = $err =~ /^(.*ERROR:.*)$/m;
    return $line // '(no error)';
}

my $live = "SELECT live_entries FROM drift_index_stats('t_idx')";
my $verify = "SELECT string_agg(blkno || ': ' || problem, E'\\n') FROM drift_verify('t_idx')";

# CREATE INDEX and REINDEX while memory-context dumps are asked for.
for my $stmt ('CREATE INDEX t_idx ON t USING drift (v) WITH (lists = 400)', 'REINDEX INDEX t_idx') {
    my ($out, $err) = ('', '');
    my $t0 = time();
    my $h = background($stmt, \$out, \$err);
    my $n = signal_while_running();
    my $ok = $h->finish;
    my $secs = time() - $t0;
    my $what = (split / /, $stmt)[0];
    note("$what: signalled $n times, took about $secs s");
    cmp_ok($n, '>=', 5, "$what was signalled by pg_log_backend_memory_contexts while it ran ($n times)");
    ok($ok && $err !~ /ERROR/, "$what succeeds while memory-context dumps are asked for")
      or diag('it failed with: ' . first_error($err) . "\n$err");
    is($node->safe_psql('postgres', "SELECT count(*) FROM pg_class WHERE relname = 't_idx'") eq '1'
        ? $node->safe_psql('postgres', $live) : 'no index', $rows, "$what: every row is indexed");
}
my $dumps = () = slurp_file($node->logfile) =~ /logging memory contexts of PID/g;
cmp_ok($dumps, '>', 0, "the signalled backends logged their memory contexts ($dumps times)");
is($node->safe_psql('postgres', $verify), '', 'drift_verify finds the rebuilt index sound');

# A cancel in each phase of a build fails it as a cancel (57014).
for my $phase ('%sampling rows%', '%training%', '%assigning%', '%writing%', undef) {
    my ($out, $err) = ('', '');
    my $h = background('CREATE INDEX t_idx2 ON t USING drift (v) WITH (lists = 400)', \$out, \$err);
    my $in = cancel_when($phase);
    my $ok = $h->finish;
    my $label = defined $phase ? $phase : 'after 1 s';
    if ($ok) {
        note("build finished before a cancel in phase $label");
        $node->safe_psql('postgres', 'DROP INDEX t_idx2');
        next;
    }
    like($err, qr/ERROR:\s+57014: canceling statement due to user request/,
        "a build cancelled in phase \"$in\" fails with SQLSTATE 57014") or diag('it failed with: ' . first_error($err));
    unlike($err, qr/XX000/, "a build cancelled in phase \"$in\" is not an internal error (XX000)");
}
is($node->safe_psql('postgres', "SELECT count(*) FROM pg_class WHERE relname = 't_idx2'"), '0',
    'the cancelled builds left no index');

# drift_maintain(0): an invalid relation is a user error, not XX000.
{
    my ($ret, $out, $err) = $node->psql('postgres', "\\set VERBOSITY verbose\nSELECT * FROM drift_maintain(0)");
    isnt($ret, 0, 'drift_maintain(0) fails');
    unlike($err, qr/ERROR:\s+XX000/, 'drift_maintain(0) is not an internal error (XX000): ' . first_error($err));
    note('drift_maintain(0): ' . first_error($err));
}

# drift_maintain splitting one big bucket (every row in one list, then a
# small max_bucket_size): a cancel fails it as a cancel, memory-context
# dumps do not fail it, and it leaves a sound index either way.
$node->safe_psql('postgres', 'CREATE INDEX m_idx ON t USING drift (v) WITH (lists = 1);
    ALTER INDEX m_idx SET (max_bucket_size = 500);
    CREATE INDEX s_idx ON s USING drift (v) WITH (lists = 1);
    ALTER INDEX s_idx SET (max_bucket_size = 1000);');
{
    my ($out, $err) = ('', '');
    my $h = background("SELECT * FROM drift_maintain('m_idx')", \$out, \$err);
    cancel_when(undef);
    my $ok = $h->finish;
    ok(!$ok, 'drift_maintain cancelled after 1 s of splitting fails');
    like($err, qr/ERROR:\s+57014: canceling statement due to user request/,
        'drift_maintain cancelled while splitting fails with SQLSTATE 57014') or diag('it failed with: ' . first_error($err));
    is($node->safe_psql('postgres', "SELECT string_agg(blkno || ': ' || problem, E'\\n') FROM drift_verify('m_idx')"), '',
        'drift_verify finds the index sound after the cancelled maintenance');
}
{
    my ($out, $err) = ('', '');
    my $h = background("SELECT splits FROM drift_maintain('s_idx')", \$out, \$err);
    my $n = signal_while_running();
    my $ok = $h->finish;
    note("drift_maintain: signalled $n times");
    cmp_ok($n, '>=', 1, "drift_maintain was signalled by pg_log_backend_memory_contexts while it ran ($n times)");
    ok($ok && $err !~ /ERROR/, 'drift_maintain succeeds while memory-context dumps are asked for')
      or diag('it failed with: ' . first_error($err) . "\n$err");
    like($out, qr/^\s*[1-9]\d*\s*$/m, 'and split buckets') or diag($out);
    is($node->safe_psql('postgres', "SELECT string_agg(blkno || ': ' || problem, E'\\n') FROM drift_verify('s_idx')"), '',
        'drift_verify finds it sound');
}

$node->stop;
done_testing();
