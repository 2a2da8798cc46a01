#!/usr/bin/env bash
# The long-range lab: every cell on the adding task (sweeps/lab_adding.yaml), on selective
# copying (sweeps/lab_selective_copy.yaml) and on the copy task (sweeps/lab_copy.yaml), then the
# scan cells' parallel vs sequential step times (benchmarks/scan_cells.py) and the lab's tables
# and figures:
#   benchmarks/lab.sh [out dir] [sweep name ...]     # default: all three sweeps
# A cell runs a sweep's lengths in order and goes on to the next only while it solves: on the
# same step budget a cell that fails at T is not expected to solve a longer T, and those runs
# are the lab's most expensive ones. Two workers of one thread each (a 2-core machine) take the
# cells one at a time, each cell's ladders on every sweep, the costliest cells first so that
# the two finish together. A finished run is kept, so an interrupted lab continues where it
# stopped.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-logs/lab}"
default_sweeps=(lab_adding lab_selective_copy lab_copy)
sweeps=("${@:2}")
[ ${#sweeps[@]} -gt 0 ] || sweeps=("${default_sweeps[@]}")
# every cell of the sweeps, the costliest first (the gated cells climb to the longest T)
cells=(gru lstm mingru minlstm lru indrnn irnn rnn_orthogonal rnn elman)
export OMP_NUM_THREADS=1 out sweep_names="${sweeps[*]}" started=$(date +%s)

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

cell_ladders() {  # cell_ladders <cell>: the cell's ladder on each sweep
  local name
  for name in $sweep_names; do
    ladder "$name" "$1" || return 1
  done
  echo "$1 done at $(($(date +%s) - started)) s"
}

export -f axis solved ladder cell_ladders
status=0
printf '%s\n' "${cells[@]}" | xargs -P 2 -I{} bash -c 'cell_ladders "$1"' _ {} || status=1
python benchmarks/scan_cells.py > "$out/scan_cells.md"
python -m rnnlab.tools.report "$out" --out "$out/report"
echo "lab: $SECONDS s"
exit "$status"
