#!/usr/bin/env bash
# The test command: notebooks and package in sync, notebooks clean, README in sync, every notebook
# runs (nbdev_test), pytest, and the docs build (nbdev_proc_nbs + an HTML render without Quarto).
# Where there is no local data folder, the notebooks and tests that need it are skipped, each with its reason.
# nbdev_test (one worker, then a few late test files) and the rest of pytest run side by side, one thread each: two
# processes for two cores.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d .venv/bin ] && export PATH="$PWD/.venv/bin:$PATH"
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
export TOKENIZERS_PARALLELISM=false PYTHONHASHSEED=0 MPLBACKEND=Agg
step() { printf '\n== %s (%ss)\n' "$1" "$SECONDS"; }

if git rev-parse --git-dir >/dev/null 2>&1; then
  step "nbdev_export leaves the tree unchanged"
  before=$(git status --porcelain); nbdev_export; after=$(git status --porcelain)
  [ "$before" == "$after" ] || { echo "notebooks and itt_xling/ are out of sync:"; git status --porcelain; exit 1; }
  step "nbdev_clean leaves the tree unchanged"
  nbdev_clean; after=$(git status --porcelain)
  [ "$before" == "$after" ] || { echo "notebooks are not clean:"; git status --porcelain; exit 1; }
fi

step "README.md generated from nbs/index.ipynb"
python tools/readme.py --check

logs=$(mktemp -d)
step "notebooks that need the local data folder"
# without a data folder (a CI runner) nbdev_test skips the notebooks that read it; tools/data_notebooks.py says which and why
skip_re=$(python tools/data_notebooks.py --skip-re 2>"$logs/skipped.log") || { cat "$logs/skipped.log"; exit 1; }
cat "$logs/skipped.log"

step "nbdev_test (one worker) then the late tests, beside the other tests"
# two cores: one runs nbdev_test and then the late test files, the other the rest of pytest; both parts take about as long
late="tests/test_battery.py tests/test_reliability.py tests/test_wheel.py tests/test_bench.py tests/test_hub_mirror.py"
( set +e; nbdev_test --n_workers 1 --do_print --timing --skip_file_re "$skip_re" >"$logs/nbdev_test.log" 2>&1; echo $? >"$logs/nb_rc"
  python -m pytest -q -rs -p no:cacheprovider $late >"$logs/pytest-late.log" 2>&1; echo $? >"$logs/late_rc" ) &
side=$!
set +e
python -m pytest -q -rs -p no:cacheprovider tests $(printf -- '--ignore=%s ' $late) >"$logs/pytest.log" 2>&1
py_rc=$?
wait $side
set -e
nb_rc=$(cat "$logs/nb_rc"); late_rc=$(cat "$logs/late_rc")
step "nbdev_test output (exit $nb_rc)"
cat "$logs/nbdev_test.log"
grep '^  skipped' "$logs/skipped.log" || true

step "docs: nbdev_proc_nbs + HTML render"
set +e
python tools/docs_check.py >"$logs/docs.log" 2>&1
docs_rc=$?
set -e
grep -v -e '^---$' -e 'Found cells containing imports' "$logs/docs.log" | tail -60

step "pytest output (exit $py_rc)"
cat "$logs/pytest.log"
step "pytest output, late tests: $late (exit $late_rc)"
cat "$logs/pytest-late.log"
step "done"
[ "$nb_rc" -eq 0 ] && [ "$py_rc" -eq 0 ] && [ "$late_rc" -eq 0 ] && [ "$docs_rc" -eq 0 ]
