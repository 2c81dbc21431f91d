// Nearest-neighbour search with a drift index, from Node.js.
//
// Needs Node.js 18 or later, the npm packages pg and pgvector (`npm ci` in
// this directory) and a PostgreSQL 15 server with pgvector, drift and
// drift_vector installed. The connection comes from the usual libpq
// environment (PGHOST, PGPORT, PGUSER, PGDATABASE, ...), e.g. for the
// server scripts/demo.sh starts:
//
//   PGHOST=/tmp/drift-demo PGPORT=55439 PGUSER=postgres PGDATABASE=demo \
//       node examples/node/drift_example.js
//
// It loads 20,000 clustered 64-d vectors into a pgvector `vector` column,
// builds a drift index, inserts 2,000 more rows while querying, and
// measures recall@10 against exact search. It prints `key: value` lines
// and exits non-zero if anything fails or recall@10 is below 0.9.
import pg from 'pg';
import pgvector from 'pgvector/pg';

const TABLE = 'node_items';
const DIM = 64;           // vector(64)
const ROWS = 20000;       // rows loaded before the index is built
const MORE_ROWS = 2000;   // rows inserted afterwards, while querying
const BATCH = 200;        // rows per INSERT in that phase
const LOAD_BATCH = 1000;  // rows per INSERT in the initial load
const QUERIES = 20;       // queries for recall@10
const K = 10;             // neighbours per query
const MIN_RECALL = 0.9;

