#!/usr/bin/env bash
# The one test command: format check, clippy (warnings denied), every test on
# SQLite and PostgreSQL, with the KurrentDB backend compiled in (its contract
# suite runs when FTL_TEST_KURRENTDB_URL names a server).
set -euo pipefail
cd "$(dirname "$0")/.."

FEATURES="ftl-api/kurrentdb,ftl-tests/kurrentdb"
export FTL_TEST_PG_URL="${FTL_TEST_PG_URL:-postgres://postgres@127.0.0.1:5432/postgres}"

# PostgreSQL must be up: start the local cluster if it is installed but stopped.
if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  if command -v pg_ctlcluster >/dev/null 2>&1; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
    for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
  fi
fi
pg_isready -h 127.0.0.1 -p 5432 || { echo "PostgreSQL is not reachable at 127.0.0.1:5432" >&2; exit 1; }

drop_test_dbs() {
  psql "$FTL_TEST_PG_URL" -Atc "SELECT datname FROM pg_database WHERE datname LIKE 'ftl_t_%'" 2>/dev/null |
    while read -r db; do psql "$FTL_TEST_PG_URL" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true; done
  rm -rf "${TMPDIR:-/tmp}/ftl-tests"
}
drop_test_dbs
trap drop_test_dbs EXIT

# The real mlflow and openai clients (from PyPI) for the API suites, and moto's
# S3 server, in a virtual environment kept between runs.
VENV="${FTL_VENV:-$HOME/.cache/finetune-lab/venv}"
MLFLOW_VERSION="3.17.2"
MOTO_VERSION="5.1.18"
OPENAI_VERSION="3.57.0"
DATASETS_VERSION="5.2.0"
if ! "$VENV/bin/python" -c "import mlflow, moto, openai, datasets, sys; sys.exit(mlflow.__version__ != '$MLFLOW_VERSION' or moto.__version__ != '$MOTO_VERSION' or openai.__version__ != '$OPENAI_VERSION' or datasets.__version__ != '$DATASETS_VERSION')" 2>/dev/null; then
  echo "== installing mlflow-skinny $MLFLOW_VERSION, moto[server] $MOTO_VERSION, openai $OPENAI_VERSION and datasets $DATASETS_VERSION into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "mlflow-skinny==$MLFLOW_VERSION" "moto[server]==$MOTO_VERSION" "openai==$OPENAI_VERSION" "datasets==$DATASETS_VERSION"
fi
export FTL_TEST_PYTHON="$VENV/bin/python"

# A local S3-compatible server (moto) for the S3 dataset and checkpoint tests.
S3_PORT="$("$VENV/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
"$VENV/bin/moto_server" -H 127.0.0.1 -p "$S3_PORT" >/dev/null 2>&1 &
S3_PID=$!
trap 'kill $S3_PID 2>/dev/null || true; drop_test_dbs' EXIT
for _ in $(seq 1 50); do
  "$VENV/bin/python" -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$S3_PORT/')" 2>/dev/null && break
  sleep 0.2
done
export FTL_TEST_S3_URL="http://127.0.0.1:$S3_PORT"

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== layout (dependency rules, file sizes)"
python3 scripts/check-layout
echo "== cargo clippy (warnings denied)"
cargo clippy --workspace --all-targets --locked --features "$FEATURES" -- -D warnings
echo "== cargo test (SQLite and PostgreSQL)"
cargo test --workspace --locked --features "$FEATURES"
