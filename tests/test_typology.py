"""Typology table, URIEL distances and the gain-distance regression, which says when it cannot answer."""
import numpy as np, pandas as pd, pytest
from scipy import stats
from itt_xling.core import ITTError
from itt_xling.tasks import BENCHMARKS
from itt_xling.typology import (languages, typology_table, uriel_distances, correlations, typology_effect, size_adjusted_fit, DISTANCES,
                                MIN_RESID_DF)

@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch): monkeypatch.setenv('ITT_XLING_CACHE', str(tmp_path))

def test_table_covers_xtreme_r_and_explains_every_gap():
    typ = typology_table()
    xr = {l for ls in BENCHMARKS['xtreme-r']['langs'].values() for l in ls}
    assert set(typ.index) == xr and len(typ) == 50
    for d in DISTANCES:
        for lang in typ.index[typ[d].isna()]: assert d in typ.loc[lang, 'note'], (lang, d)
    for lang in typ.index[typ['cc100_gib'].isna()]: assert 'size' in typ.loc[lang, 'note']
    assert (typ.loc['en', list(DISTANCES)].astype(float) < 1e-3).all()   # English to itself (geographic: 2e-4 of rounding)

def test_covariates_from_the_xlmr_table():
    L = languages()
    assert L.loc['en', 'cc100_gib'] == 300.8 and L.loc['sw', 'cc100_gib'] == 1.6
    assert L.loc['zh', 'cc100_gib'] == pytest.approx(46.9 + 16.6)
    assert L.loc[['ht', 'qu', 'wo', 'yo'], 'cc100_gib'].isna().all()
    assert L.loc['ru', 'latin'] == False and L.loc['tr', 'latin'] == True

def test_isolate_has_no_genetic_distance():
    pytest.importorskip('urielplus')
    d = uriel_distances({'eu': ['eus'], 'de': ['deu']}, distances=('genetic', 'syntactic'))
    assert np.isnan(d.loc['eu', 'genetic']) and 'isolate' in d.loc['eu', 'note']
    assert 0 < d.loc['de', 'genetic'] < 1 and 0 < d.loc['eu', 'syntactic'] < 1

def test_shipped_table_matches_fresh_computation():
    pytest.importorskip('urielplus')
    typ = typology_table(['de', 'ja', 'az'])
    fresh = uriel_distances({'de': ['deu'], 'ja': ['jpn'], 'az': ['azj', 'aze']})
    for d in DISTANCES: np.testing.assert_allclose(typ[d].to_numpy(float), fresh[d].to_numpy(float), atol=1e-4)

def test_unknown_code_is_nan_with_reason():
    pytest.importorskip('urielplus')
    t = typology_table(['xqz'])
    assert t[list(DISTANCES)].isna().all(axis=None) and 'no URIEL entry' in t.loc['xqz', 'note']

def test_correlations_known_sign_and_pearson():
    rng = np.random.default_rng(0); x = rng.uniform(size=100); y = -2*x + rng.normal(0, 0.2, 100)
    c = correlations(x, y).set_index('analysis')
    assert c.loc['pearson', 'estimate'] == pytest.approx(np.corrcoef(x, y)[0, 1])
    assert c.loc['spearman', 'ci_high'] < 0 and c.loc['pearson', 'ci_high'] < 0
    with pytest.raises(ITTError): correlations([1, 2, 3], [1, 2, 3])

def test_regression_recovers_known_slope():
    typ = typology_table()
    ok = typ.dropna(subset=['syntactic', 'cc100_gib']).drop(index='en')
    rng = np.random.default_rng(2)
    df = pd.DataFrame({'lang': ok.index, 'target': 't', 'delta': 1.0 + 3.0*ok['syntactic'].values - 0.2*ok['log_cc100_gib'].values + rng.normal(0, 0.05, len(ok))})
    e = typology_effect(df, 't', typ=typ).set_index('term')
    assert e.loc['distance', 'estimate'] == pytest.approx(3.0, abs=0.3)
    assert e.loc['distance', 'ci_low'] < 3.0 < e.loc['distance', 'ci_high']
    assert e.loc['log_size', 'estimate'] == pytest.approx(-0.2, abs=0.03)
    assert e.loc['distance', 'analysis'] == 'ols' and e.loc['distance', 'p_value'] < 1e-6

