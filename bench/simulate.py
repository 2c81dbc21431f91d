#!/usr/bin/env python3
"""The drift simulator: replays a streaming runbook against indexed tables.

A runbook (the YAML format of the big-ann-benchmarks streaming track,
NeurIPS'23) is a list of insert, delete, replace and search steps over
row ranges of a dataset's base vectors in arrival order. This tool turns a
dataset into such a stream (rows ordered by k-means cluster, with some
rows held out as queries), replays the runbook against one table per index
(drift with its janitor, drift without it, pgvector's ivfflat and hnsw)
and, at every search step, measures for each configuration recall@10
against the exact top 10 of the rows live at that moment, single-client
QPS, and the index's size, L0 rows and bucket count. It writes a CSV (one
row per step and configuration) and a PNG plot. docs/simulator.md has the
details; bench/simulate.sh runs it against a throwaway server.

    python3 bench/simulate.py RUNBOOK DATASET [options]     (see --help)

Needs psycopg 3, numpy, PyYAML and matplotlib (Debian: python3-psycopg
python3-numpy python3-yaml python3-matplotlib). The connection comes from
libpq's environment (PGHOST, PGPORT, PGUSER); the database is --dbname.
"""
import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

import numpy as np
import psycopg
import yaml

K = 10
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The shared real sets: base file, query file and metric, under DRIFT_DATA.
NAMED = {
    "siftsmall": ("siftsmall/siftsmall_base.fvecs", "siftsmall/siftsmall_query.fvecs", "l2"),
    "mnist": ("mnist/mnist_t10k_base9000.fvecs", "mnist/mnist_t10k_query1000.fvecs", "l2"),
    "glove50": ("glove50/glove50_base.fvecs", "glove50/glove50_query.fvecs", "cosine"),
}
CONFIGS = ("plain", "lambda-tau", "target", "janitor-off", "ivfflat", "hnsw")
COLUMNS = ("step", "operation", "live_rows", "config", "recall_at_10", "recall_recent_at_10", "recent_queries",
           "qps", "index_bytes", "l0_rows", "buckets", "op_s", "elapsed_s")


# Prints a progress line on stderr.
def log(msg):
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- data

@dataclass
class Dataset:
    name: str           # the name runbook entries are looked up by
    metric: str         # "l2" or "cosine"
    base: np.ndarray    # rows x dim, float32, in file (or generation) order
    queries: np.ndarray  # the dataset's own queries (None for generated data)
    drifts: bool        # whether file order already drifts (generated data)


# Reads an .fvecs file (per record: int32 dim, then dim float32).
def read_fvecs(path):
    raw = np.fromfile(path, dtype=np.int32)
    if raw.size == 0:
        sys.exit(f"simulate: {path} is empty")
    dim = int(raw[0])
    if dim <= 0 or raw.size % (dim + 1):
        sys.exit(f"simulate: {path} is not an .fvecs file of one dimension")
    recs = raw.reshape(-1, dim + 1)
    if np.any(recs[:, 0] != dim):
        sys.exit(f"simulate: {path} mixes dimensions")
    return recs[:, 1:].copy().view(np.float32)


# Generates rows with build/vecdata in `phases` equal parts whose mixture is
# shifted a little further each time (0 to `shift`): a distribution that drifts.
def generate(rows, dim, shift, phases):
    tool = os.path.join(ROOT, "build", "vecdata")
    if not os.access(tool, os.X_OK):
        sys.exit("simulate: build/vecdata is missing (make -s tools)")
    bounds = np.linspace(0, rows, phases + 1).round().astype(int)
    parts = []
    for i in range(phases):
        s = shift * i / max(phases - 1, 1)
        cmd = [tool, "gen", str(bounds[i + 1] - bounds[i]), str(dim), "256", "7", str(s), str(bounds[i])]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        parts += [line.split("\t", 1)[1].strip("{}\n").split(",") for line in out.splitlines()]
    return np.array(parts, dtype=np.float32)


# Resolves DATASET: a shared set's name, gen:ROWS:DIM[:SHIFT[:PHASES]] or an .fvecs path.
def load_dataset(spec, args):
    if spec.startswith("gen:"):
        parts = spec.split(":")[1:]
        if not 2 <= len(parts) <= 4:
            sys.exit("simulate: generated data is gen:ROWS:DIM[:SHIFT[:PHASES]]")
        rows, dim = int(parts[0]), int(parts[1])
        shift = float(parts[2]) if len(parts) > 2 else 6.0
        phases = int(parts[3]) if len(parts) > 3 else 10
        return Dataset(f"gen-{rows}x{dim}", args.metric or "l2", generate(rows, dim, shift, phases), None, True)
    data = os.environ.get("DRIFT_DATA") or os.path.join(ROOT, "..", "shared", "data")
    if spec in NAMED:
        base, queries, metric = NAMED[spec]
        return Dataset(spec, args.metric or metric, read_fvecs(os.path.join(data, base)),
                       read_fvecs(args.query_file or os.path.join(data, queries)), False)
    if not os.path.isfile(spec):
        sys.exit(f"simulate: no dataset {spec!r} (a name of {', '.join(NAMED)}, gen:ROWS:DIM, or an .fvecs file)")
    name = os.path.basename(spec).rsplit(".", 1)[0]
    queries = read_fvecs(args.query_file) if args.query_file else None
    return Dataset(name, args.metric or "l2", read_fvecs(spec), queries, False)


