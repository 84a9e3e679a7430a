"""Regression tests for three silent bugs of the earlier design: each failed on that code and passes now."""
import csv, re, subprocess, sys
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

def _bad_fr(tmp_path, data_dir) -> Path:
    "A data folder of links with `pawsx/dev-fr.tsv` holding a label outside the label set on line 7."
    d = tmp_path/'data'; (d/'pawsx').mkdir(parents=True)
    for p in (data_dir/'pawsx').iterdir():
        if p.name != 'dev-fr.tsv': (d/'pawsx'/p.name).symlink_to(p)
    lines = (data_dir/'pawsx'/'dev-fr.tsv').read_text(encoding='utf-8').split('\n')
    lines[6] = lines[6].rsplit('\t', 1)[0] + '\t7'
    (d/'pawsx'/'dev-fr.tsv').write_text('\n'.join(lines), encoding='utf-8')
    return d

PAWSX_PLAN = ("model: tiny-xlmr\nseeds: [1]\nmax_train_examples: 16\nmax_eval_examples: 8\nsplit: validation\n"
              "train: {epochs: 1, batch_size: 8, max_length: 32}\ntarget: [pawsx]\ntrain_on_dev: [pawsx]\n")

def test_bad_language_file_stops_the_run_unless_asked_to_skip(data_dir, tmp_path):
    "Reproducer 3: a bad pawsx/dev-fr.tsv with no languages named used to be dropped without a word (exit 0, no French row)."
    d, env = _bad_fr(tmp_path, data_dir), dict(__import__('os').environ, TQDM_DISABLE='1')
    (tmp_path/'plan.yaml').write_text(PAWSX_PLAN)
    r = subprocess.run(ITT + ['run', str(tmp_path/'plan.yaml'), '--out', str(tmp_path/'strict'), '--data-dir', str(d)], capture_output=True, text=True, env=env)
    assert r.returncode == 2 and r.stderr.strip().splitlines() == [r.stderr.strip()] and re.search(r"pawsx/dev-fr\.tsv:7: label '7'", r.stderr)
    assert not (tmp_path/'strict').exists()                              # refused before anything was written
    (tmp_path/'skip.yaml').write_text(PAWSX_PLAN + "skip_bad_langs: true\n")
    r = subprocess.run(ITT + ['run', str(tmp_path/'skip.yaml'), '--out', str(tmp_path/'skip'), '--data-dir', str(d)], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    warns = [l for l in r.stderr.splitlines() if l.startswith('itt-xling: warning:')]
    assert len(warns) == 1 and 'pawsx fr not evaluated' in warns[0] and 'dev-fr.tsv:7' in warns[0]
    langs = {row['lang'] for row in csv.DictReader(open(tmp_path/'skip'/'results.csv')) if row['target'] == 'pawsx' and row['intermediate'] == 'none'}
    assert 'fr' not in langs and {'de', 'es'} <= langs
    from itt_xling.report import skipped_langs, build_report
    sk = skipped_langs([tmp_path/'skip'])
    assert list(sk[sk.lang == 'fr'].why.str.contains('dev-fr.tsv:7')) == [True]
    md = build_report([tmp_path/'skip'], tmp_path/'report', n_resamples=50, figures=False, html_report=False).read_text()
    assert re.search(r"\*\*Not evaluated: pawsx fr\*\* \(1 stage\): .*dev-fr\.tsv:7", md)
