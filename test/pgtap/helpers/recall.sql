-- Functions the pgTAP recall tests share; scripts/test.sh creates them in
-- the test database before pg_prove runs test/pgtap/*.sql.

-- Mean recall@10 of ORDER BY v <op> query over the query table against the
-- truth table (ids[1:10] of each query id).
CREATE FUNCTION recall_at_10(base text, queries text, truth text, op text) RETURNS float8
LANGUAGE plpgsql AS $$
DECLARE r float8;
BEGIN
  EXECUTE format($q$
    SELECT avg((SELECT count(*) FROM unnest(ARRAY(SELECT b.id FROM %I b ORDER BY b.v %s q.v LIMIT 10)) g
                WHERE g = ANY (t.ids[1:10])))::float8 / 10
      FROM %I q JOIN %I t USING (id)$q$, base, op, queries, truth) INTO r;
  RETURN r;
END $$;

-- The plan of the per-query search, to prove the index answered it.
CREATE FUNCTION search_plan(base text, queries text, op text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE line text; plan text := '';
BEGIN
  FOR line IN EXECUTE format('EXPLAIN (COSTS OFF) SELECT id FROM %I ORDER BY v %s (SELECT v FROM %I WHERE id = 0) LIMIT 10',
                             base, op, queries) LOOP
    plan := plan || line || E'\n';
  END LOOP;
  RETURN plan;
END $$;