# Lloyd's k-means with k-means++ seeding (fixed seed): labels and centroids.
def kmeans(x, k, seed, iters=25):
    rng = np.random.default_rng(seed)
    x = x.astype(np.float64)
    centres = np.empty((k, x.shape[1]))
    centres[0] = x[rng.integers(len(x))]
    d2 = ((x - centres[0]) ** 2).sum(1)
    for j in range(1, k):
        centres[j] = x[rng.choice(len(x), p=d2 / d2.sum())]
        d2 = np.minimum(d2, ((x - centres[j]) ** 2).sum(1))
    xx = (x * x).sum(1)
    labels = None
    for _ in range(iters):
        new = np.argmin(xx[:, None] - 2 * x @ centres.T + (centres * centres).sum(1), axis=1)
        if labels is not None and np.array_equal(new, labels):
            break
        labels = new
        for j in range(k):
            members = x[labels == j]
            if len(members):
                centres[j] = members.mean(0)
    return labels, centres


# The arrival order of the dataset's rows (a permutation) for ORDER: file
# order, k-means clusters one after another (ranked along the data's first
# principal component, so each is near the one before), or gradual (each
# row arrives at its cluster's rank plus a uniform offset of up to
# `overlap` ranks, so about that many neighbouring clusters arrive mixed at
# any time; generated data keeps its own drifting order).
def arrival_order(ds, order, clusters, overlap, seed):
    n = len(ds.base)
    if order == "file" or (order == "gradual" and ds.drifts):
        return np.arange(n)
    x = normalized(ds.base) if ds.metric == "cosine" else ds.base.astype(np.float64)
    labels, centres = kmeans(x, clusters, seed)
    _, vecs = np.linalg.eigh(np.cov(x, rowvar=False))
    rank = np.argsort(np.argsort(centres @ vecs[:, -1]))[labels].astype(np.float64)
    if order == "gradual":
        rank += overlap * np.random.default_rng(seed).random(n)
    return np.argsort(rank, kind="stable")


# Rows scaled to unit length (zero rows stay zero), in float64.
def normalized(x):
    x = x.astype(np.float64)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms > 0, norms, 1)


@dataclass
class Stream:
    rows: np.ndarray        # the vectors a runbook's row numbers index, in arrival order
    holdout: np.ndarray     # held-out rows (never inserted), in arrival order
    holdout_pos: np.ndarray  # stream rows arrived before each held-out row
    queries: np.ndarray     # the "all queries" set
    metric: str


# Splits the ordered dataset into the stream and held-out rows (every
# `every`-th arrival; none with 0); the query set is the dataset's own
# queries (first `count`), or for data without any, `count` held-out rows
# spread evenly.
def make_stream(ds, perm, every, count):
    held = (np.arange(len(perm)) % every) == every - 1 if every > 0 else np.zeros(len(perm), dtype=bool)
    ordered = ds.base[perm]
    pos = np.cumsum(~held)[held]
    holdout = ordered[held]
    if ds.queries is not None:
        queries = ds.queries[:count]
    else:
        queries = holdout[np.unique(np.linspace(0, len(holdout) - 1, min(count, len(holdout))).round().astype(int))]
    if len(queries) == 0:
        sys.exit("simulate: no queries: the data has no query file and no held-out rows")
    return Stream(ordered[~held], holdout, pos, queries, ds.metric)


# ---------------------------------------------------------------- runbook

# Loads the entry of a runbook file for the dataset (or for --runbook-dataset):
# (entry name, ordered steps as dicts, the entry's `order` key or None).
def load_runbook(path, dataset, override):
    with open(path) as f:
        book = yaml.safe_load(f)
    if not isinstance(book, dict) or not book:
        sys.exit(f"simulate: {path} is not a runbook")
    name = override or dataset
    if name not in book:
        sys.exit(f"simulate: {path} has no entry {name!r} (it has {', '.join(map(str, book))}); "
                 "pick one with --runbook-dataset NAME to replay its ranges on this data")
    entry = book[name]
    steps = sorted((int(k), v) for k, v in entry.items() if str(k).isdigit())
    if not steps or not all(isinstance(v, dict) for _, v in steps):
        sys.exit(f"simulate: entry {name!r} of {path} has no steps, or a step that is not a mapping")
    return name, [dict(v, number=k) for k, v in steps], entry.get("order")


