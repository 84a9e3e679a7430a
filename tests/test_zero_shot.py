"""Zero-shot evaluation: length-sorted, de-duplicated inference equals plain batched inference, for every kind; the one
evaluation path (split, languages, strictness, retrieval dispatch) gives today's rows; the one writer of results.csv."""
import json, os, shutil
import pandas as pd
import pytest
from itt_xling.core import ITTError
from itt_xling.tasks import get_task, task_langs
from itt_xling.models import build_model, load_tokenizer, predict
from itt_xling.features import featurize, data_collator, postprocess
from itt_xling.load import load_split, local_files, data_source
from itt_xling.retrieval import tatoeba_eval, bare_encoder
from itt_xling.zero_shot import (GOLD, predict_examples, score_examples, eval_split, eval_langs, evaluate,
                                 zero_shot, record_eval, cli_eval, load_for_eval)
from itt_xling.rundir import RESULT_COLUMNS, write_predictions, write_metrics, stage_rows, merge_results
from itt_xling.metrics import compute_metrics
from pathlib import Path
import itt_xling

FIXTURES = Path(itt_xling.__file__).parent/'fixtures'


@pytest.fixture(scope='module')
def tok(): return load_tokenizer('tiny-xlmr')


@pytest.fixture(scope='module')
def pawsx_model():
    import torch
    torch.manual_seed(0)
    return build_model('tiny-xlmr', 'pawsx')


@pytest.mark.parametrize('task,lang,split,n,local', [
    ('pawsx', 'de', 'validation', 24, False), ('udpos', 'de', 'test', 12, False), ('xquad', 'de', 'validation', 6, False),
    ('xcopa', 'et', 'validation', 10, False), ('panx', 'de', 'test', 2, True)])
def test_predict_examples_matches_plain_inference(task, lang, split, n, local, tok, data_dir):
    ds = load_split(task, split, lang, data_dir=FIXTURES if local else data_dir).select(range(n))
    ds = ds.select(list(range(len(ds))) + [0, 1])       # duplicated examples
    model = build_model('tiny-xlmr', task)
    mine = predict_examples(model, tok, task, ds, batch_size=4)
    feats = featurize(task, ds, tok, cache=False)
    ref = postprocess(task, ds, feats, predict(model, feats, data_collator(task, tok), batch_size=len(feats)))
    assert mine == ref
    assert mine[-2:] == mine[:2]


def test_zero_shot_rows_and_predictions(tok, data_dir):
    model = build_model('tiny-xlmr', 'xnli')
    rows, preds = zero_shot(model, 'xnli', langs=['de', 'sw'], data_dir=data_dir, tokenizer=tok, limit=30)
    assert [(r['task'], r['lang'], r['split'], r['metric'], r['n']) for r in rows] == [
        ('xnli', 'de', 'validation', 'accuracy', 30), ('xnli', 'sw', 'validation', 'accuracy', 30)]
    p = preds['sw']
    assert rows[1]['value'] == compute_metrics('xnli', [x['pred'] for x in p], [x['gold'] for x in p])['accuracy']
    # a split the task lacks falls back to the one it is scored on (Tatoeba has only test)
    r, _ = zero_shot(build_model('tiny-xlmr', 'tatoeba'), 'tatoeba', ['de'], data_dir=data_dir, tokenizer=tok, limit=10)
    assert {x['split'] for x in r} == {'test'}


def test_cli_eval_rows_predictions_and_rerun(tmp_path, data_dir, capsys):
    argv = ['--model', 'tiny-xlmr', '--task', 'tatoeba', '--langs', 'de', '--limit', '20', '--data-dir', str(data_dir), '--out', str(tmp_path)]
    assert cli_eval(argv) == 0
    assert cli_eval(argv) == 0                           # a rerun replaces its own rows
    out = capsys.readouterr().out
    assert 'tatoeba  de  test' in out
    res = pd.read_csv(tmp_path/'results.csv')
    assert len(res) == 2 and set(res.metric) == {'accuracy', 'accuracy_xx_en'} and set(res.stage) == {'eval-tiny-xlmr'}
    lines = (tmp_path/'eval-tiny-xlmr'/'predictions'/'tatoeba.de.test.jsonl').read_text().splitlines()
    assert len(lines) == 20 and set(json.loads(lines[0])) == {'id', 'pred', 'gold'}


