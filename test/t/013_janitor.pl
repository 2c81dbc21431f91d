# The janitor is a good citizen: it starts no worker for a database with
# no drift work, survives databases being created and dropped under it,
# leaves indexes that are not ready or valid alone, and loses no wake-up.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use DriftTest;

my $node = new_node('janitor', preload => 1, conf => "drift.janitor_naptime = 200\nlog_min_messages = debug1\n");
my $vec = vector_sql(8);

# Visits of database $db in the log from offset $from on.
sub visits {
    my ($db, $from) = @_;
    my $oid = $node->safe_psql('postgres', "SELECT oid FROM pg_database WHERE datname = '$db'");
    my $log = substr(slurp_file($node->logfile), $from);
    return scalar(() = $log =~ /drift janitor: visiting database $oid\b/g);
}

# A database with no drift index gets one visit, then none; one where rows
# arrive keeps being visited.
$node->safe_psql('postgres', 'CREATE DATABASE quiet');
$node->safe_psql('postgres', "CREATE TABLE t (id serial PRIMARY KEY, v real[]);
    INSERT INTO t (v) SELECT $vec FROM generate_series(1, 500) i;
    CREATE INDEX t_idx ON t USING drift (v) WITH (lists = 4);");
sleep 2;    # the first visits
my $from = length(slurp_file($node->logfile));
for (1 .. 20) {
    $node->safe_psql('postgres', "INSERT INTO t (v) SELECT $vec FROM generate_series(1, 20) i");
    select(undef, undef, undef, 0.2);
}
is(visits('quiet', $from), 0, 'no worker for a database with no drift work');
cmp_ok(visits('postgres', $from), '>=', 5, 'a worker for the database rows arrive in');

# Create and drop a database holding a drift index, 20 times, while the
# janitor runs every 200 ms: every cycle succeeds.
my $ok = 0;
for my $i (1 .. 20) {
    my ($ret) = $node->psql('postgres', 'CREATE DATABASE churn');
    $ret += ($node->psql('churn', "CREATE EXTENSION drift; CREATE TABLE t (v real[]);
        INSERT INTO t SELECT $vec FROM generate_series(1, 200) i; CREATE INDEX ON t USING drift (v);
        INSERT INTO t SELECT $vec FROM generate_series(1, 50) i;"))[0];
    select(undef, undef, undef, 0.25);
    $ret += ($node->psql('postgres', 'DROP DATABASE churn'))[0];
    $ok++ if $ret == 0;
}
is($ok, 20, '20 create/drop cycles of a database with a drift index all succeed');

# A CREATE INDEX CONCURRENTLY that failed leaves an index that is not
# built: the functions say so, and the janitor leaves it alone.
$node->safe_psql('postgres', "CREATE TABLE bad (id serial, v real[]);
    INSERT INTO bad (v) SELECT $vec FROM generate_series(1, 300) i;
    INSERT INTO bad (v) VALUES ('{1,2,3}');");
my ($ret, $out, $err) = $node->psql('postgres', 'CREATE INDEX CONCURRENTLY bad_idx ON bad USING drift (v)');
like($err, qr/dimensions/, 'a concurrent build that fails on a row of the wrong dimension');
($ret, $out, $err) = $node->psql('postgres', "SELECT * FROM drift_index_stats('bad_idx')");
like($err, qr/drift index "bad_idx" is not built/, 'leaves an index drift_index_stats calls not built, not corrupt');
$node->safe_psql('postgres', 'DROP INDEX bad_idx');

# An index that is ready but not valid (as while CREATE INDEX CONCURRENTLY
# validates it) gets no maintenance, though inserts reach it.
$node->safe_psql('postgres', "DELETE FROM bad WHERE array_length(v, 1) = 3;
    CREATE INDEX bad_idx ON bad USING drift (v);
    UPDATE pg_index SET indisvalid = false WHERE indexrelid = 'bad_idx'::regclass;");
$node->safe_psql('postgres', "INSERT INTO bad (v) SELECT $vec FROM generate_series(1, 300) i;");
sleep 2;
is($node->safe_psql('postgres', "SELECT flushes, l0_entries FROM drift_index_stats('bad_idx')"), '0|300',
    'the janitor leaves an index that is not valid alone');
$node->safe_psql('postgres', "UPDATE pg_index SET indisvalid = true WHERE indexrelid = 'bad_idx'::regclass");
ok($node->poll_query_until('postgres', "SELECT l0_entries = 0 FROM drift_index_stats('bad_idx')"),
    'and maintains it once it is valid');

# (the test's own sessions log as 013_janitor.pl; background workers do not)
is(scalar(grep { /ERROR:|terminated by signal/ && !/013_janitor\.pl/ } split /\n/, slurp_file($node->logfile)), 0,
    'no janitor error, no crash');
$node->stop;
done_testing();