# Checks every step against a stream of `rows` rows (ranges inside it, no
# insert of a live row, replaces of live rows only); returns the most rows
# live at once.
def check_runbook(steps, rows):
    live = np.zeros(rows, dtype=bool)
    peak = 0
    for s in steps:
        op = s.get("operation")
        try:
            if op in ("insert", "delete"):
                lo, hi = int(s["start"]), int(s["end"])
                ranges = [(lo, hi)]
            elif op == "replace":
                lo, hi = int(s["tags_start"]), int(s["tags_end"])
                ranges = [(lo, hi), (int(s["ids_start"]), int(s["ids_end"]))]
                if ranges[1][1] - ranges[1][0] != hi - lo:
                    sys.exit(f"simulate: step {s['number']}: replace ranges differ in length")
            elif op == "search":
                continue
            else:
                sys.exit(f"simulate: step {s['number']}: unknown operation {op!r} (insert, delete, replace, search)")
        except KeyError as e:
            sys.exit(f"simulate: step {s['number']} ({op}) lacks {e.args[0]}")
        for a, b in ranges:
            if not 0 <= a < b <= rows:
                sys.exit(f"simulate: step {s['number']} ({op}) has rows [{a}, {b}) beyond the {rows} rows of the "
                         "stream (the data's rows minus the held-out ones)")
        if op == "insert" and live[lo:hi].any():
            sys.exit(f"simulate: step {s['number']} inserts rows already live")
        if op == "replace" and not live[lo:hi].all():
            sys.exit(f"simulate: step {s['number']} replaces rows that are not live")
        if op != "replace":
            live[lo:hi] = op == "insert"
        peak = max(peak, int(live.sum()))
    return peak


# ---------------------------------------------------------------- SQL

# Binary COPY data of (id int, v real[] or vector) rows.
def copy_payload(ids, vecs, kind):
    n, d = vecs.shape
    if kind == "vector":
        dt = np.dtype([("nf", ">i2"), ("idlen", ">i4"), ("id", ">i4"), ("vlen", ">i4"),
                       ("dim", ">i2"), ("unused", ">i2"), ("x", ">f4", (d,))])
        rec = np.zeros(n, dt)
        rec["vlen"], rec["dim"], rec["x"] = 4 + 4 * d, d, vecs
    else:
        dt = np.dtype([("nf", ">i2"), ("idlen", ">i4"), ("id", ">i4"), ("vlen", ">i4"), ("ndim", ">i4"),
                       ("flags", ">i4"), ("elem", ">i4"), ("dim", ">i4"), ("lbound", ">i4"),
                       ("x", [("len", ">i4"), ("val", ">f4")], (d,))])
        rec = np.zeros(n, dt)
        rec["vlen"], rec["ndim"], rec["elem"], rec["dim"], rec["lbound"] = 20 + 8 * d, 1, 700, d, 1
        rec["x"]["len"], rec["x"]["val"] = 4, vecs
    rec["nf"], rec["idlen"], rec["id"] = 2, 4, ids
    return b"PGCOPY\n\xff\r\n\x00" + bytes(8) + rec.tobytes() + b"\xff\xff"


# Copies rows into a table.
def copy_rows(conn, table, ids, vecs, kind):
    with conn.cursor().copy(f"COPY {table} (id, v) FROM STDIN (FORMAT BINARY)") as cp:
        cp.write(copy_payload(ids, vecs, kind))


# Whether a server setting exists (checked before this session sets any).
def has_setting(conn, name):
    return conn.execute("SELECT 1 FROM pg_settings WHERE name = %s", (name,)).fetchone() is not None


# Sets server settings (ALTER SYSTEM, reload) and waits until this session sees them.
def set_server(conn, settings):
    for name, value in settings.items():
        if value is None:
            conn.execute(f"ALTER SYSTEM RESET {name}")
        else:
            conn.execute(f"ALTER SYSTEM SET {name} = '{value}'")
    conn.execute("SELECT pg_reload_conf()")
    for _ in range(50):
        time.sleep(0.1)
        if all(value is None or conn.execute(f"SHOW {name}").fetchone()[0] == str(value)
               for name, value in settings.items()):
            return
    sys.exit(f"simulate: the server did not take {settings}")


@dataclass
class Config:
    name: str
    settings: dict      # query-time settings (SET name = value)


@dataclass
class Family:
    """One table and its index, replaying the stream; its configs share it."""
    name: str           # label of the index in the plot
    am: str             # drift, ivfflat or hnsw
    table: str
    configs: list
    janitor: bool = False
    built: bool = False

    # The index's name.
    @property
    def index(self):
        return f"{self.table}_idx"

    # The column type the queries are cast to.
    @property
    def kind(self):
        return "real[]" if self.am == "drift" else "vector"


