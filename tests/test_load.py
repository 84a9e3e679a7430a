"""Loaders: every original-format reader on the real files (and the shipped fixtures), the hub column mapping,
every user error, and the counts `itt-xling tasks --data-dir` reports."""
import json, os, re
import pytest
from datasets import Dataset, ClassLabel, Features, Sequence, Value
from itt_xling.core import ITTError
from itt_xling.tasks import TASKS, get_task
from itt_xling.load import (data_source, load_split, load_candidates, from_hub, local_files, file_patterns, READERS, FIXTURES,
                            read_local, cli_tasks)
from itt_xling.cli import main

COLS = {'classification': ['id', 'text_a', 'text_b', 'label'], 'tagging': ['id', 'tokens', 'tags'],
        'span_qa': ['id', 'context', 'question', 'answers'], 'multiple_choice': ['id', 'context', 'question', 'choices', 'label']}


def check(ds, task):
    "Canonical columns and label ranges."
    t = get_task(task)
    if t.kind in COLS: assert ds.column_names == COLS[t.kind]
    if t.kind == 'classification': assert set(ds['label']) <= set(range(len(t.labels)))
    if t.kind == 'multiple_choice':
        assert all(len(c) == t.n_choices for c in ds['choices']) and set(ds['label']) <= set(range(t.n_choices))
    if t.kind == 'tagging':
        assert all(len(a) == len(b) > 0 for a, b in zip(ds['tokens'], ds['tags']))
        if t.labels: assert {x for ts in ds['tags'] for x in ts} <= set(t.labels)
    assert len(set(ds['id'])) == len(ds) or t.kind == 'retrieval' or task in ('snli', 'anli')
    return ds


def test_every_format_has_a_reader():
    assert all(t.fmt in READERS or t.parts for t in TASKS.values())


# ---- real files ----
@pytest.mark.parametrize('task,split,lang,n', [
    ('xnli', 'validation', 'en', 2490), ('xnli', 'validation', 'th', 2490), ('pawsx', 'validation', 'ko', 2000),
    ('pawsx', 'validation', 'zh', 2000), ('rte', 'train', 'en', 2490), ('rte', 'validation', 'en', 277),
    ('sst2', 'validation', 'en', 872), ('sst2', 'test', 'en', 1821), ('udpos', 'validation', 'de', 799),
    ('udpos', 'test', 'ar', 1000), ('udpos', 'test', 'yo', 317), ('udpos', 'validation', 'wo', 449),
    ('xquad', 'validation', 'ar', 1190), ('mlqa', 'validation', 'en', 1148), ('mlqa', 'validation', 'de', 512),
    ('xcopa', 'validation', 'it', 100), ('xcopa', 'test', 'tr', 500), ('copa', 'train', 'en', 400), ('copa', 'validation', 'en', 100),
    ('siqa', 'validation', 'en', 1954), ('siqa', 'test', 'en', 2224), ('commonsenseqa', 'validation', 'en', 1221),
    ('cosmosqa', 'validation', 'en', 2985), ('tatoeba', 'test', 'sw', 390), ('tatoeba', 'test', 'kk', 575),
    ('tatoeba', 'test', 'th', 548), ('tatoeba', 'test', 'de', 1000), ('lareqa', 'validation', 'ar', 1190)])
def test_real_files(data_dir, task, split, lang, n):
    assert len(check(load_split(task, split, lang, data_dir=data_dir), task)) == n


def test_udpos_english_train_and_skipped_nodes(data_dir):
    ds = check(load_split('udpos', 'train', 'en', data_dir=data_dir), 'udpos')
    assert len(ds) == 12544
    raw = (data_dir/'ud/UD_English-EWT/en_ewt-ud-train.conllu').read_text(encoding='utf-8').split('\n')
    words = [l for l in raw if l and l[0].isdigit() and l.split('\t')[0].isdigit()]
    assert sum(map(len, ds['tokens'])) == len(words) == 204577
    assert any('-' in l.split('\t')[0] for l in raw if l and l[0].isdigit())  # multiword lines exist and were skipped
    assert ds[0]['id'].startswith('weblog-juancole.com')