def test_eval_refuses_a_bare_encoder_for_a_trained_task():
    with pytest.raises(ITTError, match='ForSequenceClassification head'): load_for_eval('tiny-xlmr', 'pawsx')


# --- bug 3: one writer of results.csv ---------------------------------------------------------------------------

def _finished_stage(run:Path, sid:str='none.pawsx-s1-0123abcd'):
    row = dict(run='r', stage=sid, model='tiny-xlmr', seed=1, intermediate='none', target='pawsx', lora='none',
               lang='de', split='validation', metric='accuracy', value=61.5, n=32)
    write_metrics(run/sid, dict(stage=sid, rows=[row]))
    return row


def test_eval_out_rows_survive_a_later_rebuild_of_results_csv(tmp_path, data_dir):
    "An `itt-xling eval --out` row is kept when a later run rebuilds results.csv in the same folder (it used to be deleted)."
    stage = _finished_stage(tmp_path)
    argv = ['--model', 'tiny-xlmr', '--task', 'tatoeba', '--langs', 'de', '--limit', '12', '--data-dir', str(data_dir), '--out', str(tmp_path)]
    assert cli_eval(argv) == 0
    before = pd.read_csv(tmp_path/'results.csv')
    merge_results(tmp_path)                              # what `itt-xling run`, `sweep` and every finished stage do
    res = pd.read_csv(tmp_path/'results.csv')
    assert res.equals(before)
    ev = res[res.stage == 'eval-tiny-xlmr']
    assert sorted(ev.metric) == ['accuracy', 'accuracy_xx_en'] and set(ev.run) == {'eval'} and set(ev.target) == {'tatoeba'}
    assert set(res.stage) == {stage['stage'], 'eval-tiny-xlmr'}
    m = json.loads((tmp_path/'eval-tiny-xlmr'/'metrics.json').read_text())
    assert m['stage'] == 'eval-tiny-xlmr' and [r['metric'] for r in m['rows']] == ['accuracy', 'accuracy_xx_en']
    assert all(list(r) == RESULT_COLUMNS for r in m['rows'])


def test_record_eval_replaces_one_task_and_keeps_the_others(tmp_path):
    rows = lambda task, langs, v: [dict(task=task, lang=l, split='test', metric='accuracy', value=v, n=2) for l in langs]
    preds = lambda langs: {l: [dict(id='0', pred=1, gold=1), dict(id='1', pred=0, gold=1)] for l in langs}
    record_eval(tmp_path, 'eval-m', 'm', rows('xnli', ['de', 'fr'], 50.0), preds(['de', 'fr']))
    record_eval(tmp_path, 'eval-m', 'm', rows('tatoeba', ['de'], 10.0), preds(['de']), {'tatoeba.jv': 'no local test files'})
    record_eval(tmp_path, 'eval-m', 'm', rows('xnli', ['de'], 75.0), preds(['de']))      # xnli again, German only
    res = pd.read_csv(tmp_path/'results.csv')
    assert sorted(zip(res.target, res.lang, res.value)) == [('tatoeba', 'de', 10.0), ('xnli', 'de', 75.0)]
    assert sorted(p.name for p in (tmp_path/'eval-m'/'predictions').iterdir()) == ['tatoeba.de.test.jsonl', 'xnli.de.test.jsonl']
    assert json.loads((tmp_path/'eval-m'/'metrics.json').read_text())['skipped'] == {'tatoeba.jv': 'no local test files'}
    assert list(res.columns) == RESULT_COLUMNS


