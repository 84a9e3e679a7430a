"""The offline-study preset is the study it claims to be, and the tutorial notebooks are well-formed documentation."""
import json, re
from pathlib import Path
import pytest
from itt_xling.plans import load_plan, stages_of
from itt_xling.load import load_split
from itt_xling.recipe import load_stage_data, held_out

ROOT = Path(__file__).resolve().parent.parent
TUTORIALS = ROOT/'nbs'/'tutorials'
NOTEBOOKS = ['quickstart', 'offline_study', 'phang2020_gpu', 'typology']

def test_offline_study_grid():
    plan = load_plan('offline-study')
    assert plan.model == 'me5-small' and plan.baseline
    assert 'rte' in [e.name for e in plan.intermediate] and len(plan.intermediate) >= 3
    assert set(plan.target) == {'xnli', 'pawsx', 'xcopa', 'udpos', 'xquad', 'tatoeba'}
    stages = stages_of(plan)
    trained = [s for s in stages if s.tasks]
    assert {s.optim.lr for s in trained if s.target != 'udpos'} == {1e-4} and {s.optim.lr for s in trained if s.target == 'udpos'} == {3e-4}
    assert all(s.optim.freeze_embeddings for s in trained)
    assert {s.target: s.scope.split for s in stages if s.target} == {'xnli': 'validation', 'pawsx': 'validation', 'xcopa': 'validation',
                                                              'udpos': 'test', 'xquad': 'validation'}
    # every stage is capped (the report of a CPU run must be able to state its caps)
    assert all(s.scope.max_train_examples and s.scope.max_eval_examples for s in stages)
    # English training sources of the targets whose real train set is not local
    src = {s.target: (s.tasks[0], bool(s.recipe.train_on_dev)) for s in trained if s.name == 'rte' and s.target}
    assert src == {'xnli': ('xnli', True), 'pawsx': ('pawsx', True), 'xquad': ('xquad', True),
                   'xcopa': ('copa', False), 'udpos': ('udpos', False)}
    # retrieval is evaluated off each intermediate checkpoint, and the baseline's off the pretrained encoder
    assert sorted(s.name for s in stages if 'tatoeba' in s.evals) == ['none', 'rte', 'siqa', 'sst2']

def test_offline_study_trains_and_evaluates_on_disjoint_items(data_dir):
    st = next(s for s in stages_of(load_plan('offline-study')) if s.name == 'rte' and s.target == 'xnli')
    train = set(load_stage_data(st, 'xnli', str(data_dir))['id'])
    assert len(train) == st.scope.max_train_examples
    for lang in ('en', 'de', 'sw'):
        ev = set(held_out(st, 'xnli')(load_split('xnli', 'validation', lang, str(data_dir)))['id'])
        assert len(ev) == st.scope.max_eval_examples and not train & ev

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
