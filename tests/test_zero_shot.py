"""Zero-shot evaluation: length-sorted, de-duplicated inference equals plain batched inference, for every kind; CLI rows and files."""
import json
import pandas as pd
import pytest
from itt_xling.core import ITTError
from itt_xling.models import build_model, load_tokenizer, predict
from itt_xling.features import featurize, data_collator, postprocess
from itt_xling.load import load_split
from itt_xling.zero_shot import predict_examples, zero_shot, cli_eval, load_for_eval
from itt_xling.metrics import compute_metrics
from pathlib import Path
import itt_xling

FIXTURES = Path(itt_xling.__file__).parent/'fixtures'


@pytest.fixture(scope='module')
def tok(): return load_tokenizer('tiny-xlmr')


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


def test_cli_eval_appends_rows_and_writes_predictions(tmp_path, data_dir, capsys):
    argv = ['--model', 'tiny-xlmr', '--task', 'tatoeba', '--langs', 'de', '--limit', '20', '--data-dir', str(data_dir), '--out', str(tmp_path)]
    assert cli_eval(argv) == 0
    assert cli_eval(argv) == 0                           # a rerun replaces its own rows
    out = capsys.readouterr().out
    assert 'tatoeba  de  test' in out
    res = pd.read_csv(tmp_path/'results.csv')
    assert len(res) == 2 and set(res.metric) == {'accuracy', 'accuracy_en_xx'} and set(res.stage) == {'eval-tiny-xlmr'}
    lines = (tmp_path/'eval-tiny-xlmr'/'predictions'/'tatoeba.de.test.jsonl').read_text().splitlines()
    assert len(lines) == 20 and set(json.loads(lines[0])) == {'id', 'pred', 'gold'}


def test_eval_refuses_a_bare_encoder_for_a_trained_task():
    with pytest.raises(ITTError, match='ForSequenceClassification head'): load_for_eval('tiny-xlmr', 'pawsx')
