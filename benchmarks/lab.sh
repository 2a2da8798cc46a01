#!/usr/bin/env bash
# The long-range lab: every cell on the adding task (sweeps/lab_adding.yaml), on selective
# copying (sweeps/lab_selective_copy.yaml) and on the copy task (sweeps/lab_copy.yaml), then the
# scan cells' parallel vs sequential step times (benchmarks/scan_cells.py) and the lab's tables
# and figures:
#   benchmarks/lab.sh [out dir] [sweep name ...]     # default: all three sweeps
# A cell runs a sweep's lengths in order and goes on to the next only while it solves: on the
# same step budget a cell that fails at T is not expected to solve a longer T, and those runs
# are the lab's most expensive ones. Two lanes of one thread each run side by side (a 2-core
# machine). A finished run is kept, so an interrupted lab continues where it stopped.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-logs/lab}"
sweeps=("${@:2}")
[ ${#sweeps[@]} -gt 0 ] || sweeps=(lab_adding lab_selective_copy lab_copy)
export OMP_NUM_THREADS=1

axis() {  # a sweep file's length axis: its one grid key besides model, then the key's values
  python - "$1" <<'PY'
import sys, yaml
grid = yaml.safe_load(open(sys.argv[1]))["parameters"]
[(key, values)] = [(k, v["values"]) for k, v in grid.items() if k != "model" and "values" in v]
print(key, *values)
PY
}

solved() {  # exit 0 when the one run under the folder solved its task on the test split
  python - "$1" <<'PY'
import json, pathlib, sys
runs = [json.loads(p.read_text()) for p in pathlib.Path(sys.argv[1]).glob("*/metrics.json")]
sys.exit(not runs or runs[0].get("test/solved") != 1)
PY
}

ladder() {  # ladder <sweep name> <cell>: the cell at each length in turn while it solves
  local name=$1 cell=$2 key T dir
  mkdir -p "$out/$name"
  set -- $(axis "sweeps/$name.yaml")
  key=$1
  shift
  for T in "$@"; do
    dir="$out/$name/$cell-T$T"
    python -m rnnlab.tools.sweep "sweeps/$name.yaml" --only "model=$cell" --only "$key=$T" \
      --logger csv --out "$dir" > "$dir.log" 2>&1 || { echo "failed: $dir (see $dir.log)" >&2; return 1; }
    solved "$dir" || break
  done
}

lane() {  # lane <cell...>: each cell's ladders, one after the other
  local cell name
  for cell in "$@"; do
    for name in "${sweeps[@]}"; do
      ladder "$name" "$cell"
    done
  done
  echo "lane $* done after $SECONDS s"
}

lane lstm lru mingru rnn elman & first=$!
lane gru minlstm indrnn irnn rnn_orthogonal & second=$!
status=0
wait "$first" || status=1
wait "$second" || status=1
python benchmarks/scan_cells.py > "$out/scan_cells.md"
python -m rnnlab.tools.report "$out" --out "$out/report"
echo "lab: $SECONDS s"
exit "$status"
