"""Results loading, paired-bootstrap intervals and gains on a synthetic run in the trainer's layout."""
import json
import numpy as np, pandas as pd, pytest
from itt_xling.core import ITTError
from itt_xling.results import synthetic_run, load_results, deltas, paired_bootstrap, read_predictions, aggregates
from itt_xling.zero_shot import RESULT_COLUMNS, merge_results, stage_rows

@pytest.fixture(scope='module')
def run(tmp_path_factory):
    return synthetic_run(tmp_path_factory.mktemp('runs')/'synthetic', {'de': 0.2, 'ru': 0.4, 'ja': 0.8, 'sw': 0.6}, n=200)

def test_bootstrap_known_normal_interval():
    rng = np.random.default_rng(3)
    d = rng.normal(0.5, 2.0, 5000)
    lo, hi = paired_bootstrap(None, len(d), scores=d, n_resamples=3000, seed=1)
    half = 1.96*d.std(ddof=1)/np.sqrt(len(d))
    assert lo == pytest.approx(d.mean() - half, abs=0.01)
    assert hi == pytest.approx(d.mean() + half, abs=0.01)

def test_bootstrap_paths_agree_and_seeded():
    d = np.random.default_rng(0).choice([-1., 0., 1.], 1000)
    a = paired_bootstrap(None, len(d), scores=d, seed=5)
    assert a == paired_bootstrap(None, len(d), scores=d, seed=5)
    b = paired_bootstrap(lambda i: d[i].mean(), len(d), seed=5)
    assert a[0] == pytest.approx(b[0], abs=0.01) and a[1] == pytest.approx(b[1], abs=0.01)

def test_bootstrap_constant_difference_has_zero_width():
    assert paired_bootstrap(None, 30, scores=np.full(30, -2.0)) == (-2.0, -2.0)

def test_load_results_joins_config(run):
    df = load_results(run)
    assert len(df) == 3*2*2*4
    assert {'config.lr', 'config.epochs', 'run_dir'} <= set(df.columns)
    assert set(df['intermediate']) == {'none', 'rte', 'sst2'}

def test_synthetic_run_results_csv_is_rebuilt_from_its_stages(run):
    "The synthetic run goes through the one writer: results.csv is exactly what merge_results rebuilds from metrics.json."
    f = run/'results.csv'
    text = f.read_text()
    assert text.splitlines()[0] == ','.join(RESULT_COLUMNS)
    assert len(text.splitlines()) == 1 + len(stage_rows(run)) == 1 + 3*2*2*4
    assert merge_results(run) == f and f.read_text() == text
    cfg = load_results(run).iloc[0]
    assert cfg['config.tasks'] in ('pawsx', 'xnli', 'rte,pawsx', 'rte,xnli', 'sst2,pawsx', 'sst2,xnli')   # lists joined

def test_load_results_dedupes_repeated_runs(run):
    assert len(load_results(run, run)) == len(load_results(run))

def test_load_results_errors(tmp_path, run):
    with pytest.raises(ITTError, match='results.csv'): load_results(tmp_path)
    (tmp_path/'results.csv').write_text('run,stage\nx,y\n')
    with pytest.raises(ITTError, match='missing column'): load_results(tmp_path)

def test_deltas_pairing_and_intervals(run):
    df = load_results(run)
    dl = deltas(df)
    assert len(dl) == 2*2*4
    # the point gain is the mean over seeds of ITT - baseline from results.csv
    r = dl[(dl.intermediate == 'rte') & (dl.target == 'xnli') & (dl.lang == 'de')].iloc[0]
    x = df[(df.target == 'xnli') & (df.lang == 'de')]
    exp = (x[x.intermediate == 'rte'].sort_values('seed')['value'].to_numpy() - x[x.intermediate == 'none'].sort_values('seed')['value'].to_numpy())
    assert r.delta == pytest.approx(exp.mean()); assert r.delta_sd == pytest.approx(exp.std(ddof=1))
    assert r.ci_low <= r.delta <= r.ci_high and r.n == 200 and r.n_seeds == 2
    assert (dl.significant == ((dl.ci_low > 0) | (dl.ci_high < 0))).all()
    assert (dl.note == '').all()

