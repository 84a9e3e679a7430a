"""Multi-task sampling proportions and one shared encoder."""
import numpy as np
import pytest
import datasets
from itt_xling.core import ITTError
from itt_xling.multitask import TaskSampler, TaskBatchSampler, MultiTaskData

SIZES = {'anli_plus': 1_105_719, 'qqp': 363_846, 'rte': 2_490, 'copa': 400}

@pytest.mark.parametrize('temperature,cap', [(1.0, None), (2.0, None), (1.0, 50_000), (5.0, 10_000)])
def test_sampling_proportions(temperature, cap):
    s = TaskSampler(SIZES, temperature, cap)
    w = np.array([min(n, cap) if cap else n for n in SIZES.values()], float) ** (1 / temperature)
    assert np.allclose(s.probs, w / w.sum())
    draws = s.draw(10_000, np.random.default_rng(0))
    for name, p in zip(s.names, s.probs):
        assert abs(draws.count(name) / 10_000 - p) < 0.02, (name, p)

def test_sampler_errors():
    with pytest.raises(ITTError, match='temperature'): TaskSampler({'a': 1}, temperature=0)
    with pytest.raises(ITTError): TaskSampler({})

def test_batches_one_task_each_and_proportional():
    data = MultiTaskData({'a': datasets.Dataset.from_dict({'x': list(range(300))}),
                          'b': datasets.Dataset.from_dict({'x': list(range(100))})})
    bs = TaskBatchSampler(data, TaskSampler({'a': 300, 'b': 100}), batch_size=4, seed=0)
    batches = list(bs)
    assert len(batches) == 100
    tasks = [{data[i]['task'] for i in b} for b in batches]
    assert all(len(t) == 1 for t in tasks)
    assert abs(sum(t == {'a'} for t in tasks) / 100 - 0.75) < 0.15
    assert batches == list(bs)

def test_multitask_stage_shares_encoder(tmp_path, data_dir):
    from itt_xling.settings import make_stage
    from itt_xling.stages import run_stage
    from itt_xling.multitask import train_multitask
    st = make_stage(name='multi', tasks=('rte', 'sst2'), model='tiny-xlmr', epochs=1, lr=1e-4, batch_size=8, max_length=48,
                    max_train_examples=24, max_eval_examples=8, sampling={'temperature': 1.0, 'cap': None}, data_dir=str(data_dir))
    m = run_stage(st, tmp_path)
    assert {r['target'] for r in m['rows']} == {'rte', 'sst2'}
    assert abs(sum(m['train']['sampling'].values()) - 1) < 1e-9
    from itt_xling.encoders import resolve_encoder
    from itt_xling.stages import stage_tokenizer
    enc = resolve_encoder('tiny-xlmr')
    model, *_ = train_multitask(st, tmp_path/'again', enc, stage_tokenizer(enc), data_dir=str(data_dir))
    assert model.model('rte').roberta is model.encoder is model.model('sst2').roberta
    n_params = sum(p.numel() for p in model.parameters())
    assert n_params < sum(p.numel() for p in model.model('rte').parameters()) + sum(p.numel() for p in model.model('sst2').parameters())

def test_mlm_ablation_tied_to_shared_encoder(tmp_path, data_dir):
    "The masked-LM ablation runs (RTE + MLM on Tatoeba's German and Swahili sentences), its output layer tied to the shared encoder's word embeddings throughout training."
    from transformers import TrainerCallback
    from itt_xling.settings import make_stage
    from itt_xling.stages import run_stage
    class Tie(TrainerCallback):
        def on_step_end(self, args, state, control, model=None, **kw):
            out, emb = model.model('mlm').get_output_embeddings().weight, model.encoder.get_input_embeddings().weight
            self.tied = getattr(self, 'tied', True) and out is emb and out.data_ptr() == emb.data_ptr()
            self.changed = not torch.equal(emb, self.start) if hasattr(self, 'start') else False
        def on_train_begin(self, args, state, control, model=None, **kw): self.start = model.encoder.get_input_embeddings().weight.detach().clone()
    import torch
    files = [str(data_dir/'tatoeba'/f'tatoeba.{l}-eng.{l}') for l in ('deu', 'swh')]
    st = make_stage(name='rte-mlm', tasks=('rte',), model='tiny-xlmr', epochs=1, lr=1e-3, batch_size=8, max_length=48, max_train_examples=24,
                    max_eval_examples=8, mlm={'files': files, 'max_examples': 24}, data_dir=str(data_dir))
    tie = Tie()
    m = run_stage(st, tmp_path, callbacks=[tie])
    assert tie.tied and tie.changed and set(m['train']['sampling']) == {'rte', 'mlm'}
