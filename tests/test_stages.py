"""Stages on disk: encoder transfer, LoRA strategies across two stages, resume = uninterrupted, config guard, determinism."""
import json
from dataclasses import replace
import pytest
import torch
from transformers import TrainerCallback
from itt_xling.core import ITTError
from itt_xling.settings import make_stage
from itt_xling.stages import run_stage, load_trained, read_config
from itt_xling.rundir import merge_results

def tiny(name, tasks=(), **kw):
    "A stage small enough for CPU tests: tiny random XLM-R, a few RTE / PAWS-X examples."
    base = dict(model='tiny-xlmr', seed=1, epochs=1, lr=1e-4, batch_size=8, max_length=64,
                max_train_examples=32, max_eval_examples=8, split='validation')
    return make_stage(name=name, tasks=tuple(tasks), **{**base, **kw})

def chain(data_dir, **kw):
    a = tiny('rte', ['rte'], data_dir=str(data_dir), **kw)
    b = tiny('rte', ['pawsx'], target='pawsx', evals=('pawsx',), parent=a.id, langs={'pawsx': ['en', 'de']},
             train_on_dev=('pawsx',), heldout_tasks=('pawsx',), data_dir=str(data_dir), **kw)
    return a, b

def values(m): return [(r['target'], r['lang'], r['metric'], r['value']) for r in m['rows']]

class Grab(TrainerCallback):
    "Keep a copy of the encoder's weights when training starts."
    def on_train_begin(self, args, state, control, model=None, **kw):
        base = model.get_base_model() if hasattr(model, 'get_base_model') else model
        self.start = {k: v.detach().clone() for k, v in base.base_model.state_dict().items()}

def test_encoder_carried(tmp_path, data_dir):
    a, b = chain(data_dir)
    run_stage(a, tmp_path)
    trained = {k: v for k, v in load_trained(tmp_path/a.id).base_model.state_dict().items()}
    grab = Grab()
    m = run_stage(b, tmp_path, callbacks=[grab])
    assert m['transfer']['head_reinitialised'] and m['transfer']['tensors'] > 0
    for k, v in trained.items():
        if k in grab.start: assert torch.equal(grab.start[k], v), k          # stage 2 starts from stage 1's encoder
    from itt_xling.models import build_model
    fresh = build_model('tiny-xlmr', 'rte').base_model.state_dict()
    assert any(not torch.equal(fresh[k], trained[k]) for k in trained if k in fresh)   # ... which training changed
    rows = list(merge_results(tmp_path).read_text().splitlines())
    assert any(',rte,pawsx,' in r and ',de,' in r for r in rows)

@pytest.mark.parametrize('strategy', ['merge', 'stack', 'continue'])
def test_lora_two_stages(tmp_path, data_dir, strategy):
    a, b = chain(data_dir, lora={'r': 4, 'alpha': 8, 'strategy': strategy})
    run_stage(a, tmp_path); run_stage(b, tmp_path)
    from itt_xling.models import lora_state, adapter_weights
    m1, m2 = load_trained(tmp_path/a.id), load_trained(tmp_path/b.id)
    st = lora_state(m2)
    assert st['trainable'] == 'rte_pawsx'
    assert st['frozen'] == (['rte'] if strategy == 'stack' else [])
    if strategy == 'stack':                                             # stage 1's adapter kept bit-identical
        w1, w2 = adapter_weights(m1, 'rte'), adapter_weights(m2, 'rte')
        assert w1.keys() == w2.keys() and all(torch.equal(w1[k], w2[k]) for k in w1)
    assert json.loads((tmp_path/b.id/'metrics.json').read_text())['rows']

class Interrupt(TrainerCallback):
    "Simulate a crash after `step` optimizer steps."
    def __init__(self, step): self.step = step
    def on_step_end(self, args, state, control, **kw):
        if state.global_step == self.step: raise KeyboardInterrupt('simulated crash')

