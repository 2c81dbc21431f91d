# Top-10 queries under a concurrent load of inserts, deletes and
# maintenance never fail and always return rows in distance order; at the
# end the index is sound and a full index scan finds every row.
#
# Four writers insert rows around a centre that moves with time and delete
# random and oldest rows, so buckets keep growing past max_bucket_size in
# one region and emptying in another: maintenance splits, merges and
# compacts all the time, and the directory grows. Two readers loop over
# `SELECT id, v <-> q AS d ... ORDER BY v <-> q LIMIT 10`, checking that d
# never decreases; one client loops over drift_maintain and VACUUM. The
# clients are server-side loops (procedures committing after each step,
# catching and reporting every error), which run many more queries than
# round trips from a client would. Both modes: with shared_preload_libraries
# (the janitor maintains too, every 100 ms) and without it (inserting
# backends flush L0 inline past drift.l0_max_rows). High-dimensional
# vectors give a directory of many pages, so a backend reloading its view
# of the index reads for longer while maintenance commits.
#
# Nothing may fail with a false "is corrupt" error: no query, insert,
# maintenance call, VACUUM nor janitor pass (the server log is searched).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use DriftTest;

my $dim = $ENV{DRIFT_LOAD_DIM} // 256;
my $seconds = $ENV{DRIFT_LOAD_SECONDS} // 20;

# The clients, as procedures. rvec: a vector around a centre that moves
# with the clock. Every step commits; every error is caught, counted and
# reported as a NOTICE (with its SQLSTATE and DETAIL).
my $procs = <<'EOSQL';
CREATE FUNCTION rvec(dim int) RETURNS real[] LANGUAGE sql VOLATILE AS $$
  SELECT array_agg((3 * sin(extract(epoch FROM clock_timestamp()) * 0.3 + j) + random() * 2 - 1)::real ORDER BY j)
    FROM generate_series(1, dim) j $$;

CREATE PROCEDURE writer(dim int, seconds float8, batch int, pause float8) LANGUAGE plpgsql AS $$
DECLARE
  stop timestamptz := clock_timestamp() + seconds * interval '1 s';
  steps int := 0; errs int := 0; step int := 0; lo int; hi int; st text; msg text; det text;
BEGIN
  WHILE clock_timestamp() < stop LOOP
    BEGIN
      step := step % 3 + 1;
      IF step = 1 THEN
        INSERT INTO t (v) SELECT rvec(dim) FROM generate_series(1, batch);
      ELSIF step = 2 THEN
        SELECT min(id), max(id) INTO lo, hi FROM t;
        DELETE FROM t WHERE id = (SELECT id FROM t WHERE id >= lo + (random() * (hi - lo))::int ORDER BY id LIMIT 1);
      ELSE
        DELETE FROM t WHERE id = (SELECT id FROM t WHERE id >= lo + (random() * 50)::int ORDER BY id LIMIT 1);
      END IF;
      steps := steps + 1;
    EXCEPTION WHEN OTHERS THEN
      GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT, det = PG_EXCEPTION_DETAIL;
      errs := errs + 1;
      RAISE NOTICE 'error: % % [%]', st, msg, det;
    END;
    COMMIT;
    IF step = 3 THEN PERFORM pg_sleep(pause); END IF;
  END LOOP;
  RAISE NOTICE 'writer done: % statements, % errors', steps, errs;
END $$;

CREATE PROCEDURE reader(dim int, seconds float8) LANGUAGE plpgsql AS $$
DECLARE
  stop timestamptz := clock_timestamp() + seconds * interval '1 s';
  q real[]; r record; prev float8; k int; ordered bool; got text;
  n int := 0; errs int := 0; unordered int := 0; short int := 0; st text; msg text; det text;
