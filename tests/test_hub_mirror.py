"""Hub mirrors for machines without internet: `itt-xling data pull` (its list, and its one-line error offline), and a plan run
offline through mirrors built from the real rows of the data folder in each hub dataset's published layout and features."""
import csv
import pytest
from datasets import Dataset, Features, Sequence, ClassLabel, Value
from itt_xling.cli import main
from itt_xling.encoders import tiny_xlmr
from itt_xling.tasks import UPOS
from itt_xling.load import load_split, read_local, write_mirror, read_from, data_source
from itt_xling.plans import cli_data, cli_run, pull_list

def test_pull_list_and_offline_error(tmp_path, capsys):
    assert cli_data(['pull', 'xtreme-r-nli', '--out', str(tmp_path), '--dry-run']) == 0
    out = capsys.readouterr().out.splitlines()
    assert 'facebook/xnli de test' in out and 'mteb/tatoeba-bitext-mining deu-eng test' in out and out[-1] == 'model FacebookAI/xlm-roberta-large'
    assert not any(l.startswith(('lareqa', 'mewslix')) for l in out) and len(out) == len(pull_list('xtreme-r-nli'))
    assert main(['data', 'pull', 'xtreme-r-nli', '--out', str(tmp_path)]) == 2        # HF_HUB_OFFLINE is set here
    err = capsys.readouterr().err.strip()
    assert err.count('\n') == 0 and 'the hub is offline' in err and list(tmp_path.iterdir()) == []

def test_mirrors_are_not_shadowed_by_the_cache(tmp_path):
    "Offline, `load_dataset(folder, config)` can return the cache of another folder of the same name; a mirror is read by its own files."
    for k, ids in enumerate((['a', 'b'], ['c'])):
        write_mirror(Dataset.from_list([dict(sentence1=i, sentence2=i.upper()) for i in ids]), tmp_path/str(k), 'mteb/tatoeba-bitext-mining', 'deu-eng', 'test')
    assert [load_split('tatoeba', 'test', 'de', data_source(tmp_path/str(k)))['source'] for k in (0, 1)] == [['a', 'b'], ['c']]

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
    (mir/'models'/'FacebookAI').mkdir(parents=True)                  # the model's mirror: a saved model folder (tiny here)
    (mir/'models'/'FacebookAI'/'xlm-roberta-large').symlink_to(tiny_xlmr())
    plan.write_text("name: mirror\nmodel: FacebookAI/xlm-roberta-large\nintermediate: [rte]\ntarget: [udpos, tatoeba]\nsplit: test\n"
                    "langs: {udpos: [de], tatoeba: [de]}\ntrain: {epochs: 1, batch_size: 8, max_length: 32}\n"
                    "max_train_examples: 16\nmax_eval_examples: 16\n")
    assert cli_run([str(plan), '--dry-run', '--data-dir', str(mir)]) == 0
    out = capsys.readouterr().out
    assert 'rte mirror, tatoeba mirror' in out and 'model FacebookAI/xlm-roberta-large: mirror' in out and 'the hub is offline' not in out
    assert cli_run([str(plan), '--data-dir', str(mir), '--out', str(tmp_path/'run')]) == 0
    rows = list(csv.DictReader(open(tmp_path/'run'/'results.csv')))
    got = {(r['intermediate'], r['target'], r['lang']) for r in rows if r['lang'] == 'de'}
    assert got == {(i, t, 'de') for i in ('none', 'rte') for t in ('udpos', 'tatoeba')}
    assert {r['n'] for r in rows if r['target'] == 'tatoeba'} == {'16'} and {r['model'] for r in rows} == {'FacebookAI/xlm-roberta-large'}

# ---- the xtreme-r-nli preset end to end, offline: hub-read tasks from mirrors, file-only tasks from files ----
from dataclasses import replace
from itt_xling.tasks import get_task
from itt_xling.load import FIXTURES, hub_parts
from itt_xling.plans import load_plan, run_plan, stages_of, check_plan, BASELINE

def _as_hub(task, rows) -> list:
    "Canonical rows back in the hub dataset's own schema (what `from_hub` reads)."
    k = get_task(task).kind
    if k == 'classification': return [dict(premise=r['text_a'], hypothesis=r['text_b'], label=r['label'], idx=i) for i, r in enumerate(rows)]
    if k == 'tagging': return [{'tokens': r['tokens'], 'pos_tags' if task == 'udpos' else 'ner_tags': r['tags']} for r in rows]
    if k == 'span_qa': return [dict(id=r['id'], title='', context=r['context'], question=r['question'], answers=r['answers']) for r in rows]
    if task == 'siqa': return [dict(context=r['context'], question=r['question'], **{f'answer{c}': x for c, x in zip('ABC', r['choices'])}, label=str(r['label'] + 1)) for r in rows]
    if k == 'multiple_choice': return [dict(premise=r['context'], choice1=r['choices'][0], choice2=r['choices'][1], question=r['question'], label=r['label'], idx=i) for i, r in enumerate(rows)]
    return [dict(sentence1=r['source'], sentence2=r['target']) for r in rows]