def test_regression_no_effect_is_not_significant():
    typ = typology_table()
    ok = typ.dropna(subset=['syntactic', 'cc100_gib']).drop(index='en')
    df = pd.DataFrame({'lang': ok.index, 'target': 't', 'delta': np.random.default_rng(4).normal(0, 1, len(ok))})
    e = typology_effect(df, 't', typ=typ).set_index('term')
    assert e.loc['distance', 'ci_low'] < 0 < e.loc['distance', 'ci_high']

def test_effect_errors():
    df = pd.DataFrame({'lang': ['de'], 'target': ['t'], 'delta': [1.0]})
    with pytest.raises(ITTError, match='unknown distance'): typology_effect(df, 't', metric='nope')
    with pytest.raises(ITTError, match='no rows'): typology_effect(df, 'other')

def test_constant_gains_have_no_correlation():
    with pytest.raises(ITTError, match='equal'): correlations([0.1, 0.2, 0.3, 0.4], [2, 2, 2, 2])

def test_sparse_code_falls_back_and_flags():
    t = typology_table(['ms', 'kk'])
    assert t.loc['ms', 'syntactic_n'] >= 20 and "syntactic: via 'msa'" in t.loc['ms', 'note']
    assert t.loc['ms', 'syntactic'] > 0.3            # not the 0.0 of zsm's 12 shared features
    assert 'syntactic: only 12 shared features, unreliable' in t.loc['kk', 'note']


# --- statistics that say when they cannot answer -------------------------------------------------------------

def _table():
    typ = typology_table()
    return typ, typ.dropna(subset=['syntactic', 'cc100_gib']).drop(index='en')

def test_ols_uses_hc3_robust_errors():
    import statsmodels.formula.api as smf
    typ, ok = _table()
    rng = np.random.default_rng(5)
    y = 2 - 10*ok['syntactic'].values + rng.normal(0, 0.5 + 2*ok['syntactic'].values, len(ok))   # heteroskedastic
    e = typology_effect(pd.DataFrame({'lang': ok.index, 'target': 't', 'delta': y}), 't', typ=typ).set_index('term')
    d = pd.DataFrame({'gain': y, 'distance': ok['syntactic'].values, 'log_size': ok['log_cc100_gib'].values})
    ref = smf.ols('gain ~ distance + log_size', d).fit(cov_type='HC3', use_t=True)
    assert e.loc['distance', 'estimate'] == pytest.approx(ref.params['distance'])
    assert e.loc['distance', 'ci_low'] == pytest.approx(ref.conf_int().loc['distance', 0])
    assert e.loc['distance', 'p_value'] == pytest.approx(ref.pvalues['distance'])
    assert 'HC3' in e.loc['distance', 'method']

@pytest.mark.parametrize('n_langs, has_p', [(8, False), (12, False), (13, True), (20, True)])
def test_no_pvalues_from_fewer_than_10_residual_df(n_langs, has_p):
    "OLS with 3 parameters: n - 3 residual df; correlations: n - 2."
    typ, ok = _table()
    ok = ok.iloc[:n_langs]
    df = pd.DataFrame({'lang': ok.index, 'target': 't', 'delta': -10*ok['syntactic'].values + np.random.default_rng(0).normal(0, 1, n_langs)})
    e = typology_effect(df, 't', typ=typ).set_index('term')
    assert np.isfinite(e.loc['distance', 'p_value']) == has_p
    assert np.isfinite(e.loc['distance', 'estimate'])
    if not has_p:
        assert np.isnan(e.loc['distance', 'ci_low']) and e.loc['distance', 'note'].startswith('too few languages')
    corr_ok = n_langs - 2 >= MIN_RESID_DF
    assert np.isfinite(e.loc['rho', 'p_value']) == corr_ok and np.isfinite(e.loc['r', 'ci_low']) == corr_ok