def test_labels_map_to_the_label_list(data_dir):
    x = load_split('xnli', 'validation', 'en', data_dir=data_dir)
    assert x[0]['text_a'] == "And he said, Mama, I'm home." and TASKS['xnli'].labels[x[0]['label']] == 'neutral'
    assert sorted(x['label'].count(i) for i in range(3)) == [830, 830, 830]
    assert TASKS['rte'].labels[load_split('rte', 'validation', 'en', data_dir=data_dir)[0]['label']] == 'not_entailment'
    s = load_split('sst2', 'validation', 'en', data_dir=data_dir)
    assert s[0]['text_b'] == '' and s[0]['label'] == 1
    q = load_split('siqa', 'validation', 'en', data_dir=data_dir)[0]
    assert q['label'] == 2 and q['choices'][2] == 'Find somewhere to go'
    c = load_split('commonsenseqa', 'validation', 'en', data_dir=data_dir)[0]
    assert c['choices'][c['label']] == 'bank'


@pytest.mark.parametrize('task,split,langs', [('xnli', 'validation', ['en', 'de', 'ar', 'sw', 'th', 'zh']),
                                              ('pawsx', 'validation', ['en', 'de', 'ja', 'ko']),
                                              ('xquad', 'validation', ['en', 'de', 'th', 'zh']),
                                              ('xcopa', 'test', ['et', 'qu', 'zh']),
                                              ('lareqa', 'validation', ['en', 'de', 'ar'])])
def test_parallel_sets_share_ids(data_dir, task, split, langs):
    ids = [load_split(task, split, l, data_dir=data_dir)['id'] for l in langs]
    assert all(i == ids[0] for i in ids) and len(set(ids[0])) == len(ids[0])


def test_tatoeba_ids_are_line_numbers(data_dir):
    ds = load_split('tatoeba', 'test', 'sw', data_dir=data_dir)
    lines = (data_dir/'tatoeba/tatoeba.swh-eng.eng').read_text(encoding='utf-8').split('\n')
    assert ds['id'][:3] == ['0', '1', '2'] and ds[5]['target'] == lines[5]
    assert ds.column_names == ['id', 'source', 'target']


def test_squad_answers_point_into_the_context(data_dir):
    ds = load_split('xquad', 'validation', 'de', data_dir=data_dir)
    for r in ds.select(range(50)):
        for t, s in zip(r['answers']['text'], r['answers']['answer_start']): assert r['context'][s:s + len(t)] == t


def test_lareqa_targets_are_candidates(data_dir):
    q = load_split('lareqa', 'validation', 'en', data_dir=data_dir)
    pool = load_candidates('lareqa', 'validation', 'en', data_dir=data_dir)
    text = dict(zip(pool['id'], pool['text']))
    assert q.column_names == ['id', 'query', 'target', 'target_id', 'context']
    assert all(text[i] == t for i, t in zip(q['target_id'], q['target']))
    assert q[0]['target'].startswith('The Panthers defense gave up just 308 points')


def test_pawsx_korean_control_character_is_not_a_line_break(data_dir):
    ds = load_split('pawsx', 'validation', 'ko', data_dir=data_dir)
    assert '\x1c' in ds[823]['text_b'] and ds[823]['label'] == 1


# ---- shipped fixtures, in the original formats ----
@pytest.mark.parametrize('task,split,lang,n', [
    ('mnli', 'train', 'en', 4), ('mnli', 'validation', 'en', 3), ('snli', 'train', 'en', 3), ('anli', 'train', 'en', 9),
    ('anli_plus', 'train', 'en', 16), ('qqp', 'train', 'en', 3), ('squad_v1', 'train', 'en', 2), ('squad_v2', 'validation', 'en', 3),
    ('ccg', 'train', 'en', 2), ('ccg', 'validation', 'en', 2), ('hellaswag', 'train', 'en', 2), ('panx', 'train', 'en', 3),
    ('panx', 'test', 'de', 2), ('tydiqa', 'train', 'en', 2), ('tydiqa', 'validation', 'sw', 1), ('tydiqa', 'validation', 'fi', 1),
    ('bucc2018', 'validation', 'de', 2), ('mewslix', 'test', 'de', 2), ('mewslix', 'validation', 'en', 2)])
