"""One MLflow tracking workload against one server, timed client-side.

Usage: bench_mlflow.py TRACKING_URI [TOKEN] — prints one JSON line.
       bench_mlflow.py --client-alone [NULL_URL] — the same mlflow-client
       workload with no server: every request is built as usual (requests
       encodes the body and prepares the call) and then answered at once
       inside the process instead of being sent, so the figures are the
       client's own cost. With NULL_URL (a route that does no work, e.g.
       /healthz) it also times sending one prepared request over a
       keep-alive connection and reading the answer: client plus round
       trips is the floor under any server's figures.
The workload (issue #3): 100,000 points as 100 `log_batch` calls of 1,000,
then 1,000 single `log_metric` calls, then `get_metric_history` of a
10,000-point key (median of several reads) — once through the mlflow
client, once as raw HTTP with the request bodies built beforehand.
"""

import json
import os
import statistics
import sys
import time

CLIENT_ALONE = sys.argv[1] == "--client-alone"
uri = "http://127.0.0.1:9" if CLIENT_ALONE else sys.argv[1]
if len(sys.argv) > 2 and not CLIENT_ALONE:
    os.environ["MLFLOW_TRACKING_TOKEN"] = sys.argv[2]

import requests  # noqa: E402
from mlflow import MlflowClient  # noqa: E402
from mlflow.entities import Metric  # noqa: E402

KEYS = 10  # 10 keys x 100 steps per batch: a training loop's shape
BATCHES = 100
T0 = 1_700_000_000_000

rtt_ms = None
if CLIENT_ALONE and len(sys.argv) > 2:
    # Only the sending: building a request is in the client's figures.
    null = requests.Session()
    prepared = null.prepare_request(requests.Request("GET", sys.argv[2]))
    null.send(prepared).raise_for_status()
    trips = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(200):
            null.send(prepared)
        trips.append((time.perf_counter() - start) / 200 * 1000)
    rtt_ms = min(trips)

if CLIENT_ALONE:
    # Answers as a server would, with bodies made once: the history is the
    # 10,000 points the workload logs under metric_0.
    answers = {
        "experiments/create": {"experiment_id": "1"},
        "runs/create": {"run": {"info": {
            "run_id": "0" * 32, "run_uuid": "0" * 32, "experiment_id": "1",
            "status": "RUNNING", "start_time": 1, "lifecycle_stage": "active",
            "artifact_uri": "mlflow-artifacts:/1/0/artifacts"}, "data": {}}},
        "metrics/get-history": {"metrics": [
            {"key": "metric_0", "value": 1.0 / (s + 1), "timestamp": T0 + s, "step": s}
            for s in range(BATCHES * 100)]},
    }
    bodies_by_path = {k: json.dumps(v).encode() for k, v in answers.items()}

    # The mlflow client hands requests a dict (`json=`), which requests
    # encodes while preparing the call: that work stays in; only the
    # transport and the server are left out.
    def answer(self, request, **kwargs):
        r = requests.Response()
        r.status_code = 200
        r.headers["Content-Type"] = "application/json"
        path = request.url.split("?")[0]
        r._content = next((b for k, b in bodies_by_path.items() if path.endswith(k)), b"{}")
        r.request, r.url, r.encoding = request, request.url, "utf-8"
        return r

    requests.Session.send = answer

client = MlflowClient(tracking_uri=uri)
exp = client.create_experiment(f"bench-{time.time_ns()}")
run_id = client.create_run(exp).info.run_id

batches = []
for b in range(BATCHES):
    batch = []
    for s in range(b * 100, (b + 1) * 100):
        for k in range(KEYS):
            batch.append(Metric(f"metric_{k}", 1.0 / (s + k + 1), T0 + s, s))
    batches.append(batch)

start = time.perf_counter()
for batch in batches:
    client.log_batch(run_id, metrics=batch)
batch_s = time.perf_counter() - start

start = time.perf_counter()
for i in range(1000):
    client.log_metric(run_id, "single", float(i), timestamp=T0 + i, step=i)
single_s = time.perf_counter() - start

reads = []
for _ in range(5):
    start = time.perf_counter()
    history = client.get_metric_history(run_id, "metric_0")
    reads.append(time.perf_counter() - start)
assert len(history) == 10_000, len(history)
assert sorted(m.step for m in history) == list(range(10_000))

if CLIENT_ALONE:
    print(json.dumps({"batch_s": batch_s, "single_s": single_s,
                      "history_ms": statistics.median(reads) * 1000, "rtt_ms": rtt_ms}))
    sys.exit(0)

# The same workload as raw HTTP with bodies built beforehand: the server's
# own cost (and HTTP), without the client's object building and parsing.
session = requests.Session()
headers = {"Content-Type": "application/json"}
if os.environ.get("MLFLOW_TRACKING_TOKEN"):
    headers["Authorization"] = "Bearer " + os.environ["MLFLOW_TRACKING_TOKEN"]
raw_run = client.create_run(exp).info.run_id
bodies = [
    json.dumps({"run_id": raw_run, "metrics": [
        {"key": m.key, "value": m.value, "timestamp": m.timestamp, "step": m.step} for m in batch
    ]})
    for batch in batches
]
singles = [
    json.dumps({"run_id": raw_run, "key": "single", "value": float(i), "timestamp": T0 + i, "step": i})
    for i in range(1000)
]
start = time.perf_counter()
for body in bodies:
    r = session.post(uri + "/api/2.0/mlflow/runs/log-batch", data=body, headers=headers)
    assert r.status_code == 200, r.text
raw_batch_s = time.perf_counter() - start
start = time.perf_counter()
for body in singles:
    r = session.post(uri + "/api/2.0/mlflow/runs/log-metric", data=body, headers=headers)
    assert r.status_code == 200, r.text
raw_single_s = time.perf_counter() - start
raw_reads = []
for _ in range(5):
    start = time.perf_counter()
    r = session.get(uri + "/api/2.0/mlflow/metrics/get-history", headers=headers,
                    params={"run_id": raw_run, "metric_key": "metric_0", "max_results": 25000})
    raw_reads.append(time.perf_counter() - start)
    assert len(r.json()["metrics"]) == 10_000

print(json.dumps({
    "batch_s": batch_s,
    "batch_points_per_s": BATCHES * 1000 / batch_s,
    "single_s": single_s,
    "single_calls_per_s": 1000 / single_s,
    "history_ms": statistics.median(reads) * 1000,
    "raw_batch_s": raw_batch_s,
    "raw_single_s": raw_single_s,
    "raw_history_ms": statistics.median(raw_reads) * 1000,
}))
