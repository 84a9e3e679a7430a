"""The offline-study preset is the study it claims to be, and the tutorial notebooks are well-formed documentation."""
import json, re
from pathlib import Path
import pytest
from itt_xling.plans import load_plan, stages_of, presets
from itt_xling.load import load_split
from itt_xling.recipe import load_stage_data, held_out, by_item

ROOT = Path(__file__).resolve().parent.parent
TUTORIALS = ROOT/'nbs'/'tutorials'
NOTEBOOKS = ['quickstart', 'offline_study', 'phang2020_gpu', 'typology']

def test_offline_study_grid():
    "Three seeds; RTE (English NLI) and the SST-2 control against the baseline; UD-POS primary; every stage capped."
    plan = load_plan('offline-study')
    assert plan.model == 'me5-small' and plan.baseline and len(plan.seeds) >= 3
    assert [e.name for e in plan.intermediate] == ['rte', 'sst2']
    assert plan.target[0] == 'udpos' and set(plan.target) == {'udpos', 'tatoeba'}
    stages = stages_of(plan)
    trained = [s for s in stages if s.tasks]
    assert all(s.optim.freeze_embeddings for s in trained)
    assert {s.target: (s.scope.split, s.optim.lr) for s in stages if s.target} == {'udpos': ('test', 3e-4)}
    assert all(s.scope.max_train_examples and s.scope.max_eval_examples for s in stages)   # every stage capped
    # retrieval is evaluated off each intermediate checkpoint, and the baseline's off the pretrained encoder
    assert sorted({s.name for s in stages if 'tatoeba' in s.evals}) == ['none', 'rte', 'sst2']
    head = presets()['offline-study'].read_text()
    assert all(w in head for w in ('Primary hypothesis', 'Primary measure', 'Primary test', 'exploratory'))

def test_offline_study_tunes_on_items_it_never_evaluates(data_dir):
    "Tuning scores English items the study never evaluates: XNLI items inside a training half, UD-POS on the dev treebank (the study scores test)."
    study, tuning = load_plan('offline-study'), load_plan('offline-study-tuning')
    st = next(s for s in stages_of(study) if s.target == 'udpos')
    tu = {s.target: s for s in stages_of(tuning)}
    assert st.scope.split == 'test' and tu['udpos'].scope.split == 'validation' and tuning.recipe.langs == {'xnli': ('en',), 'udpos': ('en',)}
    x = tu['xnli']
    half = set(by_item(load_split('xnli', 'validation', 'en', str(data_dir)), 0.5, True)['id'])
    tune_eval = set(held_out(x, 'xnli')(load_split('xnli', 'validation', 'en', str(data_dir)))['id'])
    assert len(tune_eval) == x.scope.max_eval_examples and tune_eval <= half      # a 0.5 split would evaluate none of them
    assert not set(load_stage_data(x, 'xnli', str(data_dir))['id']) & tune_eval

def _nb(name): return json.loads((TUTORIALS/f'{name}.ipynb').read_text())

@pytest.mark.parametrize('name', NOTEBOOKS)
def test_tutorial_is_documentation(name):
    cells = _nb(name)['cells']
    first = ''.join(cells[0]['source'])
    assert cells[0]['cell_type'] == 'markdown' and first.startswith('# ') and '\n> ' in first
    code = [''.join(c['source']) for c in cells if c['cell_type'] == 'code']
    assert not any(re.search(r'^#\|\s*(default_exp|export)', s, re.M) for s in code), 'tutorials export nothing'
    lessons = [s for s in code if not all(re.match(r'\s*(#|import |from \S+ import |$)', l) for l in s.splitlines())]
    assert sum(c['cell_type'] == 'markdown' for c in cells) >= len(lessons) // 2, 'tutorials are prose first'

@pytest.mark.parametrize('name', NOTEBOOKS)
def test_tutorial_outputs_are_saved_and_portable(name):
    cells = [c for c in _nb(name)['cells'] if c['cell_type'] == 'code']
    outs = [o for c in cells for o in c.get('outputs', [])]
    assert outs, 'run the notebook and save its outputs'
    text = json.dumps(outs) + json.dumps([c['source'] for c in cells])
    assert not re.search(r'/(work|root|home|Users)/', text), 'no absolute machine paths in a tutorial'
    assert 'Traceback' not in text and '"output_type": "error"' not in text
