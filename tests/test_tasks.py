"""The task registry: 29 tasks (27 of the benchmarks, 2 of the demo), the XTREME / XTREME-R tables, the language table, look-ups and `itt-xling tasks`."""
import dataclasses, subprocess, sys
import pytest
from itt_xling.core import ITTError
from itt_xling.tasks import TASKS, BENCHMARKS, LANGS, KINDS, TaskSpec, get_task, task_langs, fill_pattern
from itt_xling.cli import main

INTERMEDIATE = 'anli_plus mnli snli anli qqp sst2 rte squad_v1 squad_v2 ccg commonsenseqa cosmosqa hellaswag siqa copa'.split()
TARGETS = 'xnli pawsx udpos panx xquad mlqa tydiqa bucc2018 tatoeba xcopa lareqa mewslix'.split()
BIBLE = ['bible-para', 'bible-sr']   # the demo's tasks, outside the benchmarks


def test_registry_has_the_29_tasks():
    assert list(TASKS) == INTERMEDIATE + TARGETS + BIBLE
    assert [t.role for t in TASKS.values()] == ['intermediate'] * 15 + ['target'] * 12 + ['intermediate', 'target']
    assert {t.kind for t in TASKS.values()} == set(KINDS)


def test_taskspec_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        TASKS['xnli'].metric = 'f1'


@pytest.mark.parametrize('task,kind,n', [('xnli', 'classification', 3), ('pawsx', 'classification', 2), ('udpos', 'tagging', 17),
                                         ('panx', 'tagging', 7), ('sst2', 'classification', 2), ('rte', 'classification', 2)])
def test_kinds_and_label_sets(task, kind, n):
    assert get_task(task).kind == kind and len(get_task(task).labels) == n


def test_pairs_choices_and_training_sources():
    assert TASKS['xnli'].pair and not TASKS['sst2'].pair
    assert {t: TASKS[t].n_choices for t in ('copa', 'xcopa', 'siqa', 'commonsenseqa', 'cosmosqa', 'hellaswag')} == \
        dict(copa=2, xcopa=2, siqa=3, commonsenseqa=5, cosmosqa=4, hellaswag=4)
    src = {t: TASKS[t].train_source for t in TARGETS}
    assert src == dict(xnli='mnli', pawsx='pawsx', udpos='udpos', panx='panx', xquad='squad_v1', mlqa='squad_v1', tydiqa='tydiqa',
                       bucc2018=None, tatoeba=None, xcopa='copa', lareqa=None, mewslix=None)
    assert TASKS['anli_plus'].parts == ('snli', 'mnli', 'anli')


def test_benchmark_tables_match_the_scorer():
    x, r = BENCHMARKS['xtreme'], BENCHMARKS['xtreme-r']
    assert x['groups'] == {'classification': ['pawsx', 'xnli'], 'tagging': ['udpos', 'panx'],
                           'qa': ['xquad', 'mlqa', 'tydiqa'], 'retrieval': ['bucc2018', 'tatoeba']}
    assert r['groups']['classification'] == ['xnli', 'xcopa'] and r['groups']['retrieval'] == ['tatoeba', 'mewslix']
    assert r['groups']['multi_choice'] == ['xcopa'] and (x['overall'], r['overall']) == ('all_task', None)
    assert set(r['unscored']) == {'lareqa'} and 'lareqa' in r['langs']     # evaluated, outside the official groups
    assert ' '.join(x['langs']['xnli']) == 'ar bg de el en es fr hi ru sw th tr ur vi zh'
    assert [len(x['langs'][t]) for t in ('pawsx', 'panx', 'udpos', 'bucc2018', 'tatoeba', 'xquad', 'mlqa', 'tydiqa')] == [7, 40, 33, 4, 36, 11, 7, 9]
    assert r['langs']['udpos'][-5:] == ('lt', 'pl', 'uk', 'wo', 'ro')
    assert r['langs']['panx'][-8:] == ('qu', 'pl', 'uk', 'az', 'lt', 'pa', 'gu', 'ro')
    assert r['langs']['tatoeba'][-5:] == ('az', 'lt', 'pl', 'uk', 'ro')
    assert r['langs']['xquad'][-1] == 'ro'
    assert ' '.join(r['langs']['xcopa']) == 'et ht id it qu sw ta th tr vi zh'
    assert ' '.join(r['langs']['mewslix']) == 'ar de en es fa ja pl ro ta tr uk'
    assert x['metrics']['xquad'] == ('exact_match', 'f1') and r['metrics']['lareqa'] == ('map@20',)
    assert 'pawsx' not in r['langs'] and 'bucc2018' not in r['langs']