# The index's size, L0 rows and buckets (the last two for drift only).
def index_stats(conn, fam):
    size = conn.execute("SELECT pg_relation_size(%s::regclass)", (fam.index,)).fetchone()[0]
    if fam.am != "drift":
        return {"index_bytes": size, "l0_rows": "", "buckets": ""}
    l0, lists = conn.execute("SELECT l0_entries, lists FROM drift_index_stats(%s)", (fam.index,)).fetchone()
    return {"index_bytes": size, "l0_rows": l0, "buckets": lists}


# Builds a family's index on the rows its table holds.
def build_index(conn, fam, metric, live_rows, opts):
    cosine = metric == "cosine"
    if fam.am == "drift":
        sql = f"CREATE INDEX {fam.index} ON {fam.table} USING drift (v{' drift_cosine_ops' if cosine else ''})"
    elif fam.am == "ivfflat":
        sql = (f"CREATE INDEX {fam.index} ON {fam.table} USING ivfflat (v vector_{'cosine' if cosine else 'l2'}_ops)"
               f" WITH (lists = {max(10, live_rows // 1000)})")
    else:
        sql = (f"CREATE INDEX {fam.index} ON {fam.table} USING hnsw (v vector_{'cosine' if cosine else 'l2'}_ops)"
               f" WITH (m = {opts.hnsw_m}, ef_construction = {opts.hnsw_ef_construction})")
    conn.execute(sql)
    conn.execute(f"ANALYZE {fam.table}")
    fam.built = True


# Waits until the janitor has flushed the drift index's L0 below
# drift.l0_flush_rows or has gone quiet (what it reports unchanged for two
# naps: it counts L0 in whole pages, so a few rows more may not be due), at
# least one nap and at most `timeout` seconds.
def settle(conn, fam, flush_rows, nap, timeout):
    start = time.monotonic()
    time.sleep(min(nap, timeout))
    last, since = None, time.monotonic()
    while time.monotonic() - start < timeout:
        now = conn.execute("SELECT l0_entries, flushes, splits, merges, compactions, retired_chains"
                           " FROM drift_index_stats(%s)", (fam.index,)).fetchone()
        if now[0] < max(flush_rows, 1):
            return
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= 2 * nap:
            return
        time.sleep(0.2)


# ---------------------------------------------------------------- measuring

# Distances from queries (q x d) to rows (n x d) under the metric, in float64.
def distances(q, x, metric):
    if metric == "cosine":
        return 1 - normalized(q) @ normalized(x).T
    q, x = q.astype(np.float64), x.astype(np.float64)
    return np.maximum((q * q).sum(1)[:, None] - 2 * q @ x.T + (x * x).sum(1), 0)


# Per query, the distance of its k-th nearest row among `vectors`.
def kth_distances(queries, vectors, k, metric):
    return np.partition(distances(queries, vectors, metric), k - 1, axis=1)[:, k - 1]


# recall@10 of result id lists: per query, the returned rows no farther than
# its true k-th nearest live row (`kth`; ties count), over k = min(10, live
# rows); `vectors` holds every stream row, `vec_row` maps row ids to them.
def recall(queries, results, kth, k, vectors, vec_row, metric):
    hits = 0
    for q, ids, bound in zip(queries, results, kth):
        ids = np.asarray(ids[:k], dtype=np.int64)
        ids = ids[vec_row[ids] >= 0]
        if len(ids):
            d = distances(q[None, :], vectors[vec_row[ids]], metric)[0]
            hits += int((d <= bound * (1 + 1e-6) + 1e-9).sum())
    return hits / (k * len(results))


# The query text of a vector for the column type.
def query_text(vec, kind):
    inner = ",".join(f"{x:.9g}" for x in vec)
    return "{" + inner + "}" if kind == "real[]" else "[" + inner + "]"


# Runs the queries of one configuration through a prepared statement with
# index scans forced: once to warm up, then timed, repeated until at least
# `seconds` have passed: (id lists of the first timed round, QPS).
def run_queries(conn, fam, cfg, qtexts, metric, seconds):
    conn.execute("RESET ALL")
    conn.execute("SET enable_seqscan = off")
    for name, value in cfg.settings.items():
        conn.execute(f"SET {name} = {value}")
    sql = f"SELECT id FROM {fam.table} ORDER BY v {'<=>' if metric == 'cosine' else '<->'} %s::{fam.kind} LIMIT {K}"
    plan = "\n".join(r[0] for r in conn.execute(f"EXPLAIN {sql}", (qtexts[0],)))
    if fam.index not in plan:
        sys.exit(f"simulate: {cfg.name}: the query does not use {fam.index}:\n{plan}")
    cur = conn.cursor()
    for q in qtexts:
        cur.execute(sql, (q,), prepare=True).fetchall()
    t0 = time.perf_counter()
    results = [[r[0] for r in cur.execute(sql, (q,), prepare=True).fetchall()] for q in qtexts]
    done = len(qtexts)
    while time.perf_counter() - t0 < seconds:
        for q in qtexts:
            cur.execute(sql, (q,), prepare=True).fetchall()
        done += len(qtexts)
    return results, done / (time.perf_counter() - t0)


