#!/usr/bin/env python3
"""Writes the shipped runbooks of bench/simulate.py (this directory's .yaml).

Each runbook has one entry per dataset (the big-ann-benchmarks convention),
sized to the rows bench/simulate.py streams from it: the dataset's rows
minus the held-out ones (every 20th arrival). `order` is the simulator's
arrival order for the entry (big-ann-benchmarks ignores the key).

    python3 bench/runbooks/generate.py            # rewrites the three files
"""
import os

import yaml

# Dataset name -> rows of its stream (rows - rows // 20).
DATASETS = {"siftsmall": 9500, "mnist": 8550, "glove50": 4318, "gen-20000x64": 19000}


# Row bounds of `parts` equal slices of `rows` rows.
def slices(rows, parts):
    return [round(i * rows / parts) for i in range(parts + 1)]


# Clustered arrival: ten insert steps, a search after each.
def clustered(rows):
    b = slices(rows, 10)
    steps = []
    for i in range(10):
        steps += [{"operation": "insert", "start": b[i], "end": b[i + 1]}, {"operation": "search"}]
    return "clusters", steps


# Sliding window: the first 30% (six twentieths), then per twentieth an
# insert of the next slice and a delete of the oldest, and a search.
def sliding_window(rows):
    b = slices(rows, 20)
    steps = [{"operation": "insert", "start": 0, "end": b[6]}, {"operation": "search"}]
    for i in range(6, 20):
        steps += [{"operation": "insert", "start": b[i], "end": b[i + 1]},
                  {"operation": "delete", "start": b[i - 6], "end": b[i - 5]},
                  {"operation": "search"}]
    return "clusters", steps


# Gradual shift: the first 10%, then eighteen inserts of 5%, a search after
# each, over rows whose clusters arrive mixed and overlapping.
def gradual_shift(rows):
    b = slices(rows, 20)
    steps = [{"operation": "insert", "start": 0, "end": b[2]}, {"operation": "search"}]
    for i in range(2, 20):
        steps += [{"operation": "insert", "start": b[i], "end": b[i + 1]}, {"operation": "search"}]
    return "gradual", steps


# The most rows live at once during the steps (big-ann-benchmarks' max_pts).
def max_pts(steps):
    live = peak = 0
    for s in steps:
        live += {"insert": 1, "delete": -1}.get(s["operation"], 0) * (s.get("end", 0) - s.get("start", 0))
        peak = max(peak, live)
    return peak


# Writes one runbook file with an entry per dataset.
def write(path, make):
    book = {}
    for name, rows in DATASETS.items():
        order, steps = make(rows)
        book[name] = {"max_pts": max_pts(steps), "order": order, **{i: s for i, s in enumerate(steps, 1)}}
    with open(path, "w") as f:
        f.write(f"# {make.__name__} runbook of bench/simulate.py, written by bench/runbooks/generate.py.\n")
        yaml.safe_dump(book, f, sort_keys=False, default_flow_style=False)


# Writes the three runbooks next to this script.
def main():
    here = os.path.dirname(os.path.abspath(__file__))
    for make in (clustered, sliding_window, gradual_shift):
        write(os.path.join(here, f"{make.__name__}.yaml"), make)


if __name__ == "__main__":
    main()
