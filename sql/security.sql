-- Who may call drift's functions. drift_maintain changes the index: only
-- the owner of its table may run it (as VACUUM and REINDEX), and never in
-- a read-only transaction. drift_verify, drift_index_stats and
-- drift_buckets read it: the table's owner and members of
-- pg_stat_scan_tables (pg_monitor is one) may. drift_evaluate_recall runs
-- a query: whoever may SELECT from the table may. Every function refuses a
-- relation that is not a drift index. Errors show their first line and,
-- after it, their SQLSTATE.
\set VERBOSITY terse
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS drift;
DROP ROLE IF EXISTS drift_nobody;
DROP ROLE IF EXISTS drift_owner;
DROP ROLE IF EXISTS drift_monitor;
DROP ROLE IF EXISTS drift_scanner;
DROP ROLE IF EXISTS drift_stranger;
RESET client_min_messages;
CREATE ROLE drift_nobody;
CREATE ROLE drift_owner;
CREATE ROLE drift_monitor IN ROLE pg_monitor;
CREATE ROLE drift_scanner IN ROLE pg_stat_scan_tables;
CREATE ROLE drift_stranger;

CREATE TABLE t (id int PRIMARY KEY, v real[]);
INSERT INTO t SELECT i, ARRAY[sin(i), cos(i), sin(i * 0.7), cos(i * 1.3)]::real[] FROM generate_series(1, 500) i;
CREATE INDEX t_idx ON t USING drift (v) WITH (lists = 4);
CREATE INDEX t_id_idx ON t (id);
ALTER TABLE t OWNER TO drift_owner;
GRANT SELECT ON t TO drift_nobody, drift_monitor, drift_scanner;

-- the table's owner may do everything
SET ROLE drift_owner;
SELECT count(*) AS maintained FROM drift_maintain('t_idx');
SELECT count(*) AS problems FROM drift_verify('t_idx');
SELECT dimension, live_entries FROM drift_index_stats('t_idx');
SELECT sum(entries) AS entries FROM drift_buckets('t_idx');
RESET ROLE;

-- a role that owns nothing may do nothing (SELECT on the table is not enough)
SET ROLE drift_nobody;
SELECT count(*) FROM drift_maintain('t_idx');
\echo :SQLSTATE
SELECT count(*) FROM drift_verify('t_idx');
\echo :SQLSTATE
SELECT live_entries FROM drift_index_stats('t_idx');
\echo :SQLSTATE
SELECT count(*) FROM drift_buckets('t_idx');
\echo :SQLSTATE
-- nor through the index's oid
SELECT count(*) FROM drift_verify('t_idx'::regclass::oid);
\echo :SQLSTATE
-- but SELECT is enough to measure a query's recall; not to sample scans
SELECT recall > 0 AS measured FROM drift_evaluate_recall('t_idx', '{0,1,0,1}'::real[]);
SET drift.recall_sample_rate = 0.5;
RESET ROLE;
-- without SELECT, no recall either
SET ROLE drift_stranger;
SELECT recall FROM drift_evaluate_recall('t_idx', '{0,1,0,1}'::real[]);
\echo :SQLSTATE
RESET ROLE;
-- where row-level security applies, SELECT is not enough (the function
-- reads every row the index holds); the owner, whom it does not bind, may
ALTER TABLE t ENABLE ROW LEVEL SECURITY;
SET ROLE drift_nobody;
SELECT recall FROM drift_evaluate_recall('t_idx', '{0,1,0,1}'::real[]);
\echo :SQLSTATE
RESET ROLE;
SET ROLE drift_owner;
SELECT recall > 0 AS measured FROM drift_evaluate_recall('t_idx', '{0,1,0,1}'::real[]);
RESET ROLE;
ALTER TABLE t DISABLE ROW LEVEL SECURITY;

