"""Figures a reader can trust: docs width, units, legends outside the data, targets not learned marked, corrected significance."""
import numpy as np, pandas as pd, pytest
from matplotlib.image import imread
from itt_xling.results import synthetic_run, load_results, gain_analysis
from itt_xling.typology import typology_table
from itt_xling import figures as F

@pytest.fixture(scope='module')
def ga(tmp_path_factory):
    typ = typology_table()
    langs = ['en', 'de', 'es', 'ru', 'ar', 'ja', 'sw', 'zh']
    run = synthetic_run(tmp_path_factory.mktemp('f')/'r', {l: float(typ.loc[l, 'syntactic']) for l in langs}, seeds=(1, 2), n=80,
                        single_class=('pawsx',))
    return gain_analysis(load_results(run)), typ

def test_gain_vs_distance_fits_docs_width_when_wrapped(ga, tmp_path):
    g, typ = ga
    many = pd.concat([g.languages.assign(intermediate=f'i{k}') for k in range(9)])       # 9 intermediates x 2 targets = 18 panels
    fig = F.gain_vs_distance(many, typ)
    assert sum(ax.get_visible() and ax.get_title() != '' for ax in fig.axes) == 18
    F.save_figure(fig, tmp_path/'g')
    assert imread(tmp_path/'g.png').shape[1] <= F.DOCS_WIDTH_PX + 50
    assert {ax.get_ylabel() for ax in fig.axes} >= {'gain (points)'}

def test_gain_vs_distance_marks_targets_not_learned_and_draws_the_size_adjusted_fit(ga):
    g, typ = ga
    fig = F.gain_vs_distance(g.languages, typ, intermediate='rte')
    panels = {ax.get_title(): ax for ax in fig.axes if ax.get_title()}
    assert set(panels) == {'rte → xnli', 'rte → pawsx'}
    assert any(t.get_text() == 'not learned at this scale' for t in panels['rte → pawsx'].texts)
    assert len(panels['rte → xnli'].lines) == 2 and len(panels['rte → pawsx'].lines) == 1      # fit + zero line; zero line only
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ['fit at mean size: gain ~ distance + log size']

def test_per_language_plot_uses_the_adjusted_significance(ga):
    g, typ = ga
    d = g.languages
    fig = F.gain_per_language(d, typ, 'xnli')
    ax = fig.axes[0]
    filled = sum(int(np.sum(np.asarray(c.get_facecolors())[:, :3].sum(1) < 2.9)) for c in ax.collections if len(c.get_offsets()))
    assert filled == int(d[d.target == 'xnli'].significant.sum())
    assert ax.get_legend().get_bbox_to_anchor().x0 >= ax.bbox.x1 - 1                          # legend outside the data
    assert ax.get_ylabel() == 'gain (points, 95 % CI)'
    assert 'not learned' in F.gain_per_language(d, typ, 'pawsx').axes[0].get_title()

def test_family_plot_and_heatmap_mark_targets_not_learned(ga):
    g, _ = ga
    labels = [t.get_text() for t in F.family_gains(g.families).axes[0].get_yticklabels()]
    assert sorted(labels) == ['rte → pawsx (not learned)', 'rte → xnli', 'sst2 → pawsx (not learned)', 'sst2 → xnli']
    texts = [t.get_text() for t in F.heatmap_gain(g.languages).axes[0].texts]
    assert texts.count('not\nlearned') == 2 and sum(t.startswith(('+', '-')) for t in texts) == 2

def test_dumbbell_legend_outside_and_units(ga):
    g, typ = ga
    ax = F.dumbbell(g.languages, 'xnli', 'rte', typ).axes[0]
    assert ax.get_legend().get_bbox_to_anchor().x0 >= ax.bbox.x1 - 1 and ax.get_xlabel() == 'accuracy (points)'