BEGIN
  WHILE clock_timestamp() < stop LOOP
    q := rvec(dim);
    BEGIN
      prev := NULL; k := 0; ordered := true; got := '';
      FOR r IN SELECT id, v <-> q AS d FROM t ORDER BY v <-> q LIMIT 10 LOOP
        IF prev IS NOT NULL AND r.d < prev THEN ordered := false; END IF;
        prev := r.d; k := k + 1; got := got || r.id || ':' || r.d || ' ';
      END LOOP;
      n := n + 1;
      IF k < 10 THEN short := short + 1; RAISE NOTICE 'short: % rows: %', k, got; END IF;
      IF NOT ordered THEN unordered := unordered + 1; RAISE NOTICE 'unordered: %', got; END IF;
    EXCEPTION WHEN OTHERS THEN
      GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT, det = PG_EXCEPTION_DETAIL;
      errs := errs + 1;
      RAISE NOTICE 'error: % % [%]', st, msg, det;
    END;
    COMMIT;
  END LOOP;
  RAISE NOTICE 'reader done: % queries, % answered, % errors, % out of order, % short', n + errs, n, errs, unordered, short;
END $$;
EOSQL

for my $mode ('janitor', 'inline') {
    my $node = new_node("load_$mode", $mode eq 'janitor' ? (preload => 1) : (conf => "drift.l0_max_rows = 300\n"));
    $node->safe_psql('postgres', $procs);
    $node->safe_psql('postgres', "CREATE TABLE t (id serial PRIMARY KEY, v real[]);
        INSERT INTO t (v) SELECT rvec($dim) FROM generate_series(1, 2000);
        CREATE INDEX t_idx ON t USING drift (v) WITH (lists = 4, max_bucket_size = 100);");
    # A query vector as a literal (rvec() is volatile: no index scan).
    my $q = $node->safe_psql('postgres', "SELECT rvec($dim)");
    like($node->safe_psql('postgres',
            "SET enable_seqscan = off; PREPARE top(real[]) AS SELECT id, v <-> \$1 AS d FROM t ORDER BY v <-> \$1 LIMIT 10;
             SET plan_cache_mode = force_generic_plan; EXPLAIN (COSTS OFF) EXECUTE top('$q');"),
        qr/Index Scan using t_idx/, "$mode: readers use the index");
    my $log_start = -s $node->logfile;

    my $dir = PostgreSQL::Test::Utils::tempdir;
    # drift_maintain and VACUUM back to back until the deadline (VACUUM
    # cannot run in a procedure).
    my $deadline = $node->safe_psql('postgres', "SELECT clock_timestamp() + interval '$seconds s'");
    my $step = "SELECT clock_timestamp() > '$deadline' AS stop \\gset\n\\if :stop\n\\q\n\\endif\n"
      . "SELECT * FROM drift_maintain('t_idx');\nVACUUM t;\n";
    PostgreSQL::Test::Utils::append_to_file("$dir/maintain.sql", $step x 20000);
    my @psql = ('psql', '-X', '-q', '-A', '-t', '-h', $node->host, '-p', $node->port, '-d', 'postgres');
    # Output goes to files: a pipe nobody reads while another client is
    # waited for would fill up and stall its client.
    my (%out, %err, @clients);
    my $start = sub {
        my ($c, @cmd) = @_;
        push @clients, IPC::Run::start([ @psql, @cmd ], '>', "$dir/$c.out", '2>', "$dir/$c.err");
    };
    $start->("writer$_", '-v', 'ON_ERROR_STOP=1', '-c', "CALL writer($dim, $seconds, 4, 0.005)") for 1 .. 4;
    $start->("reader$_", '-v', 'ON_ERROR_STOP=1', '-c', 'SET enable_seqscan = off', '-c', "CALL reader($dim, $seconds)")
      for 1 .. 2;
    $start->('maintainer', '-v', 'ON_ERROR_STOP=0', '-f', "$dir/maintain.sql");
    $_->finish for @clients;
    for my $c ((map { "writer$_" } 1 .. 4), (map { "reader$_" } 1 .. 2), 'maintainer') {
        $out{$c} = slurp_file("$dir/$c.out");
        $err{$c} = slurp_file("$dir/$c.err");
    }

    # What each client reported.
    my ($queries, $answered, $unordered, $short, $corrupt, %errors, @samples) = (0, 0, 0, 0, 0);
    for my $c (sort keys %err) {
        my $e = $err{$c} // '';
        if ($e =~ /reader done: (\d+) queries, (\d+) answered, \d+ errors, (\d+) out of order, (\d+) short/) {
            $queries += $1; $answered += $2; $unordered += $3; $short += $4;
        } elsif ($c =~ /^reader/ || ($c =~ /^writer/ && $e !~ /writer done/)) {
            diag("$mode: $c did not finish its loop:\n$e");
            $errors{$c}++;
        }
        push @samples, map { "$c $_" } grep { /unordered:|short:/ } split /\n/, $e;
        my @e = grep { /error: |ERROR:/ } split /\n/, $e;
        next unless @e;
        $errors{$c} += @e;
        $corrupt += grep { /is corrupt/ } @e;
        diag("$mode: $c: " . scalar(@e) . " errors, the first ones:\n" . join("\n", @e[ 0 .. ($#e < 4 ? $#e : 4) ]));
    }
    diag("$mode: $_") for @samples[ 0 .. ($#samples < 4 ? $#samples : 4) ];
    # Every "is corrupt" error in the server log; those with no STATEMENT
    # line come from background workers (the janitor).
    my @log = split /\n/, slurp_file($node->logfile, $log_start);
    my (@log_corrupt, $janitor_corrupt);
    $janitor_corrupt = 0;
    for my $i (0 .. $#log) {
        next unless $log[$i] =~ /\[(\d+)\] ERROR:.*is corrupt/;
        my $pid = $1;
        my $end = $i + 5 > $#log ? $#log : $i + 5;
        push @log_corrupt, join("\n", grep { /\[$pid\] (ERROR|DETAIL):/ } @log[ $i .. $end ]);
        $janitor_corrupt++ unless grep { /\[$pid\] STATEMENT:/ } @log[ $i .. $end ];
    }
    my ($flushes, $splits, $merges, $compactions, $lists) = split /\|/,
      $node->safe_psql('postgres', "SELECT flushes, splits, merges, compactions, lists FROM drift_index_stats('t_idx')");
    my $rows = $node->safe_psql('postgres', 'SELECT count(*) FROM t');
    my $maintains = () = ($out{maintainer} // '') =~ /^\d+\|/mg;
    note("$mode: $queries top-10 queries ($answered answered, $unordered out of order, $short short); client errors: "
          . (join(', ', map { "$_ $errors{$_}" } sort keys %errors) || 'none')
          . "; 'is corrupt' in the server log: " . scalar(@log_corrupt) . " (background: $janitor_corrupt)"
          . "; $maintains drift_maintain calls; index: $flushes flushes, $splits splits, $merges merges, "
          . "$compactions compactions, $lists buckets, $rows rows");
    diag("$mode: server log: $_") for @log_corrupt[ 0 .. ($#log_corrupt < 2 ? $#log_corrupt : 2) ];

    cmp_ok($queries, '>=', 500, "$mode: the readers ran top-10 queries ($queries)");
    cmp_ok($splits, '>', 0, "$mode: buckets were split during the load ($splits splits)");
    is($corrupt, 0, "$mode: no client saw a false \"is corrupt\" error ($corrupt)");
    is(scalar(@log_corrupt), 0, "$mode: the server log has no \"is corrupt\" error (" . scalar(@log_corrupt) . ", of which from background workers: $janitor_corrupt)");
    is($answered, $queries, "$mode: every top-10 query succeeded (" . ($queries - $answered) . " of $queries failed)");
    is($short, 0, "$mode: every top-10 query returned 10 rows");
    is($unordered, 0, "$mode: every top-10 answer came in non-decreasing distance ($unordered of $answered did not)");

    # With the load gone: a sound index that returns every row.
    is($node->safe_psql('postgres', "SELECT string_agg(blkno || ': ' || problem, E'\n') FROM drift_verify('t_idx')"), '',
        "$mode: drift_verify finds the index sound after the load");
    # With drift.strict_order off (it skips rows closer than one already
    # returned), every bucket probed and one batch: every row, once.
    my $full = $node->safe_psql('postgres', "SET drift.strict_order = off;
        SET enable_seqscan = off; SET drift.probes = 32768; SET drift.rerank = 1000000;
        SELECT count(*), count(DISTINCT id) FROM (SELECT id FROM t ORDER BY v <-> '$q') s;");
    my @full = split /\n/, $full;
    is($full[-1], "$rows|$rows", "$mode: a full index scan returns each of the $rows rows once");
    $node->stop;
}

done_testing();
