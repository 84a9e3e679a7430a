"""Regression tests for three silent bugs of the earlier design: each failed on that code and passes now."""
import csv, subprocess, sys
from pathlib import Path
import pytest
from itt_xling.plans import load_plan, stages_of
from itt_xling.settings import lora_tag
from itt_xling.tasks import task_langs
from itt_xling.zero_shot import eval_langs

ITT = [sys.executable, '-c', 'import sys; from itt_xling.cli import main; sys.exit(main())']

def test_lora_tag_names_the_strategy_trained(data_dir, tmp_path):
    "A plan's `lora: {r: 8}` trained stacked adapters but labelled every row `r8-merge`: the tag must say what trains."
    from itt_xling.stages import run_stage
    plan = load_plan("model: tiny-xlmr\nbaseline: false\nintermediate: [rte]\ntarget: [tatoeba]\nlora: {r: 8}\n"
                     "max_train_examples: 16\nmax_eval_examples: 8\ntrain: {epochs: 1, batch_size: 8, max_length: 32}\n"
                     f"langs: {{tatoeba: [de]}}\ndata_dir: {data_dir}\n")
    (st,) = stages_of(plan)
    m = run_stage(st, tmp_path)
    trained = m['transfer']['lora']['strategy']
    assert {r['lora'] for r in m['rows']} == {f'r8-{trained}'} == {lora_tag(st.lora)}

def test_phang2020_evaluates_xtreme_languages():
    "`benchmark: xtreme` was never read: UD-POS was evaluated on XTREME-R's 38 languages instead of XTREME's 33."
    udpos = [s for s in stages_of('phang2020') if 'udpos' in s.evals]
    assert udpos and all(s.recipe.benchmark == 'xtreme' for s in udpos)
    for s in udpos:
        langs = eval_langs('udpos', s.recipe.langs.get('udpos'), s.scope.split, None, s.recipe.benchmark)
        assert langs == list(task_langs('udpos', 'xtreme')) and len(langs) == 33
    assert len(task_langs('udpos', 'xtreme-r')) != 33     # the two lists differ, so the test can tell them apart

def test_eval_rows_survive_a_later_run(data_dir, tmp_path):
    "`itt-xling eval --out` appended rows that the next `run` into the same folder silently deleted."
    out, env = tmp_path/'run', dict(__import__('os').environ, TQDM_DISABLE='1')
    ev = subprocess.run(ITT + ['eval', '--model', 'tiny-xlmr', '--task', 'tatoeba', '--langs', 'de', '--limit', '8',
                               '--data-dir', str(data_dir), '--out', str(out)], capture_output=True, text=True, env=env)
    assert ev.returncode == 0, ev.stderr
    plan = tmp_path/'plan.yaml'
    plan.write_text("name: later\nmodel: tiny-xlmr\ntarget: [tatoeba]\nlangs: {tatoeba: [ar]}\nmax_eval_examples: 8\n")
    run = subprocess.run(ITT + ['run', str(plan), '--out', str(out), '--data-dir', str(data_dir)], capture_output=True, text=True, env=env)
    assert run.returncode == 0, run.stderr
    rows = list(csv.DictReader(open(out/'results.csv')))
    assert {(r['run'], r['lang']) for r in rows} >= {('eval', 'de'), ('later', 'ar')}