# ---------------------------------------------------------------- replay

@dataclass
class State:
    """What the stream holds at a point of the replay."""
    vec_row: np.ndarray          # per row id: the stream row holding its vector, -1 when not live
    last_arrival: tuple = None   # stream rows of the latest insert (or replace), [start, end)

    # The ids of the live rows.
    def live_ids(self):
        return np.flatnonzero(self.vec_row >= 0)


# The recent queries: held-out rows that arrived within the latest insert's
# range, at most `count` (spread evenly); if fewer than `least`, the `least`
# held-out rows that arrived last before its end.
def recent_queries(stream, state, count, least):
    if state.last_arrival is None:
        return np.array([], dtype=int)
    lo, hi = state.last_arrival
    pos = stream.holdout_pos
    inside = np.flatnonzero((pos >= lo) & (pos < hi))
    if len(inside) < least:
        inside = np.flatnonzero(pos < hi)[-least:]
    if len(inside) > count:
        inside = inside[np.unique(np.linspace(0, len(inside) - 1, count).round().astype(int))]
    return inside


# Applies an insert, delete or replace step to one family's table (a delete
# or replace is followed by VACUUM, as autovacuum would).
def apply_step(conn, fam, step, stream):
    op = step["operation"]
    if op == "insert":
        lo, hi = int(step["start"]), int(step["end"])
        copy_rows(conn, fam.table, np.arange(lo, hi), stream.rows[lo:hi], fam.kind)
    elif op == "delete":
        conn.execute(f"DELETE FROM {fam.table} WHERE id >= %s AND id < %s", (int(step["start"]), int(step["end"])))
        conn.execute(f"VACUUM {fam.table}")
    else:
        tags = np.arange(int(step["tags_start"]), int(step["tags_end"]))
        ids = np.arange(int(step["ids_start"]), int(step["ids_end"]))
        conn.execute(f"CREATE TEMP TABLE stage (id int, v {fam.kind})")
        copy_rows(conn, "stage", tags, stream.rows[ids], fam.kind)
        conn.execute(f"UPDATE {fam.table} t SET v = s.v FROM stage s WHERE t.id = s.id")
        conn.execute("DROP TABLE stage")
        conn.execute(f"VACUUM {fam.table}")


# Updates the replay state after an insert, delete or replace step.
def advance(state, step):
    op = step["operation"]
    if op == "insert":
        lo, hi = int(step["start"]), int(step["end"])
        state.vec_row[lo:hi] = np.arange(lo, hi)
        state.last_arrival = (lo, hi)
    elif op == "delete":
        state.vec_row[int(step["start"]):int(step["end"])] = -1
    else:
        lo, hi = int(step["ids_start"]), int(step["ids_end"])
        state.vec_row[int(step["tags_start"]):int(step["tags_end"])] = np.arange(lo, hi)
        state.last_arrival = (lo, hi)


# Measures every configuration of the families at a search step: the
# queries of both sets, recall against the rows live now, QPS (over both
# sets, timed for at least `seconds`).
def measure(conn, families, stream, state, recent, texts, seconds):
    live = state.live_ids()
    k = min(K, len(live))
    sets = [(stream.queries, range(len(stream.queries)), "all"), (stream.holdout[recent], recent, "held")]
    kth = [kth_distances(q, stream.rows[state.vec_row[live]], k, stream.metric) if k and len(q) else None
           for q, _, _ in sets]
    out = {}
    for fam in families:
        qtexts = [texts(fam.kind, which, i) for _, idx, which in sets for i in idx]
        for cfg in fam.configs:
            results, qps = run_queries(conn, fam, cfg, qtexts, stream.metric, seconds)
            rec, start = [], 0
            for (q, _, _), bound in zip(sets, kth):
                part = results[start:start + len(q)]
                start += len(q)
                rec.append(f"{recall(q, part, bound, k, stream.rows, state.vec_row, stream.metric):.4f}"
                           if bound is not None else "")
            out[cfg.name] = {"recall_at_10": rec[0], "recall_recent_at_10": rec[1],
                             "recent_queries": len(recent), "qps": f"{qps:.1f}"}
    return out