def test_language_table_covers_every_language():
    used = {l for b in BENCHMARKS.values() for ls in b['langs'].values() for l in ls}
    assert used <= set(LANGS)
    assert {c: LANGS[c].uriel for c in 'sw zh fa ms et ar az qu'.split()} == dict(sw='swh', zh='cmn', fa='pes', ms='zsm', et='ekk', ar='arb', az='azj', qu='quy')
    assert [LANGS[c].laser for c in ('sw', 'zh', 'fa', 'de')] == ['swh', 'cmn', 'pes', 'deu']
    assert LANGS['de'].udpos == 'German' and 'UD_German-GSD' in LANGS['de'].ud
    assert all(LANGS[l].ud for l in BENCHMARKS['xtreme-r']['langs']['udpos'])


def test_get_task_suggests_close_names():
    assert get_task('xnli') is TASKS['xnli'] and get_task(TASKS['xnli']) is TASKS['xnli']
    with pytest.raises(ITTError, match="Did you mean 'xnli'"): get_task('xnil')
    with pytest.raises(ITTError, match="Did you mean .*'squad_v1'"): get_task('squad_v')


def test_task_langs():
    assert task_langs('xnli') == BENCHMARKS['xtreme-r']['langs']['xnli']
    assert len(task_langs('udpos', 'xtreme')) == 33 and len(task_langs('udpos', 'xtreme-r')) == 38
    assert task_langs('pawsx') == ('de', 'en', 'es', 'fr', 'ja', 'ko', 'zh')  # XTREME only: falls back
    assert task_langs('mnli') == ('en',)
    assert len(task_langs('panx', None)) == 48
    with pytest.raises(ITTError, match='unknown benchmark'): task_langs('xnli', 'xtreme-x')


def test_hub_sources_fill_the_language_table():
    assert TASKS['udpos'].hub_source('de') == ('google/xtreme', 'udpos.German', {})
    assert TASKS['udpos'].hub_source('wo') is None  # no google/xtreme config: local files only
    assert TASKS['panx'].hub_source('de') == ('google/xtreme', 'PAN-X.de', {})
    assert TASKS['panx'].hub_source('qu') == ('unimelb-nlp/wikiann', 'qu', {})
    assert TASKS['tatoeba'].hub_source('sw') == ('mteb/tatoeba-bitext-mining', 'swh-eng', {})
    assert TASKS['mlqa'].hub_source('de') == ('google/xtreme', 'MLQA.de.de', {})
    assert TASKS['xnli'].hub_source('fr') == ('facebook/xnli', 'fr', {})
    assert TASKS['ccg'].hub_source('en') is None


@pytest.mark.parametrize('pattern, lang, want', [
    ('tatoeba/tatoeba.{laser}-eng.{laser}', 'sw', 'tatoeba/tatoeba.swh-eng.swh'),
    ('udpos.{udpos}', 'de', 'udpos.German'),
    ('udpos.{udpos}', 'wo', 'udpos.wo'),          # no google/xtreme name: the ISO code
    ('{lang}/{laser}/{udpos}', 'xx', 'xx/xx/xx'),  # outside the table: the code itself
    ('xnli/dev-{lang}.tsv', 'de', 'xnli/dev-de.tsv'),
])
def test_fill_pattern(pattern, lang, want):
    assert fill_pattern(pattern, lang) == want


def test_cli_lists_all_29_tasks(capsys):
    assert main(['tasks']) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ['task', 'kind', 'role', 'metric', '#langs', 'hub', 'id']
    rows = [l.split() for l in out[2:]]
    assert [r[0] for r in rows] == INTERMEDIATE + TARGETS + BIBLE
    assert rows[-1][:5] == ['bible-sr', 'retrieval', 'target', 'accuracy', '21']
    assert rows[INTERMEDIATE.index('mnli')][1:] == ['classification', 'intermediate', 'accuracy', '1', 'nyu-mll/glue']
    assert rows[len(INTERMEDIATE) + TARGETS.index('panx')][4] == '48'


def test_cli_one_task_in_full(capsys):
    assert main(['tasks', 'xnli']) == 0
    out = capsys.readouterr().out
    assert 'English training source: mnli' in out and 'facebook/xnli' in out and 'xnli/dev-{lang}.tsv' in out
    assert 'ar bg de el en es fr hi ru sw th tr ur vi zh' in out


def test_cli_unknown_task_is_one_line_error(capsys):
    assert main(['tasks', 'xnil']) == 2
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and "Did you mean 'xnli'" in err


def test_tasks_command_does_not_import_torch():
    code = "import sys, itt_xling.load; from itt_xling.cli import main; main(['tasks']); print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))"
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == '[]'
