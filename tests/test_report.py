"""The report command on synthetic runs: files, model statement, caps, the gate, adjusted significance, tables and figures."""
import json, re
import pandas as pd, pytest, yaml
from pathlib import Path
from itt_xling.core import ITTError
from itt_xling.cli import main
from itt_xling.results import synthetic_run
from itt_xling.report import cli_report, describe_model, md_table, stage_caps, caps_table, build_report
from itt_xling.typology import typology_table

@pytest.fixture(scope='module')
def run(tmp_path_factory):
    typ = typology_table()
    langs = ['de', 'es', 'ru', 'ar', 'ja', 'sw']
    return synthetic_run(tmp_path_factory.mktemp('r')/'synthetic', {l: float(typ.loc[l, 'syntactic']) for l in langs}, n=120)

@pytest.fixture(scope='module')
def three(tmp_path_factory):
    "A synthetic run with 3 seeds, English evaluated, and PAWS-X predicting one class in every chain; its report."
    typ = typology_table()
    langs = ['en', 'de', 'es', 'fr', 'ru', 'ar', 'ja', 'sw', 'zh']
    run = synthetic_run(tmp_path_factory.mktemp('r3')/'three', {l: float(typ.loc[l, 'syntactic']) for l in langs}, seeds=(1, 2, 3), n=100,
                        seed_sd=1.0, single_class=('pawsx',))
    out = run/'report'
    assert main(['report', str(run), '--out', str(out)]) == 0
    return out

def test_report_command_writes_everything(run, tmp_path):
    assert main(['report', str(run), '--out', str(tmp_path/'rep')]) == 0
    out = tmp_path/'rep'
    assert {'report.md', 'report.html', 'deltas.csv', 'families.csv', 'gate.csv', 'caps.csv', 'typology.csv', 'aggregates.csv',
            'effects.csv'} <= {p.name for p in out.iterdir()}
    figs = {p.name for p in (out/'figures').iterdir()}
    for stem in ['family_gains', 'heatmap_gain', 'gain_vs_syntactic', 'gain_vs_syntactic_rte', 'gain_vs_syntactic_sst2',
                 'gain_per_language_xnli', 'dumbbell_pawsx']:
        assert {f'{stem}.png', f'{stem}.svg'} <= figs
    assert not [p for p in out.rglob('*.tmp')]
    md = (out/'report.md').read_text()
    assert 'SYNTHETIC' in md and '## Gains over the baseline' in md and '## Typology of the languages' in md
    for f in ['heatmap_gain', 'dumbbell_xnli']: assert f'figures/{f}.png' in md
    assert '<table>' in (out/'report.html').read_text()

def test_report_errors(tmp_path, capsys):
    assert main(['report', str(tmp_path/'missing')]) == 2
    assert 'does not exist' in capsys.readouterr().err
    with pytest.raises(ITTError, match='results.csv'): cli_report([str(tmp_path)])
    with pytest.raises(ITTError, match='at least 1000'): cli_report([str(tmp_path), '--resamples', '10'])

def test_model_statement():
    assert describe_model('me5-small').startswith('multilingual-e5-small (offline stand-in')
    assert describe_model('xlm-roberta-large') == 'XLM-R Large'
    assert 'not know' in describe_model('my-model')

def test_md_table_nan_and_pipes():
    import pandas as pd, numpy as np
    t = md_table(pd.DataFrame({'a': ['x|y'], 'b': [np.nan]}))
    assert t.splitlines()[-1] == '| x\\|y | – |'


# --- a 3-seed run: caps, gate, adjusted significance, per-intermediate typology figures -----------------------

def _section(md, title):
    return md.split(f'## {title}')[1].split('\n## ')[0]

def test_three_seed_report_states_the_caps(three):
    md = (three/'report.md').read_text()
    caps = _section(md, 'What was run')
    assert 'Seeds: 1, 2, 3 (3)' in caps and 'One seed' not in md
    head = '| stage | model | seeds | trained on | steps | epochs | lr | batch | max length | frozen | max train | max eval/lang | split | dtype |'
    assert head in caps
    assert re.search(r'\| rte → xnli \| synthetic \| 1, 2, 3 \| 1000 \| 250 \| 2 \| 1e-05 \| 8 \| 128 \| nothing \| 1000 \| 100 \| test \| not recorded', caps)
    assert '| xnli | test | 100 |' in caps                       # items evaluated per language