# Replays the runbook against the families (one pass, one connection),
# writing a row per step and configuration.
def replay(conn, families, steps, stream, opts, out):
    state = State(np.full(len(stream.rows), -1, dtype=np.int64))
    cache = {}

    # The query text of query i of a set ("all" or "held") for a column type.
    def texts(kind, which, i):
        if (kind, which, i) not in cache:
            cache[kind, which, i] = query_text((stream.queries if which == "all" else stream.holdout)[i], kind)
        return cache[kind, which, i]

    t_start = time.monotonic()
    last = steps[-1]["number"]
    for step in steps:
        op = step["operation"]
        op_s = {}
        if op != "search":
            for fam in families:
                t0 = time.monotonic()
                apply_step(conn, fam, step, stream)
                op_s[fam.name] = time.monotonic() - t0
            advance(state, step)
            for fam in families:
                if not fam.built and op == "insert":
                    t0 = time.monotonic()
                    build_index(conn, fam, stream.metric, len(state.live_ids()), opts)
                    op_s[fam.name] += time.monotonic() - t0
            for fam in families:
                if fam.janitor and fam.built:
                    settle(conn, fam, opts.l0_flush_rows, opts.naptime, opts.janitor_timeout)
            log(f"step {step['number']:>3}/{last} {op:<7} -> {len(state.live_ids())} live rows; "
                + ", ".join(f"{f} {s:.1f} s" for f, s in op_s.items()))
        built = [fam for fam in families if fam.built]
        if op == "search" and not built:
            log(f"step {step['number']:>3}/{last} search before any insert: skipped")
            continue
        found = {}
        if op == "search":
            recent = recent_queries(stream, state, opts.queries, opts.min_recent)
            found = measure(conn, built, stream, state, recent, texts, opts.qps_seconds)
        live = len(state.live_ids())
        for fam in built:
            stats = index_stats(conn, fam)
            for cfg in fam.configs:
                row = dict.fromkeys(COLUMNS, "")
                row.update(step=step["number"], operation=op, live_rows=live, config=cfg.name, **stats,
                           **found.get(cfg.name, {}), elapsed_s=f"{time.monotonic() - t_start:.1f}")
                if fam.name in op_s:
                    row["op_s"] = f"{op_s[fam.name]:.3f}"
                out.writerow(row)
                if op == "search":
                    log(f"step {step['number']:>3}/{last} {cfg.name:<11} live {live:>7}  recall@10 "
                        f"{row['recall_at_10']}, recent {row['recall_recent_at_10'] or '-':<6}  QPS {row['qps']:>7}"
                        f"  index {stats['index_bytes'] / 1048576:.1f} MB  L0 {stats['l0_rows']}"
                        f"  buckets {stats['buckets']}")


# ---------------------------------------------------------------- plot

# Plots the CSV: recall@10 (dataset queries solid, recent ones dashed) and
# QPS at the search steps, one colour per configuration, and the size of
# each index (`indexes`: label -> a configuration on it) at every step,
# with the live rows dotted.
def plot(csv_path, png_path, title, indexes):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator

    with open(csv_path, newline="") as f:
        rows = list(csv.DictReader(f))
    fig, (ax_r, ax_q, ax_s) = plt.subplots(3, 1, figsize=(13, 11), sharex=True,
                                           gridspec_kw={"height_ratios": [3, 2, 2]})
    colours = {c: f"C{i}" for i, c in enumerate(CONFIGS)}
    for cfg in CONFIGS:
        mine = [r for r in rows if r["config"] == cfg and r["operation"] == "search"]
        if not mine:
            continue
        x = [int(r["step"]) for r in mine]
        ax_r.plot(x, [float(r["recall_at_10"]) for r in mine], "-o", ms=4, color=colours[cfg], label=cfg)
        recent = [(int(r["step"]), float(r["recall_recent_at_10"])) for r in mine if r["recall_recent_at_10"]]
        if recent:
            ax_r.plot(*zip(*recent), "--x", ms=5, color=colours[cfg])
        ax_q.plot(x, [float(r["qps"]) for r in mine], "-o", ms=4, color=colours[cfg])
    for label, cfg in indexes.items():
        mine = [(int(r["step"]), int(r["index_bytes"]) / 1048576) for r in rows if r["config"] == cfg]
        if mine:
            ax_s.plot(*zip(*mine), "-", color=colours[cfg], label=label)
    ax_l = ax_s.twinx()
    ax_l.plot(*zip(*sorted({(int(r["step"]), int(r["live_rows"])) for r in rows})), ":", color="grey")
    ax_l.set_ylabel("live rows (dotted)", color="grey")
    ax_l.set_ylim(bottom=0)
    handles, labels = ax_r.get_legend_handles_labels()
    handles += [Line2D([], [], color="k", ls="-", marker="o", ms=4), Line2D([], [], color="k", ls="--", marker="x")]
    labels += ["dataset queries", "recent queries"]
    ax_r.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=9)
    ax_r.set_ylabel("recall@10")
    ax_r.set_title(title, fontsize=10)
    ax_q.set_ylabel("QPS (1 client)")
    ax_q.set_ylim(bottom=0)
    ax_s.set_ylabel("index size (MB)")
    ax_s.set_ylim(bottom=0)
    ax_s.set_xlabel("runbook step")
    ax_s.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax_s.legend(loc="upper left", bbox_to_anchor=(1.08, 1), fontsize=9, title="index", title_fontsize=9)
    for ax in (ax_r, ax_q, ax_s):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(png_path, dpi=100)
    plt.close(fig)