def test_fixtures(task, split, lang, n):
    assert len(check(load_split(task, split, lang, data_dir=FIXTURES), task)) == n


def test_fixture_details():
    # SNLI's '-' (no gold label) is dropped; ANLI's e/n/c map to the NLI labels
    assert load_split('anli', 'train', data_dir=FIXTURES)['label'][:3] == [0, 2, 1]
    # MultiNLI reads the same from JSON lines and from its GLUE TSV
    from itt_xling.load import read_nli_jsonl, _Src
    t = TASKS['mnli']
    j = read_nli_jsonl(_Src(FIXTURES/'mnli/multinli_1.0_dev_matched.jsonl'), t, 'en')
    g = read_nli_jsonl(_Src(FIXTURES/'mnli/dev_matched.tsv'), t, 'en')
    assert [(r['text_a'], r['text_b'], r['label']) for r in j] == [(r['text_a'], r['text_b'], r['label']) for r in g]
    assert load_split('squad_v2', 'train', data_dir=FIXTURES)[2]['answers'] == {'text': [], 'answer_start': []}
    c = load_split('ccg', 'validation', data_dir=FIXTURES)[0]
    assert c['tokens'] == ['The', 'dog', 'saw', 'cats'] and c['tags'] == ['NP[nb]/N', 'N', '(S[dcl]\\NP)/NP', 'N'] and c['id'] == 'wsj_0001.1'
    p = load_split('panx', 'train', 'en', data_dir=FIXTURES)
    assert p[0]['tokens'][:2] == ['Anna', 'Berg'] and p[0]['tags'][:2] == ['B-PER', 'I-PER'] and p[2]['tokens'] == ["''", 'Lima', "''"]
    assert all(i.startswith('swahili-') for i in load_split('tydiqa', 'validation', 'sw', data_dir=FIXTURES)['id'])
    h = load_split('hellaswag', 'train', data_dir=FIXTURES)[1]
    assert h['choices'][h['label']] == 'rides down the hill, braking gently.'
    # the scored pairs are jiant's HellaSwag input (the paper's): (ctx_a, ctx_b + ' ' + ending)
    from itt_xling.features import choice_pairs
    raw = json.loads((FIXTURES/'hellaswag'/'hellaswag_train.jsonl').read_text().splitlines()[1])
    assert choice_pairs(h['context'], h['question'], h['choices']) == [(raw['ctx_a'], raw['ctx_b'] + ' ' + e) for e in raw['endings']]
    m = load_split('mewslix', 'test', 'en', data_dir=FIXTURES)[1]
    assert (m['query'], m['target_id'], m['context']) == ('Seine', 'Q1471', 'The Seine rose by two metres.')


def test_candidate_pools():
    b = load_candidates('bucc2018', 'validation', 'de', data_dir=FIXTURES)
    assert b.column_names == ['id', 'text', 'side'] and b['side'].count('source') == 3 and b['side'].count('target') == 4
    gold = load_split('bucc2018', 'validation', 'de', data_dir=FIXTURES)
    assert gold[0] == {'id': 'de-000001', 'source': 'Das Haus steht am Fluss.', 'target': 'The house stands by the river.'}
    assert len(load_candidates('mewslix', 'test', 'de', data_dir=FIXTURES)) == 5
    with pytest.raises(ITTError, match='no candidate pool'): load_candidates('xnli', 'validation', 'de', data_dir=FIXTURES)


# ---- bad input: one clear ITTError each ----
def test_unknown_task():
    with pytest.raises(ITTError, match="unknown task 'xnil'. Did you mean 'xnli'"): load_split('xnil', 'validation')


def test_language_not_in_task(data_dir):
    with pytest.raises(ITTError, match="'qu' is not in xnli; its languages are ar bg de el en es fr hi ru sw th tr ur vi zh"):
        load_split('xnli', 'validation', 'qu', data_dir=data_dir)


def test_split_missing(data_dir):
    with pytest.raises(ITTError, match="xquad has no 'train' split; it has validation"): load_split('xquad', 'train', 'de', data_dir=data_dir)
    with pytest.raises(ITTError, match="unknown split 'dev'"): load_split('xnli', 'dev', 'de', data_dir=data_dir)


