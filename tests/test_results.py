"""Results loading, the hierarchical bootstrap over seeds and items, multiplicity, the learned-target gate and gains on synthetic runs in the trainer's layout."""
import json
import numpy as np, pandas as pd, pytest
from statsmodels.stats.multitest import multipletests
from itt_xling.core import ITTError
from itt_xling.results import (synthetic_run, load_results, deltas, gain_analysis, learned_targets, trivial_predictor, adjust_pvalues,
                               hierarchical_bootstrap, interval, paired_bootstrap, read_predictions, aggregates, FAMILY_KEYS)
from itt_xling.rundir import RESULT_COLUMNS, merge_results, stage_rows

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
    assert (dl.significant == (dl.p_adj < 0.05)).all() and (dl.p_adj >= dl.p_value - 1e-12).all()
    # no English here: the gate pools the 4 languages; PAWS-X's hard languages (ja, sw) keep it within reach of the majority class
    assert dl.groupby('target')['learned'].first().to_dict() == {'xnli': 'learned', 'pawsx': 'not learned'}
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


# --- seeds as a unit: the hierarchical bootstrap ---------------------------------------------------------

def test_hierarchical_bootstrap_recovers_planted_effect_and_seed_variance():
    "Per-item gains with a planted effect, seed sd and item noise: the bootstrap se matches the known one, the interval covers the effect."
    rng = np.random.default_rng(7)
    S, I, effect, tau, B = 8, 150, 2.0, 3.0, 300
    true_se = np.sqrt(tau**2/S + 25/I + 25/(S*I))
    ses, cover, cover_items = [], 0, 0
    for _ in range(60):
        D = effect + rng.normal(0, tau, (S, 1)) + rng.normal(0, 5, (1, I)) + rng.normal(0, 5, (S, I))
        iv = interval(hierarchical_bootstrap(D, n_resamples=B, rng=rng), D.mean()); ses.append(iv['se'])
        cover += iv['ci_low'] <= effect <= iv['ci_high']
        it = interval(hierarchical_bootstrap(D, n_resamples=B, rng=rng, draw=np.tile(np.arange(S), (B, 1))), D.mean())
        cover_items += it['ci_low'] <= effect <= it['ci_high']
    assert np.mean(ses) == pytest.approx(true_se * np.sqrt((S - 1)/S), rel=0.15)   # the bootstrap of S seeds: (S-1)/S of their variance
    assert cover >= 48 and cover_items <= 40, (cover, cover_items)

def test_one_seed_is_the_paired_bootstrap_over_items():
    d = np.random.default_rng(0).choice([-100., 0., 100.], size=(1, 400))
    h = interval(hierarchical_bootstrap(d, n_resamples=3000, seed=1), d.mean())
    lo, hi = paired_bootstrap(None, 400, scores=d[0], n_resamples=3000, seed=1)
    assert h['ci_low'] == pytest.approx(lo, abs=1.0) and h['ci_high'] == pytest.approx(hi, abs=1.0)

def test_interval_pvalue_and_degenerate_cases():
    assert interval(np.full(50, 2.0), 2.0) == dict(ci_low=2.0, ci_high=2.0, se=0.0, p_value=0.0)
    assert interval(np.zeros(50), 0.0)['p_value'] == 1.0
    assert np.isnan(interval(None, 1.0)['ci_low']) and np.isnan(interval([np.nan]*9, 1.0)['p_value'])
    b = np.random.default_rng(0).normal(1.0, 0.5, 20000)
    assert interval(b, 1.0)['p_value'] == pytest.approx(2*0.02275, abs=0.003)     # z = 2

@pytest.fixture(scope='module')
def planted(tmp_path_factory):
    "Two synthetic studies, 6 seeds x 4 languages x 500 items, 5 points of gain planted: with a seed sd of 3 points, and without."
    root = tmp_path_factory.mktemp('planted')
    kw = dict(intermediates=('rte',), targets=('xnli',), seeds=(1, 2, 3, 4, 5, 6), n=500, effects={'rte': 5.0})
    langs = {'de': 0.3, 'es': 0.3, 'ru': 0.4, 'ja': 0.5}
    return {sd: gain_analysis(load_results(synthetic_run(root/f'sd{sd}', langs, seed_sd=sd, **kw)), gate=False) for sd in (0.0, 3.0)}

def test_planted_effect_recovered_from_files(planted):
    for sd, ga in planted.items():
        f = ga.families.iloc[0]
        assert f.ci_low < 5.0 < f.ci_high, (sd, f.ci_low, f.ci_high)
        assert f.n_langs == 4 and f.n_seeds == 6 and len(f.per_seed.split()) == 6
        assert f.delta == pytest.approx(ga.languages['delta'].mean())

def test_planted_seed_variance_recovered_from_files(planted):
    with_sd, without = planted[3.0].families.iloc[0], planted[0.0].families.iloc[0]
    assert 1.5 < with_sd.seed_sd < 5.0 and without.seed_sd < 1.0
    assert (with_sd.ci_high - with_sd.ci_low) > 2*(without.ci_high - without.ci_low)   # the width the seeds add
    lang = planted[3.0].languages
    assert (lang.delta_sd > 1.0).all() and lang.per_seed.str.split().map(len).eq(6).all()