def test_resume_equals_uninterrupted(tmp_path, data_dir):
    st = tiny('rte', ['rte'], epochs=2, data_dir=str(data_dir))    # 32 examples / batch 8 = 4 steps per epoch
    full = run_stage(st, tmp_path/'full')
    assert values(run_stage(st, tmp_path/'twice')) == values(full)      # deterministic: same stage and seed, same metrics
    with pytest.raises(KeyboardInterrupt): run_stage(st, tmp_path/'cut', callbacks=[Interrupt(6)])
    assert not (tmp_path/'cut'/st.id/'metrics.json').exists()
    with pytest.raises(ITTError, match='interrupted'): run_stage(st, tmp_path/'cut')
    resumed = run_stage(st, tmp_path/'cut', resume=True)
    assert values(resumed) == values(full)
    w_full, w_cut = load_trained(tmp_path/'full'/st.id).state_dict(), load_trained(tmp_path/'cut'/st.id).state_dict()
    assert all(torch.equal(w_full[k], w_cut[k]) for k in w_full)           # bit-identical weights, not only metrics
    assert resumed['train']['global_step'] == full['train']['global_step'] == 8

def test_config_guard_and_idempotence(tmp_path, data_dir):
    st = tiny('rte', ['rte'], data_dir=str(data_dir))
    first = run_stage(st, tmp_path)
    again = run_stage(st, tmp_path)
    assert again['skipped'] and values(again) == values(first)
    with pytest.raises(ITTError, match=r'epochs: 1\.0 -> 2\.0; lr: 0\.0001 -> 3e-05'):   # epochs is a number (float)
        run_stage(replace(st, optim=replace(st.optim, epochs=2, lr=3e-5)), tmp_path)
    assert read_config(tmp_path/st.id)['config']['epochs'] == 1                 # refused: nothing touched
    redo = run_stage(replace(st, optim=replace(st.optim, epochs=2)), tmp_path, force=True)
    assert not redo.get('skipped') and read_config(tmp_path/st.id)['config']['epochs'] == 2

def test_translate_train_and_target_selection(tmp_path, data_dir, capsys):
    "Translate-train on an intermediate stage (MNLI plus XNLI-MT-style German MNLI, built from XNLI rows); its XNLI target stage picks its checkpoint on XNLI's English dev, as XTREME, and records it."
    from itt_xling.recipe import load_stage_data
    d = tmp_path/'data'
    en, de = [(data_dir/'xnli'/f'dev-{l}.tsv').read_text().splitlines() for l in ('en', 'de')]
    for f, text in {'mnli/train.tsv': 'sentence1\tsentence2\tlabel\n' + '\n'.join(en[:24]),
                    'XNLI-MT-1.0/multinli/multinli.train.de.tsv': 'premise\thypo\tlabel\n' + '\n'.join(de[24:40]),
                    'xnli/dev-en.tsv': '\n'.join(en[40:56])}.items():
        (d/f).parent.mkdir(parents=True, exist_ok=True); (d/f).write_text(text + '\n')
    a = tiny('mnli-tt', ['mnli'], translate_train={'mnli': ['de']}, max_train_examples=64, data_dir=str(d))
    b = tiny('mnli-tt', ['mnli'], target='xnli', evals=('xnli',), parent=a.id, langs={'xnli': ['en']}, data_dir=str(d))
    raw = load_stage_data(a, 'mnli', str(d))
    assert len(raw) == 40 and sum(i.startswith('de:') for i in raw['id']) == 16
    ma = run_stage(a, tmp_path)
    assert ma['train']['n_train'] == 40 and ma['train']['best_metric'] is None       # MNLI has no dev here: the last checkpoint ...
    assert 'no checkpoint selection' in capsys.readouterr().err                     # ... said, not silent
    mb = run_stage(b, tmp_path)
    assert yaml_selection(tmp_path/b.id) == {'task': 'xnli', 'split': 'validation', 'lang': 'en'}
    assert mb['train']['best_metric'] is not None                                   # selected on XNLI's English dev
    sel = yaml_selection(tmp_path/a.id)                                                # recorded with why it was not used
    assert sel['task'] == 'mnli' and 'mnli/multinli_1.0_dev_matched.jsonl' in sel['missing']

def yaml_selection(sd):
    import yaml
    return yaml.safe_load((sd/'config.yaml').read_text())['selection']
