"""Featurization on real rows: truncation, label alignment, QA windows, choice pairs, caching, padding, and the way back."""
import numpy as np, pytest, datasets
from itt_xling.core import ITTError
from itt_xling.tasks import get_task
from itt_xling.load import load_split
from itt_xling import features as F
from itt_xling.features import featurize, data_collator, postprocess, length_sampler, choice_pairs, tokenizer_fingerprint
from itt_xling.models import load_tokenizer

datasets.disable_progress_bars()

@pytest.fixture(scope='module')
def tok(): return load_tokenizer('tiny-xlmr')

def rows(data_dir, task, lang, n, split='validation'):
    return load_split(task, split, lang, data_dir=data_dir).select(range(n))

def one_hot(labels, n):
    a = np.zeros((len(labels), n))
    for j, l in enumerate(labels):
        if l >= 0: a[j, l] = 1
    return a

def test_classification_pairs_truncate_longest_first(data_dir, tok):
    ds = rows(data_dir, 'xnli', 'de', 16)
    f = featurize('xnli', ds, tok, cache=False)
    assert f.column_names == ['input_ids', 'attention_mask', 'labels', 'length']
    assert f['labels'] == ds['label']
    assert f['length'] == [len(x) for x in f['input_ids']]
    # a pair: <s> A </s></s> B </s>
    assert f[0]['input_ids'].count(tok.sep_token_id) == 3
    short = featurize('xnli', ds, tok, max_length=20, cache=False)
    assert max(short['length']) == 20
    # longest_first keeps both sentences
    assert all(ids.count(tok.sep_token_id) == 3 for ids in short['input_ids'])
    assert postprocess('xnli', ds, f, np.eye(3)[ds['label']]) == ds['label']

def test_single_sentence_and_default_length(data_dir, tok):
    ds = rows(data_dir, 'sst2', 'en', 8)
    f = featurize('sst2', ds, tok, cache=False)
    assert all(ids.count(tok.sep_token_id) == 1 for ids in f['input_ids'])
    assert F.MAX_LENGTH['classification'] == 256 and F.MAX_LENGTH['span_qa'] == 384

def test_cache_second_call_does_not_tokenize(data_dir, tok, tmp_path, monkeypatch):
    monkeypatch.setenv('ITT_XLING_CACHE', str(tmp_path))
    ds = rows(data_dir, 'xnli', 'en', 8)
    f1 = featurize('xnli', ds, tok)
    assert f1.cache_files and str(tmp_path) in f1.cache_files[0]['filename']
    def boom(*a, **k): raise AssertionError('tokenized again')
    monkeypatch.setitem(F.FEATURIZERS, 'classification', boom)
    f2 = featurize('xnli', rows(data_dir, 'xnli', 'en', 8), tok)   # a fresh load of the same rows
    assert f2.cache_files == f1.cache_files and f2['input_ids'] == f1['input_ids']
    with pytest.raises(AssertionError, match='tokenized again'):   # other settings: a new file
        featurize('xnli', ds, tok, max_length=32)

def test_tokenizer_fingerprint_ignores_call_state(tok):
    a = tokenizer_fingerprint(tok)
    tok('a b c', 'd', truncation='longest_first', max_length=4, padding='max_length')
    assert tokenizer_fingerprint(tok) == a

def test_tagging_first_subtoken_and_back(data_dir, tok):
    ds = rows(data_dir, 'udpos', 'en', 24)
    f = featurize('udpos', ds, tok, cache=False)
    n = len(get_task('udpos').labels)
    for ex, r in zip(ds, f):
        firsts = [l for l in r['labels'] if l != -100]
        assert [get_task('udpos').labels[l] for l in firsts] == ex['tags']      # one label per word, in order
        assert sorted(w for w in r['word_ids'] if w >= 0) == list(range(len(ex['tokens'])))
        assert r['labels'][0] == -100 and r['labels'][-1] == -100                # <s>, </s>
    assert any(sum(l == -100 for l in r['labels']) > 2 for r in f)              # some words have several sub-tokens
    assert postprocess('udpos', ds, f, [one_hot(l, n) for l in f['labels']]) == ds['tags']

