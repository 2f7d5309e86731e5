"""The cost of reporting: the same training job run by `finetune-lab train`
(metrics printed, nothing sent) and through `finetune-lab serve` with its
in-process worker (every step's metrics, log lines, heartbeats, telemetry
and cost ticks sent over HTTP as events), alternating, several rounds.
Throughput is steps per second between the first and the last step's
report (the trainer's own per-interval metric excludes the reporting).
Prints one line per run and the median slowdown.
"""
import json, os, random, shutil, socket, statistics, subprocess, sys, tempfile, time, urllib.request

BIN, STEPS, ROUNDS = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
work = tempfile.mkdtemp()
rng = random.Random(7)
words = "loss step model data train eval token batch learning rate schedule warmup".split()
data = "".join(json.dumps({"messages": [{"role": "user", "content": " ".join(rng.choice(words) for _ in range(8))},
                                         {"role": "assistant", "content": " ".join(rng.choice(words) for _ in range(10))}]}) + "\n"
               for _ in range(2000))
open(f"{work}/data.jsonl", "w").write(data)
config = {"model": {"name": "ftl/byte-transformer-tiny", "torch_dtype": "float32"}, "lora": {"enabled": False},
          "training": {"optim": "adamw_torch", "bf16": False, "batch_size": 16, "max_steps": STEPS, "warmup_steps": 10,
                       "learning_rate": 0.001, "logging_steps": 1, "max_length": 128},
          "evaluation": {"strategy": "no"}, "checkpoint": {"save_strategy": "no", "metric_for_best_model": "train_loss"}}
json.dump(config, open(f"{work}/job.json", "w"))
env = dict(os.environ, FTL__LOG__LEVEL="warn")
env.pop("FTL_CONFIG", None)

def off():
    out = f"{work}/out"
    shutil.rmtree(out, ignore_errors=True)
    p = subprocess.Popen([BIN, "train", "--job-config", f"{work}/job.json", "--dataset", f"{work}/data.jsonl", "--out", out],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True)
    arrivals = {}
    for line in p.stdout:
        m = json.loads(line)
        if "train_loss" in m.get("metrics", {}):
            arrivals[m["step"]] = time.perf_counter()
    p.wait()
    return (STEPS - 1) / (arrivals[STEPS] - arrivals[1])

def request(url, key=None, body=None, method=None):
    req = urllib.request.Request(url, data=body, method=method)
    if key:
        req.add_header("Authorization", f"Bearer {key}")
    if body is not None and method != "PUT":
        req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read() or b"null")

def on():
    run = tempfile.mkdtemp(dir=work)
    s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
    e = dict(env, FTL__DATABASE__URL=f"sqlite:{run}/ftl.db", FTL__ARTIFACTS__ROOT=f"{run}/artifacts",
             FTL__SERVER__BIND=f"127.0.0.1:{port}", FTL__TRAINING__LOCAL_WORKERS="1")
    key = subprocess.run([BIN, "keys", "create", "--project", "bench"], env=e, capture_output=True, text=True, check=True).stdout.strip()
    server = subprocess.Popen([BIN, "serve"], env=e, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                request(f"{base}/healthz"); break
            except Exception:
                time.sleep(0.05)
        ds = request(f"{base}/api/v1/datasets?name=data.jsonl", key, data.encode(), "PUT")
        q = "mutation($c: JSON!, $d: ID!) { createTrainingJob(name: \"bench\", config: $c, datasetId: $d) { id } }"
        r = request(f"{base}/graphql", key, json.dumps({"query": q, "variables": {"c": config, "d": ds["id"]}}).encode())
        job = r["data"]["createTrainingJob"]["id"]
        while True:
            r = request(f"{base}/graphql", key, json.dumps({"query": "query($j: ID!) { job(id: $j) { status } }", "variables": {"j": job}}).encode())
            status = r["data"]["job"]["status"]
            if status in ("SUCCEEDED", "FAILED", "CANCELLED"):
                break
            time.sleep(0.2)
        assert status == "SUCCEEDED", status
        run_id = job.replace("-", "")
        h = request(f"{base}/api/2.0/mlflow/metrics/get-history?run_id={run_id}&metric_key=train_loss&max_results=100000", key)
        ts = {int(m["step"]): int(m["timestamp"]) / 1000.0 for m in h["metrics"]}
        return (STEPS - 1) / (ts[STEPS] - ts[1])
    finally:
        server.terminate(); server.wait()

print(f"tiny preset, batch 16, {STEPS} steps, metrics every step; {os.cpu_count()} cores")
slowdowns = []
for r in range(ROUNDS):
    a, b = off(), on()
    slowdowns.append(1 - b / a)
    print(f"round {r + 1}: reporting off {a:.2f} steps/s, on {b:.2f} steps/s, slowdown {100 * (1 - b / a):.1f} %")
print(f"median slowdown with reporting on: {100 * statistics.median(slowdowns):.1f} % (aim <= 5 %)")
shutil.rmtree(work, ignore_errors=True)