def test_merge_results_rebuilds_from_metrics_only(tmp_path):
    row = _finished_stage(tmp_path, 'b-stage')
    _finished_stage(tmp_path, 'a-stage')
    (tmp_path/'c-unfinished').mkdir()                    # no metrics.json: not finished, not listed
    f = merge_results(tmp_path)
    assert f.read_text().splitlines()[0] == ','.join(RESULT_COLUMNS)
    assert [r['stage'] for r in stage_rows(tmp_path)] == ['a-stage', 'b-stage']
    os.utime(f, (0, 0))
    merge_results(tmp_path)
    assert f.stat().st_mtime == 0                        # unchanged content: not rewritten
    write_metrics(tmp_path/'b-stage', dict(rows=[dict(row, extra='ignored', value=70.0)]))
    other = tmp_path/'elsewhere'
    merge_results(tmp_path, out=other)
    assert pd.read_csv(other/'results.csv').value.tolist() == [61.5, 70.0]
    p = write_predictions(tmp_path/'a-stage', 'pawsx', 'de', 'validation', [dict(id='é', pred=1, gold=0)])
    assert p.read_text(encoding='utf-8') == '{"id": "é", "pred": 1, "gold": 0}\n'


# --- one evaluation path -----------------------------------------------------------------------------------------

@pytest.mark.parametrize('task,split,want', [
    ('pawsx', 'validation', 'validation'), ('pawsx', 'test', 'test'), ('pawsx', None, 'test'), ('tatoeba', 'validation', 'test'),
    ('lareqa', 'test', 'validation'), ('bucc2018', 'validation', 'validation'), ('anli_plus', 'test', 'validation')])
def test_eval_split(task, split, want):
    assert eval_split(task, split) == want


def test_eval_langs():
    assert eval_langs('xnli', 'de') == ['de'] and eval_langs('xnli', ('sw', 'de')) == ['sw', 'de']
    assert eval_langs('xnli', []) == list(task_langs('xnli'))           # empty: not given
    assert eval_langs('udpos', benchmark='xtreme') == list(task_langs('udpos', 'xtreme'))
    assert len(eval_langs('udpos', benchmark='xtreme')) == 33 and eval_langs('udpos') == list(task_langs('udpos'))
    assert eval_langs('bucc2018', split='validation', data_dir=FIXTURES) == ['de']
    assert eval_langs('panx', ['sw'], split='test', data_dir=FIXTURES) == ['sw']    # given languages are not filtered
    with pytest.raises(ITTError, match='unknown benchmark'): eval_langs('xnli', benchmark='xtreme-x')


def test_eval_langs_with_local_data_is_the_old_discovery(data_dir):
    for task in ('tatoeba', 'pawsx', 'xnli', 'lareqa', 'udpos'):
        t = get_task(task); split = eval_split(t, 'validation')
        assert eval_langs(t, split='validation', data_dir=data_dir) == [l for l in t.langs if local_files(t, split, l, data_dir)]


def _pawsx_dir(tmp_path, data_dir):
    d = tmp_path/'data'/'pawsx'; d.mkdir(parents=True)
    (d/'dev-de.tsv').write_text(''.join((data_dir/'pawsx'/'dev-de.tsv').read_text(encoding='utf-8').splitlines(True)[:12]), encoding='utf-8')
    (d/'dev-fr.tsv').write_text('')                      # unreadable: the file is empty
    return d.parent


def test_evaluate_raises_or_skips_when_asked(tmp_path, tok, pawsx_model, data_dir, capsys):
    dd = _pawsx_dir(tmp_path, data_dir)
    with pytest.raises(ITTError, match=r'dev-fr\.tsv.*empty'): evaluate(pawsx_model, tok, 'pawsx', data_dir=dd)   # strict by default
    with pytest.raises(ITTError, match='empty'): evaluate(pawsx_model, tok, 'pawsx', ['de', 'fr'], data_dir=dd)
    capsys.readouterr()
    rows, preds, skipped = evaluate(pawsx_model, tok, 'pawsx', data_dir=dd, strict=False)       # asked to skip: a warning
    assert [r['lang'] for r in rows] == ['de'] and rows[0]['n'] == 12 and list(preds) == ['de']
    assert 'empty' in skipped.pop('pawsx.fr')
    assert skipped == {f'pawsx.{l}': 'no local validation files' for l in ('en', 'es', 'ja', 'ko', 'zh')}
    err = [l for l in capsys.readouterr().err.splitlines() if 'warning' in l]          # (progress bars may share stderr)
    assert len(err) == 1 and err[0].startswith('itt-xling: warning: pawsx fr not evaluated:') and 'dev-fr.tsv' in err[0]
    (dd/'pawsx'/'dev-de.tsv').unlink()
    with pytest.raises(ITTError, match='no language of pawsx could be evaluated: .*empty'): evaluate(pawsx_model, tok, 'pawsx', data_dir=dd, strict=False)
    with pytest.raises(ITTError, match='no xnli validation files'): evaluate(pawsx_model, tok, 'xnli', data_dir=data_source(dd, {'xnli': 'local'}))
    with pytest.raises(ITTError, match='xnli.*the hub is offline'): evaluate(pawsx_model, tok, 'xnli', data_dir=dd)   # no files here: the hub's


