#!/usr/bin/env bash
# Flowyard vs DBOS Transact, side by side, on SQLite (WAL, synchronous=NORMAL).
#
#   bench/run.sh               3 alternating rounds of both, memory once, then the table
#   REPS=1 QUICK=1 bench/run.sh    a smoke test (small counts)
#
# Needs the bench extra: .venv/bin/pip install -e '.[bench]'   (DBOS 3.4)
# DBOS_PYTHON=/path/to/python runs the DBOS half with another interpreter (a separate venv).
# Raw results: bench/results/raw/; medians over the rounds: bench/results/{engine,dbos,summary}.json
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-.venv/bin/python}
DBOS_PY=${DBOS_PYTHON:-$PY}
REPS=${REPS:-3}
QUICK_FLAG=()
if [[ -n "${QUICK:-}" ]]; then QUICK_FLAG=(--quick); fi

if ! "$DBOS_PY" -c 'import dbos' 2>/dev/null; then
    echo "DBOS is not installed for $DBOS_PY: run  $DBOS_PY -m pip install -e '.[bench]'" >&2
    exit 2
fi

raw=bench/results/raw
rm -rf "$raw"
mkdir -p "$raw"
for i in $(seq 1 "$REPS"); do
    echo "== round $i/$REPS: Flowyard engine" >&2
    "$PY" bench/engine_throughput.py "${QUICK_FLAG[@]}" --only sequential concurrent marginal \
        --out "$raw/engine-$i.json" >/dev/null
    echo "== round $i/$REPS: DBOS" >&2
    "$DBOS_PY" bench/dbos_throughput.py "${QUICK_FLAG[@]}" --out "$raw/dbos-$i.json" >/dev/null
done
echo "== memory: executions waiting on timers" >&2
"$PY" bench/engine_throughput.py "${QUICK_FLAG[@]}" --only memory --out "$raw/engine-memory.json" >/dev/null
"$PY" bench/compare.py "$raw"