def test_tagging_truncated_words_get_default_tag(data_dir, tok):
    ds = rows(data_dir, 'udpos', 'en', 8)
    f = featurize('udpos', ds, tok, max_length=6, cache=False)
    n = len(get_task('udpos').labels)
    pred = postprocess('udpos', ds, f, [one_hot(l, n) for l in f['labels']])
    for ex, r, p in zip(ds, f, pred):
        assert len(p) == len(ex['tokens'])
        kept = {w for w in r['word_ids'] if w >= 0}
        assert all(p[w] == (ex['tags'][w] if w in kept else 'X') for w in range(len(p)))
    assert F._default_tag(('O', 'B-PER')) == 'O'

def test_tagging_trainer_style_padded_logits(data_dir, tok):
    "Trainer pads logits across batches (with -100): postprocess must ignore the padding."
    ds = rows(data_dir, 'udpos', 'en', 6)
    f = featurize('udpos', ds, tok, cache=False)
    n, L = len(get_task('udpos').labels), max(f['length'])
    padded = np.full((len(f), L, n), -100.0)
    for i, l in enumerate(f['labels']): padded[i, :len(l)] = one_hot(l, n)
    assert postprocess('udpos', ds, f, padded) == ds['tags']

def test_unknown_tag_is_an_error(tok):
    ds = datasets.Dataset.from_dict(dict(id=['s1'], tokens=[['Hi']], tags=[['GREETING']]))
    with pytest.raises(ITTError, match="s1.*GREETING"): featurize('udpos', ds, tok, cache=False)

def test_span_qa_window_too_short_is_refused(data_dir, tok):
    "A QA max_length below twice the doc stride cannot hold the question and the overlap: one error naming the task and the minimum."
    ds = rows(data_dir, 'xquad', 'en', 4)
    for n, stride in ((16, 128), (255, 128), (63, 32)):
        with pytest.raises(ITTError, match=rf"xquad: max_length {n} is too short .* at least {2 * stride}"): featurize('xquad', ds, tok, max_length=n, doc_stride=stride, cache=False)
    assert len(featurize('xquad', ds, tok, max_length=64, doc_stride=32, cache=False)) >= 4

def qa_gold_logits(f, pad_to=None):
    L = lambda r: pad_to or len(r['input_ids'])
    return ([np.eye(L(r))[r['start_positions']] for r in f], [np.eye(L(r))[r['end_positions']] for r in f])

def test_span_qa_windows_and_gold_back(data_dir, tok):
    ds = rows(data_dir, 'xquad', 'en', 20)
    f = featurize('xquad', ds, tok, max_length=96, doc_stride=32, cache=False)
    assert len(f) > len(ds) and max(f['length']) <= 96
    assert set(f['example_idx']) == set(range(len(ds)))
    for r in f:   # offsets only on context tokens
        ctx = [k for k, s in enumerate(r['offset_mapping']) if s is not None]
        assert ctx and r['offset_mapping'][0] is None
        assert r['start_positions'] == 0 or r['start_positions'] in ctx
    answers = postprocess('xquad', ds, f, qa_gold_logits(f))
    gold = [a['text'][0] for a in ds['answers']]
    assert all(g in a for a, g in zip(answers, gold))
    assert np.mean([a == g for a, g in zip(answers, gold)]) >= 0.9
    # Trainer-style: one padded array per output
    L = max(f['length'])
    s, e = qa_gold_logits(f, pad_to=L)
    assert postprocess('xquad', ds, f, (np.stack(s), np.stack(e))) == answers

def test_span_qa_default_window_and_null_answers(data_dir, tok):
    ds = rows(data_dir, 'mlqa', 'de', 12)
    f = featurize('mlqa', ds, tok, cache=False)
    assert max(f['length']) <= 384
    gold = [a['text'][0] for a in ds['answers']]
    answers = postprocess('mlqa', ds, f, qa_gold_logits(f))
    assert all(g in a for a, g in zip(answers, gold))
    null = tuple([np.eye(len(r['input_ids']))[0] * 5 for r in f] for _ in range(2))
    assert set(postprocess('mlqa', ds, f, null, null_answer=True)) == {''}
    assert '' not in postprocess('mlqa', ds, f, null)                      # SQuAD 1.1: always a span
    assert F._allows_null(get_task('squad_v2')) and not F._allows_null(get_task('squad_v1'))