def test_spearman_interval_is_a_percentile_bootstrap():
    rng = np.random.default_rng(0); x = rng.uniform(size=30); y = x + rng.normal(0, 0.5, 30)
    c = correlations(x, y, n_resamples=500, seed=3).set_index('analysis')
    ref = stats.bootstrap((x, y), lambda a, b: stats.spearmanr(a, b)[0], paired=True, vectorized=False, n_resamples=500,
                          method='percentile', rng=np.random.default_rng(3))
    assert c.loc['spearman', 'ci_low'] == pytest.approx(ref.confidence_interval.low)
    assert c.loc['spearman', 'ci_high'] == pytest.approx(ref.confidence_interval.high)
    assert c.loc['spearman', 'method'].startswith('percentile bootstrap') and c.loc['pearson', 'method'] == "Fisher's z"

def test_boundary_mixed_model_is_reported_and_falls_back():
    "Two targets per language differing by independent noise only: the language variance is 0, on the boundary."
    typ, ok = _table()
    r0 = np.random.default_rng(0)
    base = 2 - 10*ok['syntactic'].values + 0.4*ok['log_cc100_gib'].values
    df = pd.concat([pd.DataFrame({'lang': ok.index, 'target': t, 'delta': base + off + r0.normal(0, 0.3, len(ok))}) for t, off in (('a', 0), ('b', 1))])
    e = typology_effect(df, typ=typ)
    v = e.set_index('term').loc['language variance']
    assert v['analysis'] == 'mixed' and v['estimate'] < 1e-6 and 'boundary' in v['note'] and 'fell back' in v['note']
    fb = e[e['analysis'] == 'ols on language means'].set_index('term')
    assert set(fb.index) == {'Intercept', 'distance', 'log_size'} and (fb['n'] == len(ok)).all()
    assert fb.loc['distance', 'ci_low'] < -10 < fb.loc['distance', 'ci_high']
    assert any('boundary' in w for w in e.attrs['warnings'])                # statsmodels' warning, kept
    assert all('warnings:' in n for n in e.loc[e['analysis'] == 'ols on language means', 'note'])

def test_mixed_model_reports_its_variances():
    typ, ok = _table()
    r0 = np.random.default_rng(1)
    base = 2 - 10*ok['syntactic'].values + 0.4*ok['log_cc100_gib'].values + r0.normal(0, 1.0, len(ok))   # a shift per language
    df = pd.concat([pd.DataFrame({'lang': ok.index, 'target': t, 'delta': base + off + r0.normal(0, 0.3, len(ok))}) for t, off in (('a', 0), ('b', 1))])
    e = typology_effect(df, typ=typ).set_index('term')
    assert e.loc['language variance', 'estimate'] == pytest.approx(1.0, rel=0.5) and e.loc['residual variance', 'estimate'] < 0.3
    assert e.loc['distance', 'analysis'] == 'mixed' and e.loc['distance', 'ci_low'] < -10 < e.loc['distance', 'ci_high']

def test_size_adjusted_fit_is_the_partial_regression():
    typ, ok = _table()
    y = 1 + 3*ok['syntactic'].values - 0.2*ok['log_cc100_gib'].values + np.random.default_rng(2).normal(0, 0.1, len(ok))
    b = size_adjusted_fit(ok['syntactic'], ok['log_cc100_gib'], y)
    e = typology_effect(pd.DataFrame({'lang': ok.index, 'target': 't', 'delta': y}), 't', typ=typ).set_index('term')
    assert b[1] == pytest.approx(e.loc['distance', 'estimate']) and b[2] == pytest.approx(e.loc['log_size', 'estimate'])
    assert np.isnan(size_adjusted_fit([1, 2, 3], [1, 2, np.nan], [1, 2, 3])).all()