def _preset_mirror(data_dir, root):
    "The splits xtreme-r-nli reads (one or two languages per target), mirrored from the real files or, where the data folder has none, the shipped fixtures."
    D, F = data_dir, FIXTURES
    reads = [('mnli', 'train', 'en', F, 'train'), ('mnli', 'validation', 'en', F, 'validation'), ('snli', 'train', 'en', F, 'train'),
             ('snli', 'validation', 'en', F, 'validation'), ('anli', 'train', 'en', F, 'train'), ('anli', 'validation', 'en', F, 'validation'),
             ('siqa', 'train', 'en', D, 'validation'), ('siqa', 'validation', 'en', D, 'validation'), ('copa', 'train', 'en', D, 'train'),
             ('copa', 'validation', 'en', D, 'validation'), ('squad_v1', 'train', 'en', F, 'train'), ('squad_v1', 'validation', 'en', F, 'validation'),
             ('udpos', 'train', 'en', D, 'train'), ('udpos', 'validation', 'en', D, 'validation'), ('udpos', 'test', 'de', D, 'test'),
             ('panx', 'train', 'en', F, 'train'), ('panx', 'validation', 'en', F, 'validation'), ('panx', 'test', 'de', F, 'test'),
             ('tydiqa', 'train', 'en', F, 'train'), ('tydiqa', 'validation', 'en', F, 'validation'), ('tydiqa', 'validation', 'sw', F, 'validation'),
             ('xnli', 'test', 'de', D, 'validation'), ('xcopa', 'test', 'sw', D, 'test'), ('xquad', 'validation', 'de', D, 'validation'),
             ('mlqa', 'test', 'de', D, 'validation'), ('tatoeba', 'test', 'de', D, 'test')]
    files = {}                                              # (id, config, split) -> rows: TyDiQA's languages share one config
    for task, split, lang, src, local in reads:
        rows = _as_hub(task, read_local(task, local, lang, src)[:40])
        parts = hub_parts(task, split, lang)
        for k, part in enumerate(parts): files.setdefault(part[:3], []).extend(rows[k::len(parts)])
    for (hid, cfg, split), rows in files.items(): write_mirror(Dataset.from_list(rows), root, hid, cfg, split)
    (root/'lareqa').symlink_to(D/'lareqa'); (root/'mewslix').symlink_to(F/'mewslix')     # no hub source: the files

def test_xtreme_r_nli_offline_end_to_end(data_dir, tmp_path):
    root = tmp_path/'data'
    _preset_mirror(data_dir, root)
    plan = load_plan('xtreme-r-nli')
    langs = dict(xnli=('de',), xcopa=('sw',), udpos=('de',), panx=('de',), xquad=('de',), mlqa=('de',), tydiqa=('sw',), tatoeba=('de',), lareqa=('de',), mewslix=('de',))
    plan = replace(plan, model='tiny-xlmr', seeds=(1,), train=dict(epochs=1, batch_size=8, max_length=48), overrides={t: dict(max_length=256) for t in ('squad_v1', 'tydiqa')},
                   recipe=replace(plan.recipe, langs=langs), scope=replace(plan.scope, max_train_examples=8, max_eval_examples=8),
                   output=replace(plan.output, data_dir=str(root)))
    d = data_source(root)
    assert {t: read_from(t, s, d) for t, s in (('mnli', 'train'), ('xnli', 'test'), ('tatoeba', 'test'), ('lareqa', 'validation'), ('mewslix', 'test'))} == \
           dict(mnli='mirror', xnli='mirror', tatoeba='mirror', lareqa='local', mewslix='local')
    rows = list(csv.DictReader(open(run_plan(check_plan(plan), tmp_path/'run', log=lambda m: None))))
    got = {(r['intermediate'], r['target']) for r in rows if r['lang'] != 'en'}
    grid = {(e, t) for e in ('none', 'mnli', 'anli_plus') for t in plan.target} | {('siqa-recipe', 'xcopa')} | {('squad-recipe', t) for t in ('tatoeba', 'lareqa', 'mewslix')}
    assert got == grid and len({r['stage'] for r in rows}) == len(stages_of(plan))

