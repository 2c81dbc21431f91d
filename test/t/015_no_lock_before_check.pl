# drift's SQL functions check that a relation is a drift index, and that
# the user may look at it, before they lock it: given a relation another
# session holds locked, they answer at once instead of queueing behind it
# (and holding up everyone who queues behind them).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use DriftTest;

my $node = new_node('locks');
my $vec = vector_sql(4);
$node->safe_psql('postgres', "CREATE TABLE t (id int, v real[]); INSERT INTO t SELECT i, $vec FROM generate_series(1, 300) i;
    CREATE INDEX t_idx ON t USING drift (v); CREATE INDEX t_btree ON t (id); CREATE ROLE nobody LOGIN;");

# Another session holds an ACCESS EXCLUSIVE lock on the table and its indexes.
my ($in, $out, $err) = ('', '', '');
my $holder = IPC::Run::start([ 'psql', '-X', '-q', '-A', '-t', '-h', $node->host, '-p', $node->port, '-d', 'postgres' ],
    '<', \$in, '>', \$out, '2>', \$err);
$in .= "BEGIN; LOCK TABLE t IN ACCESS EXCLUSIVE MODE; SELECT 'locked';\n";
$holder->pump until $out =~ /locked/;

for my $f (qw(drift_verify drift_index_stats drift_buckets drift_maintain)) {
    for my $rel (qw(t t_btree)) {
        my ($ret, $o, $e) = $node->psql('postgres', "SET lock_timeout = '3s'; SELECT * FROM $f('$rel')");
        like($e, qr/"$rel" is not a drift index/, "$f('$rel') says it is not a drift index without waiting for the lock");
    }
    my ($ret, $o, $e) = $node->psql('postgres', "SET ROLE nobody; SET lock_timeout = '3s'; SELECT * FROM $f('t_idx')");
    like($e, qr/permission denied|must be owner/, "$f of someone else's index is refused without waiting for the lock");
}
$in .= "COMMIT;\n\\q\n";
$holder->finish;
is($node->safe_psql('postgres', "SELECT count(*) FROM drift_verify('t_idx')"), '0', 'the owner can verify once the lock is gone');
$node->stop;
done_testing();