def test_three_seed_report_gives_the_gates_verdict_per_target(three):
    gate = _section((three/'report.md').read_text(), 'Which targets were learned')
    assert re.search(r'\| pawsx \| accuracy \| English \| 3 \| .* \| not learned \|', gate)
    assert re.search(r'\| xnli \| accuracy \| English \| 3 \| .* \| learned \|', gate)
    assert '**pawsx: not learned at this scale.**' in gate and 'majority class' in gate
    g = pd.read_csv(three/'gate.csv').set_index('target')
    assert g.loc['pawsx', 'verdict'] == 'not learned' and g.loc['xnli', 'verdict'] == 'learned'

def test_three_seed_report_adjusted_significance(three):
    md = (three/'report.md').read_text()
    gains = _section(md, 'Gains over the baseline')
    assert "Holm's method" in gains and 'hierarchical bootstrap' in gains and '(primary result)' in gains
    assert '| p | p_adj | sig. |' in gains and '| per_seed | p_adj | sig. | langs up | langs down |' in gains
    assert '| rte | pawsx |' not in gains and '| rte | xnli |' in gains          # the target not learned is left out
    d = pd.read_csv(three/'deltas.csv')
    assert set(d.learned) == {'learned', 'not learned'} and (d.n_seeds == 3).all()
    assert (d.significant == (d.p_adj < 0.05)).all()
    f = pd.read_csv(three/'families.csv')
    assert (f.n_seeds == 3).all() and f.per_seed.str.count(':').eq(3).all()

def test_three_seed_report_typology_per_intermediate(three):
    md = (three/'report.md').read_text()
    typ = _section(md, 'Gain and distance from English')
    assert '| rte | xnli | ols | distance |' in typ and '| rte | pawsx |' not in typ
    assert 'too few languages' in typ                                            # 8 languages: no p-value
    for it in ('rte', 'sst2'):
        assert f'figures/gain_vs_syntactic_{it}.png' in md and (three/'figures'/f'gain_vs_syntactic_{it}.svg').exists()

def test_one_seed_report_says_intervals_ignore_training_variance(run, tmp_path):
    one = synthetic_run(tmp_path/'one', {'de': 0.3, 'ru': 0.4, 'ja': 0.6}, intermediates=('rte',), targets=('xnli',), seeds=(1,), n=60)
    md = build_report([one], tmp_path/'rep', html_report=False, figures=False).read_text()
    assert '**One seed.**' in md and 'ignore training variance' in md

def test_stand_in_encoder_is_not_called_xlmr(run, tmp_path):
    "A run whose model is me5-small: the report says these are not XLM-R numbers."
    df = pd.read_csv(run/'results.csv'); df['model'] = 'me5-small'
    (tmp_path/'me5').mkdir(); df.to_csv(tmp_path/'me5'/'results.csv', index=False)
    for st in df['stage'].unique():
        (tmp_path/'me5'/st).symlink_to(run/st)
    md = build_report([tmp_path/'me5'], tmp_path/'rep', html_report=False, figures=False).read_text()
    assert '**Not XLM-R numbers.** `me5-small`' in md

def _stage(root, name, cfg, train=None):
    d = root/name; d.mkdir(parents=True)
    (d/'config.yaml').write_text(yaml.safe_dump(dict(id=name, config=cfg)))
    (d/'metrics.json').write_text(json.dumps(dict(stage=name, train=train or {}, rows=[])))

@pytest.mark.parametrize('cfg, train, frozen, shown', [
    (dict(name='none', tasks=[], target=None, lr=1e-3, epochs=2), {}, 'no training (the pretrained encoder, evaluated)', dict(lr='–', epochs='–')),
    (dict(name='rte', tasks=['rte'], target=None, lr=1e-4, epochs=1, freeze_embeddings=True), dict(n_train=512, global_step=64),
     'word embeddings', dict(lr='0.0001', epochs='1', **{'trained on': '512', 'steps': '64'})),
    (dict(name='rte', tasks=['rte', 'xnli'], target='xnli', lora=dict(r=8)), {}, 'encoder frozen except LoRA adapters (r=8)', {}),
    (dict(name='rte', tasks=['xnli'], target='xnli', freeze_embeddings=False, max_length=384), dict(dtype='bf16'), 'nothing',
     {'max length': '384', 'dtype': 'bf16'}),
])
def test_caps_from_stage_folders(tmp_path, cfg, train, frozen, shown):
    _stage(tmp_path, 'a-s1-x', dict(cfg, model='me5-small', seed=1), train)
    _stage(tmp_path, 'a-s2-x', dict(cfg, model='me5-small', seed=2), train)
    t = caps_table(stage_caps([tmp_path])).iloc[0]
    assert t['frozen'] == frozen and t['seeds'] == '1, 2' and t['model'] == 'me5-small'
    for k, v in shown.items(): assert t[k] == v, (k, t[k])
    if 'dtype' not in shown: assert t['dtype'].startswith('not recorded')