def test_data_dir_without_the_files(tmp_path):
    "A task forced to local files names the files; left to choose, a data folder without them reads the hub (offline here); a task without a hub source names its files."
    local = data_source(tmp_path, {'xnli': 'local', 'mnli': 'local'})
    with pytest.raises(ITTError, match=r"no xnli validation files for 'de' in the data dir: looked for xnli/dev-de.tsv"):
        load_split('xnli', 'validation', 'de', data_dir=local)
    with pytest.raises(ITTError, match=r"looked for mnli/multinli_1.0_train.jsonl, mnli/train.tsv"):
        load_split('mnli', 'train', data_dir=local)
    with pytest.raises(ITTError, match=r"^cannot load facebook/xnli/de \(validation\) from the Hugging Face hub: the hub is offline"):
        load_split('xnli', 'validation', 'de', data_dir=tmp_path)
    with pytest.raises(ITTError, match=r"no cosmosqa validation files for 'en' in the data dir: looked for cosmos_qa/valid.csv"):
        load_split('cosmosqa', 'validation', data_dir=tmp_path)
    with pytest.raises(ITTError, match='does not exist'): load_split('xnli', 'validation', 'de', data_dir=tmp_path/'nope')


def _write(root, rel, text):
    p = root/rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text, encoding='utf-8')
    return p


@pytest.mark.parametrize('task,rel,text,msg', [
    ('xnli', 'xnli/dev-de.tsv', 'a\tb\tneutral\nonly\ttwo\n', r'xnli/dev-de.tsv:2: expected 3 tab-separated fields'),
    ('udpos', 'ud/UD_German-GSD/de_gsd-ud-dev.conllu', '# sent_id = 1\n1\tHaus\tHaus\tNOUN\n', r'de_gsd-ud-dev.conllu:2: expected 10 tab-separated CoNLL-U columns, found 4'),
    ('panx', 'panx/de-dev', 'de:Berlin\tB-LOC\nBerlin B-LOC\n', r"panx/de-dev:2: expected 'lang:token<TAB>tag'"),
    ('xquad', 'xquad/xquad.de.json', '{"data": [\n{"paragraphs": [}\n', r'xquad/xquad.de.json:2: invalid JSON'),
    ('rte', 'glue_rte/dev.tsv', 'sentence1\tsentence2\tlabel\tidx\na\tb\n', r'glue_rte/dev.tsv:2: expected 4 tab-separated fields'),
    ('ccg', 'ccg/AUTO/00/wsj_0001.auto', 'ID=wsj_0001.1 PARSER=GOLD NUMPARSE=1\n(<T S 0 2> broken)\n', r'wsj_0001.auto:2: expected an .ID=\.\.\.. line'),
])
def test_malformed_line_names_file_and_line(tmp_path, task, rel, text, msg):
    lang = {'udpos': 'de', 'panx': 'de', 'xquad': 'de', 'xnli': 'de'}.get(task, 'en')
    _write(tmp_path, rel, text)
    with pytest.raises(ITTError, match=msg): read_local(task, 'validation', lang, tmp_path)


def test_malformed_json_line(tmp_path):
    _write(tmp_path, 'xcopa/data/sw/val.sw.jsonl', '{"premise": "p", "choice1": "a", "choice2": "b", "question": "cause", "label": 0, "idx": 0}\n{"premise": \n')
    with pytest.raises(ITTError, match=r'xcopa/data/sw/val.sw.jsonl:2: not a JSON object'): load_split('xcopa', 'validation', 'sw', data_dir=tmp_path)
    _write(tmp_path, 'xcopa/data/sw/val.sw.jsonl', '{"premise": "p", "choice1": "a", "question": "cause", "label": 0, "idx": 0}\n')
    with pytest.raises(ITTError, match=r"val.sw.jsonl:1: missing field 'choice2'"): load_split('xcopa', 'validation', 'sw', data_dir=tmp_path)