# ---------------------------------------------------------------- main

# Parses "auto" or a non-negative integer.
def auto_int(text):
    if text == "auto":
        return None
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be auto or >= 0")
    return value


# Command-line options.
def parse_args():
    p = argparse.ArgumentParser(description="Replays a streaming runbook against drift, ivfflat and hnsw indexes "
                                "and records recall@10, QPS and index size at every search step.")
    p.add_argument("runbook", help="runbook YAML (big-ann-benchmarks streaming format)")
    p.add_argument("dataset", help=f"{', '.join(NAMED)} (under DRIFT_DATA), gen:ROWS:DIM[:SHIFT[:PHASES]] "
                   "(build/vecdata), or an .fvecs file")
    p.add_argument("--runbook-dataset", help="runbook entry to replay (default: the dataset's name)")
    p.add_argument("--query-file", help=".fvecs queries (default: the shared set's; none for a file or gen)")
    p.add_argument("--metric", choices=("l2", "cosine"), help="default: the shared set's, else l2")
    p.add_argument("--order", choices=("file", "clusters", "gradual"),
                   help="arrival order (default: the runbook entry's `order`, else clusters)")
    p.add_argument("--clusters", type=int, default=10, help="k-means clusters of the arrival order (10)")
    p.add_argument("--overlap", type=float, default=3.0, help="gradual order: clusters arriving mixed (3)")
    p.add_argument("--seed", type=int, default=42, help="seed of k-means and the gradual order (42)")
    p.add_argument("--holdout-every", type=int, default=20,
                   help="every n-th arriving row is held out as a query (20; 0: none, and no recent queries)")
    p.add_argument("--queries", type=int, default=100, help="queries per set (dataset, recent) per checkpoint (100)")
    p.add_argument("--min-recent", type=int, default=20, help="fewest recent queries (20)")
    p.add_argument("--qps-seconds", type=float, default=0.5,
                   help="the timed round of queries repeats until this many seconds have passed (0.5)")
    p.add_argument("--configs", default=",".join(CONFIGS), help=f"comma-separated subset of {','.join(CONFIGS)}")
    p.add_argument("--probes", type=int, default=8, help="drift.probes of every drift configuration (8)")
    p.add_argument("--lambda", dest="lam", type=float, default=0.5, help="drift.lambda of lambda-tau (0.5)")
    p.add_argument("--tau", type=float, default=32, help="drift.tau of lambda-tau (32)")
    p.add_argument("--target-recall", type=float, default=0.95, help="drift.target_recall of target (0.95)")
    p.add_argument("--target-min-probes", type=int, default=1, help="drift.probes (the minimum) of target (1)")
    p.add_argument("--ivfflat-probes", type=int, default=10, help="ivfflat.probes (10)")
    p.add_argument("--hnsw-m", type=int, default=16)
    p.add_argument("--hnsw-ef-construction", type=int, default=64)
    p.add_argument("--hnsw-ef-search", type=int, default=40)
    p.add_argument("--janitor-timeout", type=float, default=10,
                   help="most seconds to wait for the janitor after a step (10)")
    p.add_argument("--l0-flush-rows", type=auto_int, default=None,
                   help="drift.l0_flush_rows to set: auto (2%% of the most live rows, at least 100) or a number")
    p.add_argument("--l0-max-rows", type=auto_int, default=None,
                   help="drift.l0_max_rows to set: auto (twice l0_flush_rows) or a number")
    p.add_argument("--dbname", default="bench")
    p.add_argument("--out", help="output directory (default: a directory under the OS temp dir)")
    args = p.parse_args()
    args.configs = [c for c in args.configs.split(",") if c]
    unknown = set(args.configs) - set(CONFIGS)
    if unknown:
        p.error(f"unknown configurations: {', '.join(sorted(unknown))}")
    return args


# The passes of the replay, (janitor on?, families), with the configurations
# this server has: the janitor's families, then the one without it.
def plan_passes(conn, args):
    want = set(args.configs)
    base = {"drift.probes": args.probes}
    plain = dict(base)
    if has_setting(conn, "drift.lambda") and has_setting(conn, "drift.tau"):
        plain.update({"drift.lambda": 0, "drift.tau": 0})
    drift_cfgs = [Config("plain", plain)] if "plain" in want else []
    for name, extra in (("lambda-tau", {"drift.lambda": args.lam, "drift.tau": args.tau}),
                        ("target", {"drift.target_recall": args.target_recall,
                                    "drift.probes": args.target_min_probes})):
        if name not in want:
            continue
        missing = [s for s in extra if not has_setting(conn, s)]
        if missing:
            log(f"simulate: skipping {name}: this server has no {', '.join(missing)}")
        else:
            drift_cfgs.append(Config(name, {**base, **extra}))
    first = []
    if drift_cfgs:
        first.append(Family("drift, janitor", "drift", "sim_drift", drift_cfgs, janitor=True))
    if want & {"ivfflat", "hnsw"}:
        if conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'").fetchone():
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
            if "ivfflat" in want:
                first.append(Family("ivfflat", "ivfflat", "sim_ivfflat",
                                    [Config("ivfflat", {"ivfflat.probes": args.ivfflat_probes})]))
            if "hnsw" in want:
                first.append(Family("hnsw", "hnsw", "sim_hnsw",
                                    [Config("hnsw", {"hnsw.ef_search": args.hnsw_ef_search})]))
        else:
            log("simulate: skipping ivfflat and hnsw: pgvector is not installed")
    passes = [(True, first)] if first else []
    if "janitor-off" in want:
        passes.append((False, [Family("drift, janitor off", "drift", "sim_drift_off", [Config("janitor-off", plain)])]))
    return passes


