"""`runs/search` over one experiment of many runs, against one server.

Usage: bench_mlflow_search.py TRACKING_URI [TOKEN] [--runs N] — prints one
JSON line. Builds an experiment of N runs (default 2,000), each with 5
params, 3 tags and 3 metrics (raw HTTP), then times three searches the
MLflow UI makes (median of 7, raw HTTP, 100 runs a page):
no filter; a metric filter ordered by another metric; a param and a tag
filter.
"""

import json
import statistics
import sys
import time

import requests

args = sys.argv[1:]
runs = 2000
if "--runs" in args:
    at = args.index("--runs")
    runs = int(args[at + 1])
    del args[at:at + 2]
uri = args[0]
token = args[1] if len(args) > 1 else ""
headers = {"Content-Type": "application/json"}
if token:
    headers["Authorization"] = "Bearer " + token
session = requests.Session()


def post(path, body):
    r = session.post(f"{uri}/api/2.0/mlflow/{path}", data=json.dumps(body), headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


exp = post("experiments/create", {"name": f"search-{time.time_ns()}"})["experiment_id"]
for i in range(runs):
    run = post("runs/create", {"experiment_id": exp, "start_time": 1_700_000_000_000 + i})
    post("runs/log-batch", {
        "run_id": run["run"]["info"]["run_id"],
        "params": [{"key": f"p{k}", "value": str((i * 7 + k) % 13)} for k in range(5)],
        "tags": [{"key": f"t{k}", "value": f"v{i % 10}"} for k in range(3)],
        "metrics": [{"key": f"m{k}", "value": ((i * 31 + k) % 1000) / 1000,
                     "timestamp": 1_700_000_000_000, "step": 0} for k in range(3)],
    })

out = {"runs": runs}
for name, extra in [
    ("search_plain_ms", {}),
    ("search_metric_ms", {"filter": "metrics.m0 > 0.9", "order_by": ["metrics.m1 DESC"]}),
    ("search_param_tag_ms", {"filter": "params.p0 = '3' and tags.t0 = 'v3'"}),
]:
    times = []
    for _ in range(7):
        start = time.perf_counter()
        found = post("runs/search", {"experiment_ids": [exp], "max_results": 100, **extra})
        times.append(time.perf_counter() - start)
    assert found.get("runs"), name
    out[name] = statistics.median(times) * 1000
print(json.dumps(out))