@pytest.mark.parametrize('task,lang,rel,text,msg', [
    ('xnli', 'de', 'xnli/dev-de.tsv', 'a\tb\tneutral\na\tb\tmaybe\n', r"xnli/dev-de.tsv:2: label 'maybe' is not in the label set of xnli \(entailment, neutral, contradiction\)"),
    ('pawsx', 'de', 'pawsx/dev-de.tsv', 'a\tb\t2\n', r"pawsx/dev-de.tsv:1: label '2' is not in the label set of pawsx"),
    ('udpos', 'de', 'ud/UD_German-GSD/de_gsd-ud-dev.conllu', '1\tHaus\tHaus\tNN\tNN\t_\t0\troot\t_\t_\n', r"de_gsd-ud-dev.conllu:1: UPOS tag 'NN' is not one of the 17"),
    ('panx', 'de', 'panx/de-dev', 'de:Berlin\tB-CITY\n', r"panx/de-dev:1: tag 'B-CITY' is not in the label set of panx"),
    ('xcopa', 'sw', 'xcopa/data/sw/val.sw.jsonl', '{"premise": "p", "choice1": "a", "choice2": "b", "question": "cause", "label": 2, "idx": 0}\n', r"val.sw.jsonl:1: label 2 is outside the 2 choices"),
    ('rte', 'en', 'glue_rte/dev.tsv', 'sentence1\tsentence2\tlabel\tidx\na\tb\tcontradiction\t0\n', r"glue_rte/dev.tsv:2: label 'contradiction' is not in the label set of rte"),
])
def test_label_outside_the_label_set(tmp_path, task, lang, rel, text, msg):
    _write(tmp_path, rel, text)
    with pytest.raises(ITTError, match=msg): load_split(task, 'validation', lang, data_dir=tmp_path)


@pytest.mark.parametrize('task,lang,rel', [('xnli', 'de', 'xnli/dev-de.tsv'), ('udpos', 'de', 'ud/UD_German-GSD/de_gsd-ud-dev.conllu'),
                                           ('xquad', 'de', 'xquad/xquad.de.json'), ('xcopa', 'sw', 'xcopa/data/sw/val.sw.jsonl'),
                                           ('panx', 'de', 'panx/de-dev'), ('cosmosqa', 'en', 'cosmos_qa/valid.csv')])
def test_empty_file(tmp_path, task, lang, rel):
    _write(tmp_path, rel, '\n')
    with pytest.raises(ITTError, match=r'the file is empty'): load_split(task, 'validation', lang, data_dir=tmp_path)


def test_misaligned_tatoeba(tmp_path):
    _write(tmp_path, 'tatoeba/tatoeba.deu-eng.deu', 'a\nb\n')
    _write(tmp_path, 'tatoeba/tatoeba.deu-eng.eng', 'a\n')
    with pytest.raises(ITTError, match='2 lines but tatoeba/tatoeba.deu-eng.eng has 1'): load_split('tatoeba', 'test', 'de', data_dir=tmp_path)


def test_hub_unreachable_offline(monkeypatch):
    monkeypatch.setenv('HF_DATASETS_OFFLINE', '1')
    with pytest.raises(ITTError, match=r'^cannot load facebook/xnli/de \(validation\) from the Hugging Face hub: the hub is offline.*use --data-dir'):
        load_split('xnli', 'validation', 'de')
    with pytest.raises(ITTError, match='no hub source'): load_split('ccg', 'train')


def test_cli_bad_data_dir(capsys):
    assert main(['tasks', '--data-dir', '/no/such/dir']) == 2
    assert 'does not exist' in capsys.readouterr().err


