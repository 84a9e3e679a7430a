"""Hub mirrors for machines without internet: `itt-xling data pull` (its list, and its one-line error offline), and a plan run
offline through mirrors built from the real rows of the data folder in each hub dataset's published layout and features."""
import csv
import pytest
from datasets import Dataset, Features, Sequence, ClassLabel, Value
from itt_xling.cli import main
from itt_xling.tasks import UPOS
from itt_xling.load import read_local, write_mirror, read_from, data_source
from itt_xling.plans import cli_data, cli_run, pull_list

def test_pull_list_and_offline_error(tmp_path, capsys):
    assert cli_data(['pull', 'xtreme-r-nli', '--out', str(tmp_path), '--dry-run']) == 0
    out = capsys.readouterr().out.splitlines()
    assert 'facebook/xnli de test' in out and 'mteb/tatoeba-bitext-mining deu-eng test' in out and out[-1] == 'model FacebookAI/xlm-roberta-large'
    assert not any(l.startswith(('lareqa', 'mewslix')) for l in out) and len(out) == len(pull_list('xtreme-r-nli'))
    assert main(['data', 'pull', 'xtreme-r-nli', '--out', str(tmp_path)]) == 2        # HF_HUB_OFFLINE is set here
    err = capsys.readouterr().err.strip()
    assert err.count('\n') == 0 and 'the hub is offline' in err and list(tmp_path.iterdir()) == []

def _mirror(data_dir, out):
    "Mirrors of nyu-mll/glue rte, google/xtreme udpos and mteb/tatoeba-bitext-mining from the real files, as the hub publishes them."
    rte = Features(sentence1=Value('string'), sentence2=Value('string'), label=ClassLabel(names=['entailment', 'not_entailment']), idx=Value('int32'))
    for split in ('train', 'validation'):
        rows = read_local('rte', split, 'en', data_dir)[:24]
        write_mirror(Dataset.from_list([dict(sentence1=r['text_a'], sentence2=r['text_b'], label=r['label'], idx=i) for i, r in enumerate(rows)], features=rte),
                     out, 'nyu-mll/glue', 'rte', split)
    pos = Features(tokens=Sequence(Value('string')), pos_tags=Sequence(ClassLabel(names=list(UPOS))))
    for lang, name, split in (('en', 'English', 'train'), ('en', 'English', 'validation'), ('de', 'German', 'test')):
        rows = read_local('udpos', split, lang, data_dir)[:24]
        write_mirror(Dataset.from_list([dict(tokens=r['tokens'], pos_tags=[UPOS.index(t) for t in r['tags']]) for r in rows], features=pos),
                     out, 'google/xtreme', f'udpos.{name}', split)
    rows = read_local('tatoeba', 'test', 'de', data_dir)[:24]
    write_mirror(Dataset.from_list([dict(sentence1=r['source'], sentence2=r['target']) for r in rows]), out, 'mteb/tatoeba-bitext-mining', 'deu-eng', 'test')

def test_plan_runs_offline_from_mirrors(data_dir, tmp_path, capsys):
    mir = tmp_path/'mirror'
    _mirror(data_dir, mir)
    d = data_source(mir)
    assert [read_from(t, s, d) for t, s in (('rte', 'train'), ('udpos', 'test'), ('tatoeba', 'test'))] == ['mirror'] * 3
    plan = tmp_path/'p.yaml'
    plan.write_text("name: mirror\nmodel: tiny-xlmr\nintermediate: [rte]\ntarget: [udpos, tatoeba]\nsplit: test\n"
                    "langs: {udpos: [de], tatoeba: [de]}\ntrain: {epochs: 1, batch_size: 8, max_length: 32}\n"
                    "max_train_examples: 16\nmax_eval_examples: 16\n")
    assert cli_run([str(plan), '--dry-run', '--data-dir', str(mir)]) == 0
    assert 'rte mirror, tatoeba mirror' in capsys.readouterr().out
    assert cli_run([str(plan), '--data-dir', str(mir), '--out', str(tmp_path/'run')]) == 0
    rows = list(csv.DictReader(open(tmp_path/'run'/'results.csv')))
    got = {(r['intermediate'], r['target'], r['lang']) for r in rows if r['lang'] == 'de'}
    assert got == {(i, t, 'de') for i in ('none', 'rte') for t in ('udpos', 'tatoeba')}
    assert {r['n'] for r in rows if r['target'] == 'tatoeba'} == {'16'}
