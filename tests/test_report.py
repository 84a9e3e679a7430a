"""The report command on a synthetic run: files, model statement, tables and figures."""
import pytest
from pathlib import Path
from itt_xling.core import ITTError
from itt_xling.cli import main
from itt_xling.results import synthetic_run
from itt_xling.report import cli_report, describe_model, md_table
from itt_xling.typology import typology_table

@pytest.fixture(scope='module')
def run(tmp_path_factory):
    typ = typology_table()
    langs = ['de', 'es', 'ru', 'ar', 'ja', 'sw']
    return synthetic_run(tmp_path_factory.mktemp('r')/'synthetic', {l: float(typ.loc[l, 'syntactic']) for l in langs}, n=120)

def test_report_command_writes_everything(run, tmp_path):
    assert main(['report', str(run), '--out', str(tmp_path/'rep')]) == 0
    out = tmp_path/'rep'
    assert {'report.md', 'report.html', 'deltas.csv', 'typology.csv', 'aggregates.csv', 'effects.csv'} <= {p.name for p in out.iterdir()}
    figs = {p.name for p in (out/'figures').iterdir()}
    for stem in ['heatmap_gain', 'gain_vs_syntactic', 'gain_per_language_xnli', 'dumbbell_pawsx']:
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
