#!/usr/bin/env python3
"""Nearest-neighbour search with a drift index, from Python.

Needs psycopg 3 and numpy (Debian: python3-psycopg python3-numpy) and a
PostgreSQL 15 server with pgvector, drift and drift_vector installed. The
connection comes from the usual libpq environment (PGHOST, PGPORT, PGUSER,
PGDATABASE, ...), e.g. for the server scripts/demo.sh starts:

    PGHOST=/tmp/drift-demo PGPORT=55439 PGUSER=postgres PGDATABASE=demo \
        python3 examples/python/drift_example.py

It loads 20,000 clustered 64-d vectors into a pgvector `vector` column,
builds a drift index, inserts 2,000 more rows while querying, and measures
recall@10 against exact search. It prints `key: value` lines and exits
non-zero if anything fails or recall@10 is below 0.9.
"""
import sys
import time

import numpy as np
import psycopg

TABLE = "py_items"
DIM = 64                # vector(64)
ROWS = 20_000           # rows loaded before the index is built
MORE_ROWS = 2_000       # rows inserted afterwards, while querying
BATCH = 200             # rows per INSERT in that phase
QUERIES = 20            # queries for recall@10
K = 10                  # neighbours per query
MIN_RECALL = 0.9

# Seeded, so every run sees the same data: points scattered around 50
# random centres, the kind of structure real embeddings have.
rng = np.random.default_rng(42)
CENTRES = rng.normal(size=(50, DIM)).astype(np.float32)


def random_vectors(n):
    """n vectors, each a random centre plus some Gaussian noise."""
    picks = rng.integers(len(CENTRES), size=n)
    return CENTRES[picks] + rng.normal(scale=0.3, size=(n, DIM)).astype(np.float32)


def to_sql(v):
    """pgvector's text format: '[0.1,0.2,...]'."""
    return "[" + ",".join(f"{x:.6f}" for x in v) + "]"


def nearest(conn, q, k=K, exact=False):
    """(id, distance) of the k rows nearest to q (L2, the <-> operator).

    With exact=True index scans are turned off for this one transaction
    (SET LOCAL), so PostgreSQL scans the whole table and sorts: the true
    answer, to measure the index's recall against.
    """
    with conn.transaction():
        if exact:
            conn.execute("SET LOCAL enable_indexscan = off")
        return conn.execute(
            f"SELECT id, embedding <-> %(q)s::vector AS distance FROM {TABLE}"
            f" ORDER BY embedding <-> %(q)s::vector LIMIT %(k)s",
            {"q": to_sql(q), "k": k},
        ).fetchall()


def main():
    # No connection string: libpq reads PGHOST, PGPORT, PGUSER, PGDATABASE.
    # Autocommit, so each statement is committed (and visible) at once.
    with psycopg.connect(autocommit=True) as conn:
        # vector: pgvector's types; drift: the index access method;
        # drift_vector: drift operator classes for vector and halfvec.
        for ext in ("vector", "drift", "drift_vector"):
            conn.execute(f"CREATE EXTENSION IF NOT EXISTS {ext}")
        versions = dict(conn.execute(
            "SELECT extname, extversion FROM pg_extension"
            " WHERE extname IN ('vector', 'drift', 'drift_vector')").fetchall())
        print("extensions: " + ", ".join(f"{e} {versions[e]}" for e in ("vector", "drift", "drift_vector")))

        conn.execute(f"DROP TABLE IF EXISTS {TABLE}")
        conn.execute(f"CREATE TABLE {TABLE} (id bigserial PRIMARY KEY, embedding vector({DIM}))")

        # Bulk load with COPY, the fastest way in: one row per vector, in
        # pgvector's text format.
        start = time.monotonic()
        with conn.cursor() as cur:
            with cur.copy(f"COPY {TABLE} (embedding) FROM STDIN") as copy:
                for v in random_vectors(ROWS):
                    copy.write_row((to_sql(v),))
        conn.execute(f"ANALYZE {TABLE}")
        print(f"loaded: {ROWS} rows in {time.monotonic() - start:.1f} s")

        # Build the index after loading: its centroids (lists = 100 buckets)
        # are trained on the rows present now. The default operator class
        # for vector is drift_vector_l2_ops (<->); for inner product or
        # cosine write (embedding drift_vector_ip_ops) or
        # (embedding drift_vector_cosine_ops) and order by <#> or <=>.
        start = time.monotonic()
        conn.execute(f"CREATE INDEX {TABLE}_embedding_idx ON {TABLE} USING drift (embedding) WITH (lists = 100)")
        print(f"index build: {time.monotonic() - start:.1f} s")
        print("index: " + conn.execute(
            "SELECT am.amname FROM pg_class c JOIN pg_am am ON am.oid = c.relam"
            " WHERE c.oid = %s::regclass", (f"{TABLE}_embedding_idx",)).fetchone()[0])

        # Buckets searched per query: more is slower, with better recall.
        conn.execute("SET drift.probes = 10")

        # Keep writing after the build: the index takes new rows at once
        # (no REINDEX). Between batches, query for the last row just
        # inserted; it must come back first, at distance 0.
        inserted = found = 0
        for _ in range(MORE_ROWS // BATCH):
            batch = random_vectors(BATCH)
            conn.execute(f"INSERT INTO {TABLE} (embedding) SELECT unnest(%s::vector[])",
                         ([to_sql(v) for v in batch],))
            inserted += BATCH
            top = nearest(conn, batch[-1])
            if len(top) == K and top[0][1] == 0:
                found += 1
        print(f"inserted while querying: {inserted}")
        print(f"fresh rows found: {found}/{MORE_ROWS // BATCH}")

        rows = conn.execute(f"SELECT count(*) FROM {TABLE}").fetchone()[0]
        print(f"rows: {rows}")

        # Make sure the queries below use the index (on a tiny table the
        # planner might prefer a sequential scan, and recall would be 1.0
        # for the wrong reason).
        plan = conn.execute(
            f"EXPLAIN (COSTS OFF) SELECT id FROM {TABLE} ORDER BY embedding <-> %s::vector LIMIT {K}",
            (to_sql(CENTRES[0]),)).fetchall()
        scan = next((line for (line,) in plan if "Index Scan" in line), "no index scan")
        print("plan: " + scan.strip().removeprefix("->").strip())

        # recall@10: the share of the true 10 nearest neighbours that the
        # index returns, over QUERIES new query vectors.
        queries = random_vectors(QUERIES)
        hits = 0
        for q in queries:
            approx = {i for i, _ in nearest(conn, q)}
            exact = {i for i, _ in nearest(conn, q, exact=True)}
            hits += len(approx & exact)
        recall = hits / (K * QUERIES)

        print("5 nearest neighbours of query 0:")
        for i, dist in nearest(conn, queries[0], k=5):
            print(f"  id {i:>6}  distance {dist:.4f}")
        print(f"recall@{K}: {recall:.3f}")

    failures = []
    if rows != ROWS + MORE_ROWS:
        failures.append(f"expected {ROWS + MORE_ROWS} rows, found {rows}")
    if found != MORE_ROWS // BATCH:
        failures.append("a freshly inserted row was not found by the next query")
    if "Index Scan" not in scan:
        failures.append("the query plan does not use the index")
    if recall < MIN_RECALL:
        failures.append(f"recall@{K} {recall:.3f} is below {MIN_RECALL}")
    for f in failures:
        print("FAILED: " + f, file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