def test_phang2020_offline_end_to_end(data_dir, tmp_path):
    "The phang2020 preset on tiny-xlmr, offline: hub-read tasks from mirrors; CCG (its tag set read from the data), CosmosQA, CommonsenseQA, HellaSwag, QQP, SQuAD v2 and BUCC from files (a data folder mixing both)."
    root, D, F = tmp_path/'data', data_dir, FIXTURES
    _preset_mirror(D, root)
    D2 = tmp_path/'pawsx'                                                  # PAWS-X: the English dev set stands in for its train split
    for lang, split in (('en', 'train'), ('de', 'test')):
        rows = _as_hub('pawsx', read_local('pawsx', 'validation', lang, D)[:40])
        for hid, cfg, s, _ in hub_parts('pawsx', split, lang): write_mirror(Dataset.from_list(rows), root, hid, cfg, s)
    for name in ('ccg', 'qqp', 'hellaswag'): (root/name).symlink_to(F/name)
    (root/'squad').mkdir()
    for f in ('train-v2.0.json', 'dev-v2.0.json'): (root/'squad'/f).symlink_to(F/'squad'/f)
    (root/'cosmos_qa').mkdir(); (root/'commonsense_qa').mkdir(); (root/'bucc2018'/'de-en').mkdir(parents=True)
    for f in ('train.csv', 'valid.csv'): (root/'cosmos_qa'/f).symlink_to(D/'cosmos_qa'/'valid.csv')   # dev rows stand in for train
    for f in ('train_rand_split.jsonl', 'dev_rand_split.jsonl'): (root/'commonsense_qa'/f).symlink_to(D/'commonsense_qa'/'dev_rand_split.jsonl')
    for ext in ('de', 'en', 'gold'):                                       # BUCC's sample (threshold) set stands in for its test set too
        for kind in ('sample', 'training'): (root/'bucc2018'/'de-en'/f'de-en.{kind}.{ext}').symlink_to(F/'bucc2018'/'de-en'/f'de-en.sample.{ext}')
    plan = load_plan('phang2020')
    inter = plan.intermediate
    langs = {t: ('sw',) if t == 'tydiqa' else ('de',) for t in plan.target}
    plan = replace(plan, model='tiny-xlmr', intermediate=inter, seeds=(1,), train=dict(epochs=1, batch_size=8, max_length=48),
                   overrides={t: dict(max_length=256) for t in ('squad_v1', 'squad_v2', 'tydiqa', 'multi')},
                   recipe=replace(plan.recipe, langs=langs), scope=replace(plan.scope, max_train_examples=8, max_eval_examples=8),
                   output=replace(plan.output, data_dir=str(root)))
    rows = list(csv.DictReader(open(run_plan(check_plan(plan), tmp_path/'run', log=lambda m: None))))
    got = {(r['intermediate'], r['target']) for r in rows if r['lang'] != 'en'}
    assert got == {(e.name, t) for e in (BASELINE, *plan.intermediate) for t in plan.target}
    assert any(r['intermediate'] == 'ccg' and r['target'] == 'ccg' and r['lang'] == 'en' for r in rows)   # CCG trained and scored on its dev

def test_translations_and_mlm_text_from_mirrors(data_dir, tmp_path):
    "The ablations' extra hub reads go through the same mirror seam: MNLI's translation (XNLI's train split) and the masked-LM text; `data pull` lists both."
    from itt_xling.load import load_translated
    from itt_xling.core import ITTError
    from itt_xling.multitask import mlm_hub_texts
    from itt_xling.settings import MLMSpec
    from itt_xling.plans import pull_list
    root = tmp_path/'data'
    rows = _as_hub('xnli', read_local('xnli', 'validation', 'de', data_dir)[:20])
    write_mirror(Dataset.from_list(rows), root, 'facebook/xnli', 'de', 'train')
    got = load_translated('mnli', 'de', data_source(root))
    assert got['text_a'] == [r['premise'] for r in rows] and got['id'][0] == 'de:0'
    with pytest.raises(ITTError, match='facebook/xnli: the mirror has no fr train split: pull it again'): load_translated('mnli', 'fr', data_source(root))
    lines = [f'Satz {i}.' for i in range(12)]
    write_mirror(Dataset.from_dict({'text': lines}), root, 'wikimedia/wikipedia', '20231101.de', 'train')
    spec = MLMSpec(hub='wikimedia/wikipedia:20231101.{lang}', langs=('de',), max_examples=8)
    assert mlm_hub_texts(spec, root) == lines[:8]
    listed = {(h, c, s) for h, c, s, _ in pull_list('phang2020-ablations')}
    assert {('facebook/xnli', 'de', 'train'), ('wikimedia/wikipedia', '20231101.de', 'train')} <= listed