# ---- hub schemas -> canonical columns (the mapping, without the network) ----
def test_from_hub_mappings():
    pos = Dataset.from_dict({'tokens': [['Ein', 'Haus']], 'pos_tags': [[5, 7]]},
                            features=Features(tokens=Sequence(Value('string')), pos_tags=Sequence(ClassLabel(names=list(TASKS['udpos'].labels)))))
    assert from_hub('udpos', pos, 'de') == [dict(id='0', tokens=['Ein', 'Haus'], tags=['DET', 'NOUN'])]
    ner = Dataset.from_dict({'tokens': [['Anna']], 'ner_tags': [[1]], 'langs': [['de']]},
                            features=Features(tokens=Sequence(Value('string')), ner_tags=Sequence(ClassLabel(names=list(TASKS['panx'].labels))), langs=Sequence(Value('string'))))
    assert from_hub('panx', ner, 'de')[0]['tags'] == ['B-PER']
    assert from_hub('xnli', Dataset.from_dict({'premise': ['p', 'q'], 'hypothesis': ['h', 'i'], 'label': [2, 0]})) == \
        [dict(id='0', text_a='p', text_b='h', label=2), dict(id='1', text_a='q', text_b='i', label=0)]
    assert from_hub('snli', Dataset.from_dict({'premise': ['p'], 'hypothesis': ['h'], 'label': [-1]})) == []
    assert from_hub('pawsx', Dataset.from_dict({'id': [7], 'sentence1': ['a'], 'sentence2': ['b'], 'label': [1]}))[0] == dict(id='7', text_a='a', text_b='b', label=1)
    assert from_hub('sst2', Dataset.from_dict({'sentence': ['good'], 'label': [1], 'idx': [3]}))[0] == dict(id='3', text_a='good', text_b='', label=1)
    assert from_hub('siqa', Dataset.from_dict({'context': ['c'], 'question': ['q'], 'answerA': ['a'], 'answerB': ['b'], 'answerC': ['x'], 'label': ['3']}))[0]['label'] == 2
    cs = Dataset.from_list([{'id': 'q1', 'question': 'q', 'question_concept': 'c', 'choices': {'label': list('ABCDE'), 'text': list('vwxyz')}, 'answerKey': 'D'}])
    assert from_hub('commonsenseqa', cs)[0]['label'] == 3
    hs = Dataset.from_list([{'ind': 4, 'activity_label': 'a', 'ctx_a': 'c.', 'ctx_b': 'she', 'ctx': 'c. she', 'endings': ['1', '2', '3', '4'], 'label': '2'}])
    assert from_hub('hellaswag', hs)[0] == dict(id='4', context='c.', question='she', choices=['1', '2', '3', '4'], label=2)
    cp = Dataset.from_list([{'premise': 'p', 'choice1': 'a', 'choice2': 'b', 'question': 'effect', 'idx': 9, 'label': 1}])
    assert from_hub('xcopa', cp, 'sw')[0] == dict(id='9', context='p', question='effect', choices=['a', 'b'], label=1)
    qa = Dataset.from_list([{'id': 'english-1', 'title': '', 'context': 'ab', 'question': 'q', 'answers': {'text': ['b'], 'answer_start': [1]}},
                            {'id': 'swahili-2', 'title': '', 'context': 'cd', 'question': 'r', 'answers': {'text': ['c'], 'answer_start': [0]}}])
    assert [r['id'] for r in from_hub('tydiqa', qa, 'sw')] == ['swahili-2']
    assert from_hub('xquad', qa, 'en')[0]['answers'] == {'text': ['b'], 'answer_start': [1]}
    assert from_hub('tatoeba', Dataset.from_dict({'sentence1': ['Habari'], 'sentence2': ['Hello']}), 'sw')[0] == dict(id='0', source='Habari', target='Hello')
    assert from_hub('bucc2018', Dataset.from_dict({'source_sentence': ['Haus'], 'target_sentence': ['house'], 'source_lang': ['de'], 'target_lang': ['en']}), 'de')[0]['target'] == 'house'


# ---- itt-xling tasks --data-dir ----
def test_cli_data_dir_reports_the_readme_counts(data_dir, capsys):
    assert main(['tasks', '--data-dir', str(data_dir)]) == 0
    rows = {tuple(l.split()[:3]): l.split()[3] for l in capsys.readouterr().out.splitlines()[2:]}
    for lang in ('ar', 'de', 'en', 'sw', 'th', 'zh'): assert rows['xnli', lang, 'validation'] == '2490'
    for lang in ('de', 'en', 'es', 'fr', 'ja', 'ko', 'zh'): assert rows['pawsx', lang, 'validation'] == '2000'
    for lang in TASKS['xcopa'].langs: assert rows['xcopa', lang, 'test'] == '500'
    for lang in ('en', 'de', 'ar', 'th', 'zh', 'ru'): assert rows['xquad', lang, 'validation'] == '1190'
    assert rows['tatoeba', 'sw', 'test'] == '390' and rows['udpos', 'en', 'train'] == '12544'
    assert rows['sst2', 'en', 'train'] == '67349' and rows['cosmosqa', 'en', 'validation'] == '2985'
    assert not any(v.startswith('error') for v in rows.values())
    assert rows['hellaswag', '-', '-'] == '0'


