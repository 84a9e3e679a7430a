#!/usr/bin/env bash
# The test command: notebooks and package in sync, notebooks clean, every notebook runs,
# pytest, README in sync, and the docs build (nbdev_proc_nbs + an HTML render without Quarto).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d .venv/bin ] && export PATH="$PWD/.venv/bin:$PATH"
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
export TOKENIZERS_PARALLELISM=false PYTHONHASHSEED=0 MPLBACKEND=Agg
export ITT_XLING_CACHE="${ITT_XLING_CACHE:-$HOME/.cache/itt_xling}"
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

step "nbdev_test (one worker)"
nbdev_test --n_workers 1 --do_print --timing

step "pytest"
python -m pytest -q tests

step "docs: nbdev_proc_nbs + HTML render"
python tools/docs_check.py
step "done"