def test_three_seed_synthetic_run_fast(tmp_path):
    ga = gain_analysis(load_results(synthetic_run(tmp_path/'r', {'en': 0.0, 'de': 0.3, 'sw': 0.6}, seeds=(1, 2, 3), n=80, seed_sd=2.0)))
    assert (ga.languages.n_seeds == 3).all() and (ga.families.n_seeds == 3).all() and ga.families.seed_sd.notna().all()
    assert len(ga.families) == 4 and set(ga.gate.verdict) == {'learned'}
    assert ga.languages.attrs['adjust'] == 'holm' and ga.families.attrs['confidence'] == 0.95

# --- multiplicity ----------------------------------------------------------------------------------------

@pytest.mark.parametrize('method, sm', [('holm', 'holm'), ('bh', 'fdr_bh')])
def test_adjusted_pvalues_equal_statsmodels(run, method, sm):
    dl = deltas(load_results(run), adjust=method)
    for _, g in dl.groupby(FAMILY_KEYS):
        np.testing.assert_allclose(g['p_adj'], multipletests(g['p_value'], method=sm)[1], rtol=0, atol=1e-12)
    assert (dl.significant == (dl.p_adj < 0.05)).all()

@pytest.mark.parametrize('p, method, expected', [
    ([0.01, 0.04, 0.03, 0.2], 'holm', [0.04, 0.09, 0.09, 0.2]),
    ([0.01, 0.04, 0.03, 0.2], 'bh', [0.04, 0.16/3, 0.16/3, 0.2]),
    ([0.01, np.nan, 0.03], 'holm', [0.02, np.nan, 0.03]),
    ([0.01, 0.04], 'none', [0.01, 0.04]),
    ([np.nan], 'holm', [np.nan]),
])
def test_adjust_pvalues_cases(p, method, expected):
    np.testing.assert_allclose(adjust_pvalues(p, method), expected, rtol=0, atol=1e-12)

def test_unknown_adjustment(run):
    with pytest.raises(ITTError, match='holm'): adjust_pvalues([0.1], 'bonferonni')
    with pytest.raises(ITTError, match='holm'): deltas(load_results(run), adjust='fdr')

# --- the learned-target gate -----------------------------------------------------------------------------

def test_gate_marks_a_single_class_predictor(tmp_path):
    r = synthetic_run(tmp_path/'flat', {'en': 0.0, 'de': 0.3, 'ja': 0.6}, intermediates=('rte',), seeds=(1, 2, 3), n=150, single_class=('pawsx',))
    ga = gain_analysis(load_results(r))
    g = ga.gate.set_index('target')
    assert g.loc['pawsx', 'verdict'] == 'not learned' and g.loc['xnli', 'verdict'] == 'learned'
    assert g.loc['pawsx', 'checked_in'] == 'English' and g.loc['pawsx', 'n_seeds'] == 3
    assert 'majority class' in g.loc['pawsx', 'reason'] and 'not learned at this scale' in g.loc['pawsx', 'reason']
    assert g.loc['pawsx', 'ci_low'] <= 0 and g.loc['xnli', 'ci_low'] > 0
    assert set(ga.languages.loc[ga.languages.target == 'pawsx', 'learned']) == {'not learned'}
    fam = ga.families.set_index('target')
    assert np.isnan(fam.loc['pawsx', 'p_adj']) and not fam.loc['pawsx', 'significant']    # left out of the adjustment across families

def test_gate_pools_languages_without_english_and_needs_predictions(tmp_path):
    r = synthetic_run(tmp_path/'noen', {'de': 0.2, 'ja': 0.5}, intermediates=('rte',), targets=('xnli',), seeds=(1,), n=100)
    g = learned_targets(load_results(r)).iloc[0]
    assert g.checked_in == '2 languages pooled (no English evaluation)' and g.verdict == 'learned'
    (r/'none.xnli-s1-synthetic'/'predictions'/'xnli.ja.test.jsonl').unlink()
    g = learned_targets(load_results(r)).iloc[0]
    assert g.verdict == 'not checked' and 'no per-example predictions' in g.reason
    assert deltas(load_results(r)).learned.unique().tolist() == ['not checked']

@pytest.mark.parametrize('task, golds, preds, what', [
    ('pawsx', [0, 1, 1], [1, 1, 1], "the majority class 'paraphrase', right on 66.7 % of the items"),
    ('xnli', [2, 2, 0, 1], [2, 2, 2, 2], "the majority class 'contradiction', right on 50.0 % of the items"),
    ('xcopa', [1, 0, 1, 1], [1, 1, 1, 1], 'always answer 1, right on 75.0 % of the items'),
    ('tatoeba', [0, 1, 2, 3, 4], [0]*5, 'one constant candidate (chance: 1 in 5), right on 20.0 % of the items'),
    ('udpos', [['NOUN', 'VERB', 'NOUN'], ['DET']], [['NOUN']*3, ['NOUN']], "every token tagged 'NOUN'"),
    ('panx', [['O', 'B-PER'], ['O']], [['O', 'O'], ['O']], "every token tagged 'O'"),
    ('lareqa', [['a', 'b'], ['a'], ['c']], [['a', 'b', 'c']]*3, 'one ranking for every query (the most often relevant candidates first)'),
])
def test_trivial_predictor_per_kind(task, golds, preds, what):
    p, w = trivial_predictor(task, golds)
    assert p == preds and w == what

def test_trivial_predictor_span_qa_picks_the_best_constant_answer():
    from itt_xling.metrics import compute_metrics
    golds = [['Paris'], ['in Paris'], ['1990'], ['Paris, France']]
    p, w = trivial_predictor('xquad', golds, compute_metrics, 'f1', 'en')
    assert p == ['Paris']*4 and w.startswith("the constant answer 'Paris'")