def test_span_qa_max_answer_length(data_dir, tok):
    ds = rows(data_dir, 'xquad', 'en', 1)
    f = featurize('xquad', ds, tok, cache=False)
    r = f[0]
    ctx = [k for k, o in enumerate(r['offset_mapping']) if o is not None]
    s, e = np.zeros(len(r['input_ids'])), np.zeros(len(r['input_ids']))
    s[ctx[0]] = 10; e[ctx[40]] = 10; e[ctx[2]] = 5          # the best-scoring span is 41 tokens long
    offs = r['offset_mapping']
    assert postprocess('xquad', ds, f, ([s], [e])) == [ds[0]['context'][offs[ctx[0]][0]:offs[ctx[2]][1]]]
    assert postprocess('xquad', ds, f, ([s], [e]), max_answer_length=50) == [ds[0]['context'][offs[ctx[0]][0]:offs[ctx[40]][1]]]

def test_choice_pairs():
    assert choice_pairs('P.', 'cause', ['a'])[0] == ('P. What was the cause?', 'a')
    assert choice_pairs('P.', 'effect', ['a'])[0] == ('P. What happened as a result?', 'a')
    assert choice_pairs('ctx', 'q?', ['a', 'b']) == [('ctx', 'q? a'), ('ctx', 'q? b')]
    assert choice_pairs('', 'q?', ['a']) == [('q?', 'a')]

@pytest.mark.parametrize('task,lang,k', [('xcopa', 'it', 2), ('copa', 'en', 2), ('siqa', 'en', 3),
                                          ('commonsenseqa', 'en', 5), ('cosmosqa', 'en', 4)])
def test_multiple_choice_rows(data_dir, tok, task, lang, k):
    ds = rows(data_dir, task, lang, 6)
    f = featurize(task, ds, tok, cache=False)
    assert all(len(x) == k for x in f['input_ids'])
    assert f['length'] == [max(len(c) for c in x) for x in f['input_ids']]
    text = tok.decode(f[0]['input_ids'][ds[0]['label']], skip_special_tokens=True)
    assert ds[0]['choices'][ds[0]['label']].split()[-1] in text
    if ds[0]['question'] in ('cause', 'effect'): assert ('cause?' in text) or ('result?' in text)
    assert postprocess(task, ds, f, np.eye(k)[ds['label']]) == ds['label']
    b = data_collator(task, tok, pad_to_multiple_of=8)([f[i] for i in range(4)])
    assert b['input_ids'].shape[:2] == (4, k) and b['input_ids'].shape[2] % 8 == 0
    assert b['labels'].tolist() == ds['label'][:4]

@pytest.mark.parametrize('task,lang', [('xnli', 'de'), ('udpos', 'en'), ('xquad', 'en')])
def test_collators_pad_dynamically_and_drop_extra_columns(data_dir, tok, task, lang):
    ds = rows(data_dir, task, lang, 8)
    f = featurize(task, ds, tok, cache=False)
    b = data_collator(task, tok)([f[i] for i in range(4)])
    assert b['input_ids'].shape[1] == max(f['length'][:4])             # the batch's longest, not max_length
    assert set(b) <= set(F.MODEL_INPUTS)
    b8 = data_collator(task, tok, pad_to_multiple_of=8)([f[i] for i in range(4)])
    assert b8['input_ids'].shape[1] % 8 == 0 and b8['input_ids'].shape[1] < max(f['length'][:4]) + 8
    if task == 'udpos': assert (b8['labels'][b8['attention_mask'] == 0] == -100).all()

def test_length_sampler_groups_by_length(data_dir, tok):
    f = featurize('xnli', rows(data_dir, 'xnli', 'en', 32), tok, cache=False)
    order = list(length_sampler(f, batch_size=8, seed=1))
    assert sorted(order) == list(range(32))
    assert f['length'][order[0]] == max(f['length'])
    assert order == list(length_sampler(f, batch_size=8, seed=1))

def test_wrong_number_of_choices(tok):
    ds = datasets.Dataset.from_dict(dict(id=['q7'], context=['c'], question=['effect'], choices=[['a', 'b', 'c']], label=[0]))
    with pytest.raises(ITTError, match="q7.*3 choices"): featurize('xcopa', ds, tok, cache=False)

def test_bad_input(data_dir, tok):
    with pytest.raises(ITTError, match='lacks column'): featurize('xnli', datasets.Dataset.from_dict({'text': ['a']}), tok)
    with pytest.raises(ITTError, match='retrieval'): featurize('tatoeba', datasets.Dataset.from_dict({'id': ['1']}), tok)
    with pytest.raises(ITTError): featurize('no_such_task', rows(data_dir, 'xnli', 'en', 2), tok)