def test_deltas_without_predictions_and_without_baseline(run, tmp_path):
    bad = synthetic_run(tmp_path/'b', {'de': 0.2}, intermediates=('rte',), targets=('xnli',), seeds=(1,), n=40)
    (bad/'rte.xnli-s1-synthetic'/'predictions'/'xnli.de.test.jsonl').unlink()
    dl = deltas(load_results(bad))
    assert np.isnan(dl.ci_low.iloc[0]) and 'no per-example predictions' in dl.note.iloc[0]
    df = load_results(run)
    with pytest.raises(ITTError, match='no baseline'): deltas(df[df.intermediate != 'none'])

def test_corpus_level_metric_recomputed(tmp_path):
    # a metric that is not a mean over examples falls back to recomputation on each resample
    run = synthetic_run(tmp_path/'c', {'de': 0.3}, intermediates=('rte',), targets=('xnli',), seeds=(1,), n=60)
    def fn(task, preds, golds, lang=None):
        acc = np.mean(np.asarray(preds) == np.asarray(golds))
        return {'accuracy': 100*acc**2}     # squared accuracy: not decomposable
    df = load_results(run)
    dl = deltas(df, metric_fn=fn)
    assert dl.ci_method.iloc[0] == 'bootstrap (metric recomputed)'
    assert 'predictions give' in dl.note.iloc[0]   # differs from results.csv, and says so

def test_read_predictions_malformed(run):
    f = run/'none.xnli-s1-synthetic'/'predictions'/'xnli.de.test.jsonl'
    keep = f.read_text()
    try:
        f.write_text(keep.splitlines()[0] + '\n{not json\n')
        with pytest.raises(ITTError, match=r'xnli.de.test.jsonl:2'): read_predictions(run, 'none.xnli-s1-synthetic', 'xnli', 'de', 'test')
    finally: f.write_text(keep)

def test_aggregates(run):
    a = aggregates(load_results(run), 'xtreme')
    assert set(a['name']) >= {'xnli', 'pawsx', 'classification'}
    assert (a['n_seeds'] == 2).all()

def _tagging_run(root, n=60):
    """A hand-written run in the trainer's layout with tag-sequence predictions (panx), baseline and one ITT stage."""
    from itt_xling.metrics import compute_metrics
    rng = np.random.default_rng(0)
    tags = ['O', 'B-PER', 'I-PER', 'B-LOC', 'I-LOC']
    gold = [[tags[k] for k in rng.integers(0, 5, 10)] for _ in range(n)]
    rows = []
    for inter, q in (('none', 0.6), ('rte', 0.8)):
        sid = f'{inter}.panx-s1-x'; d = root/sid/'predictions'; d.mkdir(parents=True)
        (root/sid/'config.yaml').write_text(f'id: {sid}\nconfig: {{name: {inter}, lr: 1.0e-05}}\n')
        pred = [[t if rng.random() < q else 'O' for t in s] for s in gold]
        (d/'panx.de.test.jsonl').write_text(''.join(json.dumps(dict(id=str(i), pred=p, gold=g)) + '\n' for i, (p, g) in enumerate(zip(pred, gold))))
        for m, v in compute_metrics('panx', pred, gold, 'de').items():
            rows.append(dict(run='t', stage=sid, model='tiny-xlmr', seed=1, intermediate=inter, target='panx', lora='none',
                             lang='de', split='test', metric=m, value=v, n=n))
    pd.DataFrame(rows).to_csv(root/'results.csv', index=False)
    return root

def test_tagging_f1_interval_from_span_counts(tmp_path):
    dl = deltas(load_results(_tagging_run(tmp_path)))
    r = dl.iloc[0]
    assert r.metric == 'f1' and r.ci_method == 'bootstrap (span counts)' and r.note == ''
    assert r.ci_low < r.delta < r.ci_high and r.delta > 0
    assert len(deltas(load_results(tmp_path), metrics='all')) == 3   # f1, precision, recall