-- members of pg_stat_scan_tables (directly or through pg_monitor) may
-- read, not maintain
SET ROLE drift_monitor;
SELECT count(*) AS problems FROM drift_verify('t_idx');
SELECT dimension, live_entries FROM drift_index_stats('t_idx');
SELECT sum(entries) AS entries FROM drift_buckets('t_idx');
SELECT count(*) FROM drift_maintain('t_idx');
\echo :SQLSTATE
RESET ROLE;
SET ROLE drift_scanner;
SELECT count(*) AS problems FROM drift_verify('t_idx');
SELECT dimension, live_entries FROM drift_index_stats('t_idx');
SELECT sum(entries) AS entries FROM drift_buckets('t_idx');
SELECT count(*) FROM drift_maintain('t_idx');
\echo :SQLSTATE
RESET ROLE;

-- drift_maintain writes: refused in a read-only transaction, even to a
-- superuser; the read-only functions still work there
BEGIN READ ONLY;
SELECT count(*) FROM drift_maintain('t_idx');
\echo :SQLSTATE
ROLLBACK;
BEGIN;
SET transaction_read_only = on;
SELECT count(*) FROM drift_maintain('t_idx');
\echo :SQLSTATE
ROLLBACK;
SET default_transaction_read_only = on;
SELECT count(*) FROM drift_maintain('t_idx');
\echo :SQLSTATE
SELECT count(*) AS problems FROM drift_verify('t_idx');
SELECT live_entries FROM drift_index_stats('t_idx');
SELECT sum(entries) AS entries FROM drift_buckets('t_idx');
RESET default_transaction_read_only;
SELECT count(*) AS maintained FROM drift_maintain('t_idx');

-- a relation that is not a drift index: a table, a catalog, a btree index
SELECT * FROM drift_maintain('t');
\echo :SQLSTATE
SELECT * FROM drift_verify('t');
SELECT * FROM drift_index_stats('t');
SELECT * FROM drift_buckets('t');
SELECT * FROM drift_maintain('pg_class');
SELECT * FROM drift_verify('pg_class');
SELECT * FROM drift_index_stats('pg_class');
SELECT * FROM drift_buckets('pg_class');
SELECT * FROM drift_maintain('t_id_idx');
SELECT * FROM drift_verify('t_id_idx');
SELECT * FROM drift_index_stats('t_id_idx');
SELECT * FROM drift_buckets('t_id_idx');
SELECT * FROM drift_evaluate_recall('t_id_idx', '{0,1,0,1}'::real[]);
\echo :SQLSTATE

-- segment files, as COPY's files: reading takes pg_read_server_files,
-- writing pg_write_server_files (and SELECT on the table); checked before
-- the file is touched
ALTER TABLE t DISABLE ROW LEVEL SECURITY;
SET ROLE drift_owner;
SELECT rows FROM drift_export_segment('t_idx', '/nonexistent/t.drift');
\echo :SQLSTATE
SELECT rows FROM drift_segment_info('/nonexistent/t.drift');
\echo :SQLSTATE
SELECT count(*) FROM drift_segment_rows('/nonexistent/t.drift');
\echo :SQLSTATE
SELECT drift_segment_contains('/nonexistent/t.drift', 1);
\echo :SQLSTATE
RESET ROLE;
-- an index is built as its table's owner: a superuser's CREATE INDEX
-- needs the owner to have the role too
CREATE INDEX ON t USING drift (v) WITH (segment = '/nonexistent/t.drift');
\echo :SQLSTATE
-- paths are absolute; a missing file is an error
SELECT rows FROM drift_segment_info('t.drift');
\echo :SQLSTATE
CREATE INDEX ON t USING drift (v) WITH (segment = 't.drift');
\echo :SQLSTATE
SELECT rows FROM drift_segment_info('/nonexistent/t.drift');
\echo :SQLSTATE

DROP TABLE t;
DROP ROLE drift_nobody;
DROP ROLE drift_owner;
DROP ROLE drift_monitor;
DROP ROLE drift_scanner;
DROP ROLE drift_stranger;