def _reference(model, tok, task, langs, split, data_dir, select, batch_size, max_length):
    "What the stage's and the old zero_shot's loops did: per language load, select, predict, score."
    rows, preds = [], {}
    for lang in langs:
        ds = select(load_split(task, split, lang, data_dir))
        p = predict_examples(model, tok, task, ds, batch_size=batch_size, max_length=max_length)
        gold = ds[GOLD[get_task(task).kind]]
        rows += [dict(task=task, lang=lang, split=split, metric=k, value=float(v), n=len(ds))
                 for k, v in compute_metrics(task, p, gold, lang=lang).items()]
        preds[lang] = [dict(id=i, pred=a, gold=b) for i, a, b in zip(ds['id'], p, gold)]
    return rows, preds


def test_evaluate_gives_the_old_rows_for_classification(tok, pawsx_model, data_dir):
    held_out = lambda ds: ds.select(range(1, min(len(ds), 72), 3))   # stands for a stage's held-out filter and cap (24 rows)
    langs = [l for l in task_langs('pawsx') if local_files('pawsx', 'validation', l, data_dir)]
    # a stage: no languages given, local data, its select, batch 64, its max_length, its cap as limit
    rows, preds, skipped = evaluate(pawsx_model, tok, 'pawsx', None, 'validation', data_dir, select=held_out, batch_size=64,
                                    max_length=128, limit=24)
    assert (rows, preds) == _reference(pawsx_model, tok, 'pawsx', langs, 'validation', data_dir, held_out, 64, 128)
    assert len(rows) == 7 and skipped == {}
    # the old zero_shot: given languages, first N examples
    first = lambda ds: ds.select(range(20))
    assert zero_shot(pawsx_model, 'pawsx', ['de', 'zh'], data_dir=data_dir, tokenizer=tok, limit=20) == \
        _reference(pawsx_model, tok, 'pawsx', ['de', 'zh'], 'validation', data_dir, first, 32, None)


def test_evaluate_gives_the_old_rows_for_tatoeba(tok, data_dir):
    enc = build_model('tiny-xlmr', 'tatoeba')
    rows, preds, skipped = evaluate(enc, tok, 'tatoeba', None, 'validation', data_dir, limit=10)
    langs = [l for l in get_task('tatoeba').langs if local_files('tatoeba', 'test', l, data_dir)]
    ref_preds = {}
    assert rows == tatoeba_eval(bare_encoder(enc), tok, langs, data_dir, split='test', limit=10, preds=ref_preds)
    assert preds == ref_preds and len(rows) == 2 * len(langs) and set(skipped) == {f'tatoeba.{l}' for l in task_langs('tatoeba') if l not in langs}
    r, _ = zero_shot(enc, 'tatoeba', ['de', 'sw'], data_dir=data_dir, tokenizer=tok, limit=30)
    # the numbers the code gave before the evaluation paths were merged (tiny-xlmr's weights are seeded), each language's
    # two directions now in the order accuracy (en→xx, XTREME's), accuracy_xx_en
    assert [round(x['value'], 4) for x in r] == [10.0, 6.6667, 13.3333, 10.0]


def test_score_examples(tok, pawsx_model, data_dir):
    ds = load_split('pawsx', 'validation', 'de', data_dir).select(range(16))
    preds = []
    m = score_examples(pawsx_model, tok, 'pawsx', ds, batch_size=8, preds=preds)
    assert list(m) == ['accuracy'] and len(preds) == 16
    assert m['accuracy'] == compute_metrics('pawsx', [p['pred'] for p in preds], ds['label'])['accuracy']
