"""End-to-end tests: the real `mlflow` Python client against FineTune Lab.

Run by `api/tests/mlflow_client.rs`, which starts the server, creates an API
key and sets MLFLOW_TRACKING_URI and MLFLOW_TRACKING_TOKEN. Every value is
checked against what the test itself logged (no golden numbers from the
server).
"""

import math
import os
import tempfile
import time
import unittest

import mlflow
import requests
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException, RestException


def same(a, b):
    """Float equality where NaN equals NaN."""
    return (math.isnan(a) and math.isnan(b)) or a == b


class MlflowClientTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.client = MlflowClient()
        cls.suffix = str(time.time_ns())

    def test_set_experiment_runs_params_tags_metrics_round_trip(self):
        name = f"sft-llama-{self.suffix}"
        exp = mlflow.set_experiment(name)
        self.assertNotEqual(exp.experiment_id, "0")
        # set_experiment again finds it by name rather than creating it.
        self.assertEqual(mlflow.set_experiment(name).experiment_id, exp.experiment_id)
        self.assertEqual(self.client.get_experiment_by_name(name).experiment_id, exp.experiment_id)

        # (-0.0 is left out: SQLite's REAL storage keeps it as 0.0, as in
        # MLflow's own SQLite store.)
        values = [0.5, float("nan"), float("inf"), float("-inf"), 1e-300, 5e-324, 123456789.123456789]
        with mlflow.start_run(run_name="first-run") as run:
            run_id = run.info.run_id
            self.assertEqual(len(run_id), 32)
            self.assertEqual(run.info.run_name, "first-run")
            self.assertEqual(run.info.experiment_id, exp.experiment_id)
            mlflow.log_param("lr", "0.0002")
            mlflow.log_params({"epochs": 3, "model": "llama"})
            mlflow.set_tag("team", "nlp")
            mlflow.set_tags({"stage": "sft", "owner": "ada"})
            for step, v in enumerate(values):
                mlflow.log_metric("loss", v, step=step)
            mlflow.log_metrics({"acc": 0.75, "train/loss": 0.25}, step=10)
            self.client.log_batch(
                run_id,
                metrics=[Metric("batch", float(i) / 7, 1_700_000_000_000 + i, i) for i in range(1000)],
                params=[Param("batch_size", "8")],
                tags=[RunTag("kind", "batch")],
            )

        got = self.client.get_run(run_id)
        self.assertEqual(got.info.status, "FINISHED")
        self.assertIsNotNone(got.info.end_time)
        self.assertEqual(got.data.params, {"lr": "0.0002", "epochs": "3", "model": "llama", "batch_size": "8"})
        for k, v in {"team": "nlp", "stage": "sft", "owner": "ada", "kind": "batch", "mlflow.runName": "first-run"}.items():
            self.assertEqual(got.data.tags.get(k), v, k)
        # Latest value per key: greatest (step, timestamp, value).
        self.assertTrue(same(got.data.metrics["loss"], values[-1]))
        self.assertEqual(got.data.metrics["acc"], 0.75)
        self.assertEqual(got.data.metrics["batch"], 999 / 7)

        history = self.client.get_metric_history(run_id, "loss")
        self.assertEqual(sorted(m.step for m in history), list(range(len(values))))
        by_step = {m.step: m.value for m in history}
        for step, v in enumerate(values):
            self.assertTrue(same(by_step[step], v), (step, by_step[step], v))
        batch = self.client.get_metric_history(run_id, "batch")
        self.assertEqual(len(batch), 1000)
        self.assertEqual([m.value for m in batch], [i / 7 for i in range(1000)])
        self.assertEqual([m.timestamp for m in batch], [1_700_000_000_000 + i for i in range(1000)])

    def test_params_are_write_once(self):
        with mlflow.start_run() as run:
            mlflow.log_param("lr", "0.0002")
            mlflow.log_param("lr", "0.0002")  # same value: fine
            with self.assertRaises(MlflowException) as ctx:
                mlflow.log_param("lr", "0.0003")
            self.assertEqual(ctx.exception.error_code, "INVALID_PARAMETER_VALUE")
            self.assertIn("Changing param values is not allowed", str(ctx.exception))
        self.assertEqual(self.client.get_run(run.info.run_id).data.params["lr"], "0.0002")

    def test_resume_a_run_by_id_and_fail_it(self):
        with mlflow.start_run() as run:
            mlflow.log_metric("x", 1.0, step=1)
        run_id = run.info.run_id
        self.assertEqual(self.client.get_run(run_id).info.status, "FINISHED")
        with mlflow.start_run(run_id=run_id):
            self.assertEqual(self.client.get_run(run_id).info.status, "RUNNING")
            mlflow.log_metric("x", 2.0, step=2)
        got = self.client.get_run(run_id)
        self.assertEqual(got.info.status, "FINISHED")
        self.assertEqual([m.value for m in self.client.get_metric_history(run_id, "x")], [1.0, 2.0])
        self.client.set_terminated(run_id, status="FAILED")
        self.assertEqual(self.client.get_run(run_id).info.status, "FAILED")

    def test_search_runs_filters_and_orders(self):
        exp = self.client.create_experiment(f"search-{self.suffix}")
        ids = {}
        for lr, acc in [("0.1", 0.2), ("0.01", 0.6), ("0.001", 0.9)]:
            r = self.client.create_run(exp, run_name=f"lr-{lr}")
            self.client.log_param(r.info.run_id, "lr", lr)
            self.client.log_metric(r.info.run_id, "acc", acc)
            self.client.set_tag(r.info.run_id, "family", "llama" if acc > 0.5 else "qwen")
            ids[lr] = r.info.run_id
        found = self.client.search_runs([exp], "metrics.acc > 0.5", order_by=["metrics.acc DESC"])
        self.assertEqual([r.info.run_id for r in found], [ids["0.001"], ids["0.01"]])
        found = self.client.search_runs([exp], "params.lr = '0.1'")
        self.assertEqual([r.info.run_id for r in found], [ids["0.1"]])
        found = self.client.search_runs([exp], "tags.family = 'llama' AND attributes.status = 'RUNNING'")
        self.assertEqual({r.info.run_id for r in found}, {ids["0.01"], ids["0.001"]})
        found = self.client.search_runs([exp], "attributes.run_name LIKE 'lr-0.0%'")
        self.assertEqual({r.info.run_id for r in found}, {ids["0.01"], ids["0.001"]})
        page = self.client.search_runs([exp], max_results=2, order_by=["params.lr ASC"])
        self.assertEqual([r.data.params["lr"] for r in page], ["0.001", "0.01"])
        rest = self.client.search_runs([exp], max_results=2, order_by=["params.lr ASC"], page_token=page.token)
        self.assertEqual([r.data.params["lr"] for r in rest], ["0.1"])
        with self.assertRaises(MlflowException) as ctx:
            self.client.search_runs([exp], "metrics.acc >> 1")
        self.assertEqual(ctx.exception.error_code, "INVALID_PARAMETER_VALUE")

        # Deleted runs leave the default view and refuse writes until restored.
        self.client.delete_run(ids["0.1"])
        self.assertEqual(len(self.client.search_runs([exp])), 2)
        with self.assertRaises(MlflowException):
            self.client.log_metric(ids["0.1"], "acc", 0.3)
        self.client.restore_run(ids["0.1"])
        self.assertEqual(len(self.client.search_runs([exp])), 3)

    def test_tags_delete_and_rename(self):
        r = self.client.create_run("0")
        run_id = r.info.run_id
        self.assertTrue(r.info.run_name)  # generated name
        self.client.set_tag(run_id, "k", "v")
        self.client.delete_tag(run_id, "k")
        self.assertNotIn("k", self.client.get_run(run_id).data.tags)
        with self.assertRaises(MlflowException) as ctx:
            self.client.delete_tag(run_id, "k")
        self.assertEqual(ctx.exception.error_code, "RESOURCE_DOES_NOT_EXIST")
        self.client.update_run(run_id, name="renamed")
        got = self.client.get_run(run_id)
        self.assertEqual(got.info.run_name, "renamed")
        self.assertEqual(got.data.tags["mlflow.runName"], "renamed")

    def test_history_pages_and_bulk_interval(self):
        r = self.client.create_run("0")
        run_id = r.info.run_id
        n = 30_000
        for start in range(0, n, 1000):
            self.client.log_batch(
                run_id, metrics=[Metric("loss", 1.0 / (s + 1), 1_700_000_000_000 + s, s) for s in range(start, start + 1000)]
            )
        # The client reads pages of 25,000 and follows the token.
        history = self.client.get_metric_history(run_id, "loss")
        self.assertEqual(len(history), n)
        self.assertEqual([m.step for m in history], list(range(n)))
        self.assertEqual(history[12345].value, 1.0 / 12346)
        # Through the REST endpoint the MLflow UI uses.
        resp = requests.get(
            os.environ["MLFLOW_TRACKING_URI"] + "/api/2.0/mlflow/metrics/get-history-bulk-interval",
            params={"run_ids": [run_id], "metric_key": "loss", "max_results": 100},
            headers={"Authorization": "Bearer " + os.environ["MLFLOW_TRACKING_TOKEN"]},
        )
        self.assertEqual(resp.status_code, 200, resp.text)
        metrics = resp.json()["metrics"]
        steps = [m["step"] for m in metrics]
        self.assertLessEqual(len(steps), 100)
        self.assertGreaterEqual(len(steps), 50)
        self.assertEqual(steps[0], 0)
        self.assertEqual(steps[-1], n - 1)
        self.assertEqual(steps, sorted(steps))
        for m in metrics:
            self.assertEqual(m["run_id"], run_id)
            self.assertEqual(m["value"], 1.0 / (m["step"] + 1))

    def test_artifacts_upload_list_download(self):
        with mlflow.start_run() as run:
            with tempfile.TemporaryDirectory() as d:
                p = os.path.join(d, "notes.txt")
                with open(p, "w") as f:
                    f.write("hello artifacts\n")
                mlflow.log_artifact(p)
                ck = os.path.join(d, "checkpoint-500")
                os.makedirs(ck)
                payload = os.urandom(3 * 1024 * 1024 + 17)
                with open(os.path.join(ck, "model.safetensors"), "wb") as f:
                    f.write(payload)
                with open(os.path.join(ck, "config.json"), "w") as f:
                    f.write('{"step": 500}')
                mlflow.log_artifacts(ck, artifact_path="checkpoint-500")
            run_id = run.info.run_id
        top = {f.path: f for f in self.client.list_artifacts(run_id)}
        self.assertEqual(set(top), {"notes.txt", "checkpoint-500"})
        self.assertTrue(top["checkpoint-500"].is_dir)
        self.assertEqual(top["notes.txt"].file_size, len("hello artifacts\n"))
        inner = {f.path: f.file_size for f in self.client.list_artifacts(run_id, "checkpoint-500")}
        self.assertEqual(inner, {"checkpoint-500/model.safetensors": len(payload), "checkpoint-500/config.json": len('{"step": 500}')})
        with tempfile.TemporaryDirectory() as d:
            local = self.client.download_artifacts(run_id, "checkpoint-500/model.safetensors", d)
            with open(local, "rb") as f:
                self.assertEqual(f.read(), payload)
            local = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="notes.txt", dst_path=d)
            with open(local) as f:
                self.assertEqual(f.read(), "hello artifacts\n")

    def _post(self, path, body, token=True):
        headers = {"Authorization": "Bearer " + os.environ["MLFLOW_TRACKING_TOKEN"]} if token else {}
        return requests.post(os.environ["MLFLOW_TRACKING_URI"] + "/api/2.0/mlflow/" + path, json=body, headers=headers)

    def test_retried_batches_add_nothing_and_limits_hold(self):
        run_id = self.client.create_run("0").info.run_id
        body = {
            "run_id": run_id,
            "run_uuid": run_id,
            "metrics": [
                {"key": "loss", "value": "NaN", "timestamp": "1700000000000", "step": "3"},
                {"key": "loss", "value": 0.8123, "timestamp": 1700000000000, "step": 4},
                {"key": "loss", "value": "-Infinity", "timestamp": 1700000000001, "step": 5},
            ],
            "params": [{"key": "lr", "value": "0.0002"}],
            "tags": [{"key": "team", "value": "nlp"}],
            "unknown_field": {"ignored": True},
        }
        for _ in range(3):  # the client retries on 5xx and 429
            r = self._post("runs/log-batch", body)
            self.assertEqual((r.status_code, r.json()), (200, {}), r.text)
        history = self.client.get_metric_history(run_id, "loss")
        self.assertEqual([m.step for m in history], [3, 4, 5])
        self.assertTrue(math.isnan(history[0].value))
        self.assertEqual(history[2].value, float("-inf"))

        too_many = dict(body, metrics=[{"key": "m", "value": 1, "timestamp": 1, "step": i} for i in range(1001)], params=[], tags=[])
        r = self._post("runs/log-batch", too_many)
        self.assertEqual(r.status_code, 400)
        self.assertEqual(r.json()["error_code"], "INVALID_PARAMETER_VALUE")
        self.assertEqual(
            r.json()["message"],
            "A batch logging request can contain at most 1000 metrics. Got 1001 metrics. "
            "Please split up metrics across multiple requests and try again.",
        )
        # A rejected batch writes nothing, not even its valid part.
        conflict = dict(body, metrics=[{"key": "fresh", "value": 1, "timestamp": 1, "step": 0}], params=[{"key": "lr", "value": "0.5"}], tags=[])
        r = self._post("runs/log-batch", conflict)
        self.assertEqual(r.status_code, 400)
        self.assertEqual(self.client.get_metric_history(run_id, "fresh"), [])
        r = self._post("runs/log-metric", {"run_id": run_id, "key": "../x", "value": 1, "timestamp": 1})
        self.assertEqual((r.status_code, r.json()["error_code"]), (400, "INVALID_PARAMETER_VALUE"))
        r = self._post("runs/log-batch", "{not json", token=True)
        self.assertEqual(r.status_code, 400)

    def test_runs_are_jobs_in_graphql(self):
        with mlflow.start_run(run_name="seen-in-graphql") as run:
            for s in range(50):
                mlflow.log_metric("loss", 1.0 / (s + 1), step=s)
        q = """query($id: ID!) { job(id: $id) { name status provider }
                 metricSeries(jobId: $id, keys: ["loss"], maxPoints: 1000) { key points { step last count } } }"""
        r = requests.post(
            os.environ["MLFLOW_TRACKING_URI"] + "/graphql",
            json={"query": q, "variables": {"id": run.info.run_id}},
            headers={"Authorization": "Bearer " + os.environ["MLFLOW_TRACKING_TOKEN"]},
        )
        self.assertEqual(r.status_code, 200, r.text)
        data = r.json()["data"]
        self.assertEqual(data["job"], {"name": "seen-in-graphql", "status": "SUCCEEDED", "provider": "external"})
        points = data["metricSeries"][0]["points"]
        self.assertEqual([p["step"] for p in points], list(range(50)))
        self.assertEqual([p["last"] for p in points], [1.0 / (s + 1) for s in range(50)])

    def test_no_token_no_access(self):
        r = self._post("experiments/create", {"name": f"anon-{self.suffix}"}, token=False)
        self.assertEqual((r.status_code, r.json()["error_code"]), (401, "UNAUTHENTICATED"))
        r = requests.get(os.environ["MLFLOW_TRACKING_URI"] + "/api/2.0/mlflow/experiments/get?experiment_id=0")
        self.assertEqual(r.status_code, 401)

    def test_unknown_run_and_experiment(self):
        with self.assertRaises(MlflowException) as ctx:
            self.client.get_run("0" * 32)
        self.assertEqual(ctx.exception.error_code, "RESOURCE_DOES_NOT_EXIST")
        self.assertIsNone(self.client.get_experiment_by_name(f"absent-{self.suffix}"))
        with self.assertRaises(MlflowException) as ctx:
            self.client.create_experiment("Default")
        self.assertEqual(ctx.exception.error_code, "RESOURCE_ALREADY_EXISTS")


if __name__ == "__main__":
    unittest.main(verbosity=2)
