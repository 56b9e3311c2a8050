#!/usr/bin/env bash
# A real Spark standalone cluster on this machine: one master and two workers, each its own JVM, with
# executors and Python workers in separate processes (unlike local[*]). Uses the spark-class that pip's
# pyspark ships in .venv/bin.
#
#   bash scripts/spark_cluster.sh start|stop|status
#
# Settings (environment):
#   SPARK_CLUSTER_DIR      pid files, logs and worker folders (.spark-cluster/ in the repository)
#   SPARK_CLUSTER_PORT     master port (7077); submit to spark://127.0.0.1:$SPARK_CLUSTER_PORT
#   SPARK_CLUSTER_UI_PORT  master web UI port (8080); the workers' UIs take the next two ports
#   SPARK_CLUSTER_WORKERS  number of workers (2), each with --cores 1 --memory 2g
#   SPARK_CLUSTER_TIMEOUT  seconds to wait for the workers to register (180)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="$ROOT/.venv/bin"
PY="$BIN/python"
DIR="${SPARK_CLUSTER_DIR:-$ROOT/.spark-cluster}"
PORT="${SPARK_CLUSTER_PORT:-7077}"
UI_PORT="${SPARK_CLUSTER_UI_PORT:-8080}"
WORKERS="${SPARK_CLUSTER_WORKERS:-2}"
TIMEOUT="${SPARK_CLUSTER_TIMEOUT:-180}"
MASTER_URL="spark://127.0.0.1:$PORT"
# Bind everything to the loopback interface: nothing of this cluster is reachable from outside.
export SPARK_LOCAL_IP=127.0.0.1 SPARK_LOCAL_HOSTNAME=127.0.0.1

die() { echo "spark_cluster: $*" >&2; exit 1; }

alive() { [[ -f "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

alive_workers() {
    # The master's JSON status page; empty when the master does not answer yet.
    "$PY" - "$UI_PORT" <<'PYEOF' 2>/dev/null || true
import json, sys, urllib.request
with urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/json/", timeout=2) as r:
    print(json.load(r).get("aliveworkers", 0))
PYEOF
}

launch() {  # name, then the spark-class arguments; spark-class execs java, so $! is the JVM's pid
    local name="$1"; shift
    nohup "$BIN/spark-class" "$@" >"$DIR/$name.log" 2>&1 </dev/null &
    echo $! >"$DIR/$name.pid"
}

start() {
    [[ -x "$BIN/spark-class" ]] || die "$BIN/spark-class not found; run bash scripts/setup_venv.sh first"
    alive "$DIR/master.pid" && die "already running (pid $(cat "$DIR/master.pid")); run '$0 stop' first"
    mkdir -p "$DIR"
    rm -f "$DIR"/*.pid
    # spark-class looks for pyspark with whatever python3 comes first; point it at the venv's.
    SPARK_HOME="$("$PY" -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))')"
    export SPARK_HOME PYSPARK_PYTHON="${PYSPARK_PYTHON:-$PY}"
    launch master org.apache.spark.deploy.master.Master \
        --host 127.0.0.1 --port "$PORT" --webui-port "$UI_PORT"
    for i in $(seq 1 "$WORKERS"); do
        mkdir -p "$DIR/worker-$i"
        launch "worker-$i" org.apache.spark.deploy.worker.Worker "$MASTER_URL" \
            --cores 1 --memory 2g --host 127.0.0.1 --webui-port $((UI_PORT + i)) --work-dir "$DIR/worker-$i"
    done
    local waited=0
    until [[ "$(alive_workers)" == "$WORKERS" ]]; do
        for pid in "$DIR"/*.pid; do
            alive "$pid" || { tail -n 20 "${pid%.pid}.log" >&2; stop >/dev/null; die "$(basename "${pid%.pid}") exited; log above"; }
        done
        if (( waited >= TIMEOUT )); then
            tail -n 20 "$DIR/master.log" >&2
            stop >/dev/null
            die "the workers did not register within ${TIMEOUT}s (master log above); raise SPARK_CLUSTER_TIMEOUT"
        fi
        sleep 1; waited=$((waited + 1))
    done
    echo "spark_cluster: $MASTER_URL up with $WORKERS workers (UI http://127.0.0.1:$UI_PORT, logs in $DIR)"
}

stop() {
    local pids=()
    for pidfile in "$DIR"/worker-*.pid "$DIR"/master.pid; do  # workers first: they stop their executors
        [[ -f "$pidfile" ]] || continue
        if alive "$pidfile"; then kill "$(cat "$pidfile")"; pids+=("$(cat "$pidfile")"); fi
        rm -f "$pidfile"
    done
    for pid in "${pids[@]}"; do
        for _ in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
        kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null || true
    done
    echo "spark_cluster: stopped ${#pids[@]} process(es)"
}

status() {
    alive "$DIR/master.pid" || { echo "spark_cluster: not running"; return 1; }
    local n; n="$(alive_workers)"
    echo "spark_cluster: $MASTER_URL master pid $(cat "$DIR/master.pid"), ${n:-?} of $WORKERS workers alive"
    [[ "$n" == "$WORKERS" ]]
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    *) die "usage: $0 start|stop|status (settings: see the top of this script)" ;;
esac