// A small seeded PRNG (mulberry32), so every run sees the same data.
let seed = 42;
function random() {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
// A standard normal sample (Box-Muller).
function gaussian() {
  return Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
}

// Points scattered around 50 random centres, the kind of structure real
// embeddings have.
const CENTRES = Array.from({ length: 50 }, () => Array.from({ length: DIM }, gaussian));
function randomVectors(n) {
  return Array.from({ length: n }, () => {
    const c = CENTRES[Math.floor(random() * CENTRES.length)];
    return c.map((x) => Math.fround(x + 0.3 * gaussian()));
  });
}

// Inserts vectors in one statement: an array of pgvector's text format
// ('[0.1,0.2,...]', what pgvector.toSql makes), unnested into rows.
async function insert(client, vectors) {
  await client.query(`INSERT INTO ${TABLE} (embedding) SELECT unnest($1::vector[])`,
    [vectors.map((v) => pgvector.toSql(v))]);
}

// {id, distance} of the k rows nearest to q (L2, the <-> operator). With
// exact = true index scans are turned off for this one transaction (SET
// LOCAL), so PostgreSQL scans the whole table and sorts: the true answer,
// to measure the index's recall against.
async function nearest(client, q, k = K, exact = false) {
  await client.query('BEGIN');
  try {
    if (exact) await client.query('SET LOCAL enable_indexscan = off');
    const { rows } = await client.query(
      `SELECT id, embedding <-> $1::vector AS distance FROM ${TABLE} ORDER BY embedding <-> $1::vector LIMIT $2`,
      [pgvector.toSql(q), k]);
    await client.query('COMMIT');
    return rows;
  } catch (err) {
    await client.query('ROLLBACK');
    throw err;
  }
}

async function main() {
  // No settings given: pg reads PGHOST, PGPORT, PGUSER, PGDATABASE.
  const client = new pg.Client();
  await client.connect();
  try {
    // vector: pgvector's types; drift: the index access method;
    // drift_vector: drift operator classes for vector and halfvec.
    for (const ext of ['vector', 'drift', 'drift_vector']) {
      await client.query(`CREATE EXTENSION IF NOT EXISTS ${ext}`);
    }
    // Teaches pg to parse vector values into arrays (needs the extension).
    await pgvector.registerTypes(client);
    const ext = await client.query(
      "SELECT extname, extversion FROM pg_extension WHERE extname IN ('vector', 'drift', 'drift_vector')");
    const version = Object.fromEntries(ext.rows.map((r) => [r.extname, r.extversion]));
    console.log(`extensions: ${['vector', 'drift', 'drift_vector'].map((e) => `${e} ${version[e]}`).join(', ')}`);

    await client.query(`DROP TABLE IF EXISTS ${TABLE}`);
    await client.query(`CREATE TABLE ${TABLE} (id bigserial PRIMARY KEY, embedding vector(${DIM}))`);

    // Bulk load in batches of LOAD_BATCH rows per statement.
    let start = Date.now();
    for (let done = 0; done < ROWS; done += LOAD_BATCH) {
      await insert(client, randomVectors(LOAD_BATCH));
    }
    await client.query(`ANALYZE ${TABLE}`);
    console.log(`loaded: ${ROWS} rows in ${((Date.now() - start) / 1000).toFixed(1)} s`);

    // Build the index after loading: its centroids (lists = 100 buckets)
    // are trained on the rows present now. The default operator class for
    // vector is drift_vector_l2_ops (<->); for inner product or cosine
    // write (embedding drift_vector_ip_ops) or (embedding
    // drift_vector_cosine_ops) and order by <#> or <=>.
    start = Date.now();
    await client.query(`CREATE INDEX ${TABLE}_embedding_idx ON ${TABLE} USING drift (embedding) WITH (lists = 100)`);
    console.log(`index build: ${((Date.now() - start) / 1000).toFixed(1)} s`);
    const am = await client.query(
      'SELECT am.amname FROM pg_class c JOIN pg_am am ON am.oid = c.relam WHERE c.oid = $1::regclass',
      [`${TABLE}_embedding_idx`]);
    console.log(`index: ${am.rows[0].amname}`);

    // Buckets searched per query: more is slower, with better recall.
    await client.query('SET drift.probes = 10');

    // Keep writing after the build: the index takes new rows at once (no
    // REINDEX). Between batches, query for the last row just inserted; it
    // must come back first, at distance 0.
    let inserted = 0;
    let found = 0;
    for (let b = 0; b < MORE_ROWS / BATCH; b++) {
      const batch = randomVectors(BATCH);
      await insert(client, batch);
      inserted += batch.length;
      const top = await nearest(client, batch[batch.length - 1]);
      if (top.length === K && top[0].distance === 0) found++;
    }
    console.log(`inserted while querying: ${inserted}`);
    console.log(`fresh rows found: ${found}/${MORE_ROWS / BATCH}`);

    const rows = Number((await client.query(`SELECT count(*) FROM ${TABLE}`)).rows[0].count);
    console.log(`rows: ${rows}`);

    // Make sure the queries below use the index (on a tiny table the
    // planner might prefer a sequential scan, and recall would be 1.0 for
    // the wrong reason).
    const plan = await client.query(
      `EXPLAIN (COSTS OFF) SELECT id FROM ${TABLE} ORDER BY embedding <-> $1::vector LIMIT ${K}`,
      [pgvector.toSql(CENTRES[0])]);
    const scan = plan.rows.map((r) => r['QUERY PLAN']).find((l) => l.includes('Index Scan')) ?? 'no index scan';
    console.log(`plan: ${scan.replace(/^[\s>-]+/, '')}`);

    // recall@10: the share of the true 10 nearest neighbours that the
    // index returns, over QUERIES new query vectors.
    const queries = randomVectors(QUERIES);
    let hits = 0;
    for (const q of queries) {
      const approx = new Set((await nearest(client, q)).map((r) => r.id));
      const exact = await nearest(client, q, K, true);
      hits += exact.filter((r) => approx.has(r.id)).length;
    }
    const recall = hits / (K * QUERIES);

    console.log('5 nearest neighbours of query 0:');
    for (const r of await nearest(client, queries[0], 5)) {
      console.log(`  id ${r.id.padStart(6)}  distance ${r.distance.toFixed(4)}`);
    }
    console.log(`recall@${K}: ${recall.toFixed(3)}`);

    const failures = [];
    if (rows !== ROWS + MORE_ROWS) failures.push(`expected ${ROWS + MORE_ROWS} rows, found ${rows}`);
    if (found !== MORE_ROWS / BATCH) failures.push('a freshly inserted row was not found by the next query');
    if (!scan.includes('Index Scan')) failures.push('the query plan does not use the index');
    if (recall < MIN_RECALL) failures.push(`recall@${K} ${recall.toFixed(3)} is below ${MIN_RECALL}`);
    for (const f of failures) console.error(`FAILED: ${f}`);
    process.exitCode = failures.length ? 1 : 0;
  } finally {
    await client.end();
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
