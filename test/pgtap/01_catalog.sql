-- The catalog objects drift installs, with the right properties.
BEGIN;
LOAD 'drift';
SELECT plan(25);

SELECT ok(EXISTS (SELECT 1 FROM pg_am WHERE amname = 'drift' AND amtype = 'i'), 'drift is an index access method');
SELECT is((SELECT amhandler::text FROM pg_am WHERE amname = 'drift'), 'drift_handler', 'handled by drift_handler');

SELECT has_operator('real[]', '<->', 'real[]', 'double precision', 'L2 distance operator');
SELECT has_operator('real[]', '<#>', 'real[]', 'double precision', 'negative inner product operator');
SELECT has_operator('real[]', '<=>', 'real[]', 'double precision', 'cosine distance operator');
SELECT is((SELECT oprcom::regoperator::text FROM pg_operator WHERE oprname = '<->' AND oprleft = 'real[]'::regtype),
          '<->(real[],real[])', '<-> is its own commutator');

SELECT has_function('drift_l2_distance', ARRAY['real[]', 'real[]'], 'drift_l2_distance exists');
SELECT has_function('drift_inner_product', ARRAY['real[]', 'real[]'], 'drift_inner_product exists');
SELECT has_function('drift_negative_inner_product', ARRAY['real[]', 'real[]'], 'drift_negative_inner_product exists');
SELECT has_function('drift_cosine_distance', ARRAY['real[]', 'real[]'], 'drift_cosine_distance exists');
SELECT volatility_is('drift_l2_distance', ARRAY['real[]', 'real[]'], 'immutable', 'distances are immutable');
SELECT has_function('drift_index_stats', ARRAY['regclass'], 'drift_index_stats exists');
SELECT has_function('drift_verify', ARRAY['regclass'], 'drift_verify exists');

SELECT has_opclass('drift_l2_ops', 'drift_l2_ops exists');
SELECT has_opclass('drift_ip_ops', 'drift_ip_ops exists');
SELECT has_opclass('drift_cosine_ops', 'drift_cosine_ops exists');
SELECT is((SELECT string_agg(opcname, ',' ORDER BY opcname) FROM pg_opclass c JOIN pg_am a ON a.oid = c.opcmethod
            WHERE a.amname = 'drift' AND c.opcdefault), 'drift_l2_ops', 'drift_l2_ops is the only default');
SELECT is((SELECT count(*)::int FROM pg_amop o JOIN pg_opfamily f ON f.oid = o.amopfamily JOIN pg_am a ON a.oid = f.opfmethod
            WHERE a.amname = 'drift' AND o.amoppurpose = 'o' AND o.amopstrategy = 1), 3,
          'each opclass has one ordering operator, strategy 1');
SELECT ok((SELECT bool_and(amvalidate(c.oid)) FROM pg_opclass c JOIN pg_am a ON a.oid = c.opcmethod WHERE a.amname = 'drift'),
          'every drift opclass passes amvalidate');

SELECT is(current_setting('drift.probes'), '10', 'drift.probes defaults to 10');
SELECT is(current_setting('drift.rerank'), '32', 'drift.rerank defaults to 32');
SELECT is(current_setting('drift.max_probes'), '-1', 'drift.max_probes defaults to -1 (all)');
SELECT is((SELECT context FROM pg_settings WHERE name = 'drift.probes'), 'user', 'drift.probes is user-settable');
SELECT throws_ok($$SET drift.probes = 0$$, '22023', NULL, 'drift.probes rejects 0');
SELECT throws_ok($$SET drift.no_such_setting = 1$$, '42602', NULL, 'the drift. prefix is reserved');

SELECT * FROM finish();
ROLLBACK;