def test_cli_data_dir_one_task(data_dir, capsys):
    assert cli_tasks(['udpos', '--data-dir', str(data_dir)]) == 0
    out = capsys.readouterr().out
    assert out.startswith('udpos: ') and 'ud/UD_English-EWT/en_ewt-ud-train.conllu' in out
    assert not any(l.startswith('xnli') for l in out.splitlines())


def test_hub_load_errors_are_named(tmp_path):
    "Real `load_dataset` failures (a loading script, a split or config the source lacks, offline) and a missing/gated id: one line each, saying which."
    import datasets, pandas as pd
    from datasets.exceptions import DatasetNotFoundError
    from itt_xling.load import hub_load_error
    def raised(*args, **kw):
        try: datasets.load_dataset(*args, **kw)
        except Exception as e: return e
        raise AssertionError(f'load_dataset{args} did not fail')
    (tmp_path/'script').mkdir(); (tmp_path/'script'/'script.py').write_text('import datasets\n')
    (tmp_path/'pq').mkdir(); pd.DataFrame({'a': [1, 2]}).to_parquet(tmp_path/'pq'/'train-00000.parquet')
    for e, pattern in [(raised(str(tmp_path/'script'), split='train'), r'^src: the source is a loading script'),
                       (raised(str(tmp_path/'pq'), split='validation'), r"^src: the source has no such split \(Should be one of \['train'\]\)"),
                       (raised(str(tmp_path/'pq'), 'xx', split='train'), r"^src: the source has no such config \(BuilderConfig 'xx' not found"),
                       (raised('no-such-user/no-such-dataset', split='train'), r'^cannot load src from the Hugging Face hub: the hub is offline'),
                       (DatasetNotFoundError("Dataset 'a/b' doesn't exist on the Hub or cannot be accessed."), r'^src: not found on the Hugging Face hub, or gated')]:
        err = hub_load_error('src', e)
        assert err is not None and re.search(pattern, str(err)) and '\n' not in str(err), (type(e), str(err))
    assert hub_load_error('src', KeyError('x')) is None


def test_hub_sources_that_load_today():
    "Sources with data files (datasets 4+ refuses loading scripts), with a load_dataset keyword slot; cosmos_qa has none on the hub."
    from itt_xling.tasks import get_task
    assert get_task('siqa').hub_source() == ('lighteval/siqa', None, {})
    assert get_task('mlqa').hub_source('de') == ('google/xtreme', 'MLQA.de.de', {})
    assert get_task('hellaswag').hub_source() == ('Rowan/hellaswag', None, {'revision': 'refs/convert/parquet'})
    assert get_task('cosmosqa').hub_source() is None


def test_hub_qa_offsets_are_checked():
    "A hub QA row whose answer is not at its answer_start is refused, naming the row; SQuAD v2.0's unanswerable questions pass."
    from datasets import Dataset
    from itt_xling.core import ITTError
    from itt_xling.load import from_hub
    row = lambda s, text=('Paris',): dict(id='q1', title='t', context='The tower is in Paris.', question='Where?', answers={'text': list(text), 'answer_start': [s] * len(text)})
    assert from_hub('xquad', Dataset.from_list([row(16)]))[0]['answers'] == {'text': ['Paris'], 'answer_start': [16]}
    with pytest.raises(ITTError, match=r"row 0 \(id q1\): answer 'Paris' is not at answer_start 15 of its context"):
        from_hub('xquad', Dataset.from_list([row(15)]))
    assert from_hub('squad_v2', Dataset.from_list([row(0, text=())]))[0]['answers'] == {'text': [], 'answer_start': []}
    with pytest.raises(ITTError, match='a question without an answer'): from_hub('squad_v1', Dataset.from_list([row(0, text=())]))
