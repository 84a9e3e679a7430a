"""Typology table, URIEL distances and the gain-distance regression."""
import numpy as np, pandas as pd, pytest
from itt_xling.core import ITTError
from itt_xling.tasks import BENCHMARKS
from itt_xling.typology import languages, typology_table, uriel_distances, correlations, typology_effect, DISTANCES

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