# Loads the data and the runbook, replays it pass by pass, writes the CSV and the PNG.
def main():
    args = parse_args()
    t0 = time.monotonic()
    ds = load_dataset(args.dataset, args)
    entry, steps, entry_order = load_runbook(args.runbook, ds.name, args.runbook_dataset)
    order = args.order or entry_order or "clusters"
    if order not in ("file", "clusters", "gradual"):
        sys.exit(f"simulate: unknown order {order!r} in the runbook")
    stream = make_stream(ds, arrival_order(ds, order, args.clusters, args.overlap, args.seed),
                         args.holdout_every, args.queries)
    peak = check_runbook(steps, len(stream.rows))
    if args.l0_flush_rows is None:
        args.l0_flush_rows = max(100, peak // 50)
    if args.l0_max_rows is None:
        args.l0_max_rows = 2 * args.l0_flush_rows
    dim = ds.base.shape[1]
    book = os.path.basename(args.runbook).rsplit(".", 1)[0]
    out_dir = args.out or os.path.join(tempfile.gettempdir(), f"drift-simulate-{book}-{ds.name}")
    os.makedirs(out_dir, exist_ok=True)
    csv_path = os.path.join(out_dir, f"{book}-{ds.name}.csv")
    png_path = os.path.join(out_dir, f"{book}-{ds.name}.png")
    log(f"simulate: {args.runbook} [{entry}] on {ds.name}: {len(stream.rows)} stream rows "
        f"({len(stream.holdout)} held out), {dim}-d, {ds.metric}, order {order}, {len(stream.queries)} dataset "
        f"queries; {len(steps)} steps, at most {peak} rows live; data ready in {time.monotonic() - t0:.1f} s")

    with psycopg.connect(dbname=args.dbname, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS drift")
        if "drift" not in conn.execute("SHOW shared_preload_libraries").fetchone()[0]:
            log("simulate: drift is not in shared_preload_libraries: there is no janitor")
        passes = plan_passes(conn, args)
        args.naptime = conn.execute("SELECT setting::float / 1000 FROM pg_settings"
                                    " WHERE name = 'drift.janitor_naptime'").fetchone()[0]
        l0 = {"drift.l0_flush_rows": args.l0_flush_rows, "drift.l0_max_rows": args.l0_max_rows}
        log(f"simulate: drift.l0_flush_rows = {args.l0_flush_rows}, drift.l0_max_rows = {args.l0_max_rows}; passes: "
            + " | ".join(", ".join(c.name for f in fams for c in f.configs) for _, fams in passes))
        try:
            set_server(conn, l0)
            with open(csv_path, "w", newline="") as f:
                out = csv.DictWriter(f, COLUMNS)
                out.writeheader()
                for janitor, families in passes:
                    set_server(conn, {"drift.janitor": "on" if janitor else "off"})
                    for fam in families:
                        column = fam.kind if fam.am == "drift" else f"vector({dim})"
                        conn.execute(f"DROP TABLE IF EXISTS {fam.table}")
                        conn.execute(f"CREATE TABLE {fam.table} (id int PRIMARY KEY, v {column})")
                    replay(conn, families, steps, stream, args, out)
                    for fam in families:
                        conn.execute(f"DROP TABLE {fam.table}")
        finally:
            set_server(conn, dict.fromkeys([*l0, "drift.janitor"]))
    indexes = {fam.name + (f" ({', '.join(c.name for c in fam.configs)})" if len(fam.configs) > 1 else ""):
               fam.configs[0].name for _, fams in passes for fam in fams}
    plot(csv_path, png_path, f"{book} on {ds.name} ({len(stream.rows)} rows, {dim}-d, {ds.metric}, order {order}); "
         f"probes {args.probes}, L0 flush at {args.l0_flush_rows} rows (janitor), {args.l0_max_rows} (inline)", indexes)
    log(f"simulate: done in {time.monotonic() - t0:.0f} s: {csv_path} {png_path}")


if __name__ == "__main__":
    main()
