"""Leaderboard export: the official scorer's rules, re-implemented here from its description, agree with our numbers."""
import json, re, string, sys, unicodedata
from collections import Counter
from pathlib import Path
import pandas as pd
import pytest
from itt_xling.core import ITTError
from itt_xling.metrics import compute_metrics, aggregate
from itt_xling.export import export_run, cli_export, render, read_predictions, EXT
from itt_xling.cli import main as cli_main
from itt_xling.load import load_split
from itt_xling.rundir import write_predictions, write_metrics, merge_results
import itt_xling

FIXTURES = Path(itt_xling.__file__).parent/"fixtures"
pytestmark = pytest.mark.filterwarnings("ignore:.*seems not to be NE tag")

# ---- the scorer's rules (google-research/xtreme evaluate.py and third_party scripts), written independently ----

def read_label(f): return [l.strip() for l in open(f, encoding='utf-8')]

def read_tag(f):
    out, ex = [], []
    for line in open(f, encoding='utf-8'):
        line = line.strip()
        if line: ex.append(line)
        else: out.append(ex); ex = []
    if ex: out.append(ex)
    return out

def read_json(f):
    d = json.load(open(f, encoding='utf-8'))
    return d['data'] if isinstance(d, dict) and 'data' in d else d

PUNCT = {chr(i) for i in range(sys.maxunicode) if unicodedata.category(chr(i)).startswith('P')} | set(string.punctuation)
ARTICLES = {'en': r'\b(a|an|the)\b', 'es': r'\b(un|una|unos|unas|el|la|los|las)\b', 'vi': r'\b(của|là|cái|chiếc|những)\b',
            'de': r'\b(ein|eine|einen|einem|eines|einer|der|die|das|den|dem|des)\b', 'ar': 'ال'}

def norm_squad(s):
    s = ''.join(c for c in s.lower() if c not in set(string.punctuation))
    return ' '.join(re.sub(r'\b(a|an|the)\b', ' ', s).split())

def norm_mlqa(s, lang):
    s = ''.join(c for c in s.lower() if c not in PUNCT)
    if lang in ARTICLES: s = re.sub(ARTICLES[lang], ' ', s)
    if lang == 'zh':
        toks, run = [], ''
        for c in s:
            if re.search(r'[\u4e00-\u9fa5]', c) or c in PUNCT: toks += run.split() + [c]; run = ''
            else: run += c
        toks += run.split()
    else: toks = s.split()
    return ' '.join(t for t in toks if t.strip())

def f1_tokens(p, g):
    same = sum((Counter(p) & Counter(g)).values())
    if not same: return 0
    pr, rc = same / len(p), same / len(g)
    return 2 * pr * rc / (pr + rc)

def qa_eval(gold_data, preds, norm):
    em = f1 = total = 0
    for art in gold_data:
        for par in art['paragraphs']:
            for qa in par['qas']:
                total += 1
                if qa['id'] not in preds: continue
                gts = [a['text'] for a in qa['answers']]
                p = norm(preds[qa['id']])
                em += max(p == norm(g) for g in gts)
                f1 += max(f1_tokens(p.split(), norm(g).split()) for g in gts)
    return {'exact_match': 100 * em / total, 'f1': 100 * f1 / total}

def official_score(task, pred_file, gold_file, lang):
    if task in ('pawsx', 'xnli', 'tatoeba'):
        p, g = read_label(pred_file), read_label(gold_file)
        assert len(p) == len(g)
        return {'accuracy': 100 * sum(a == b for a, b in zip(p, g)) / len(p)}
    if task in ('panx', 'udpos'):
        from seqeval.metrics import f1_score, precision_score, recall_score
        p, g = read_tag(pred_file), read_tag(gold_file)
        assert len(p) == len(g)
        return {'f1': 100 * f1_score(g, p), 'precision': 100 * precision_score(g, p), 'recall': 100 * recall_score(g, p)}
    if task == 'bucc2018':
        p, g = {tuple(l.split('\t')) for l in read_label(pred_file)}, {tuple(l.split('\t')) for l in read_label(gold_file)}
        n = len(p & g)
        if not n: return {'f1': 0.0, 'precision': 0.0, 'recall': 0.0}
        pr, rc = n / len(p), n / len(g)
        return {'f1': 100 * 2 * pr * rc / (pr + rc), 'precision': 100 * pr, 'recall': 100 * rc}
    if task in ('xquad', 'tydiqa'): return qa_eval(read_json(gold_file), read_json(pred_file), norm_squad)
    if task == 'mlqa': return qa_eval(read_json(gold_file), read_json(pred_file), lambda s: norm_mlqa(s, lang))
    if task == 'xcopa':
        p = [json.loads(l)['label'] for l in open(pred_file)]; g = [json.loads(l)['label'] for l in open(gold_file)]
        return {'accuracy': 100 * sum(a == b for a, b in zip(p, g)) / len(g)}
    if task in ('mewslix', 'lareqa'):
        p, g = read_json(pred_file), read_json(gold_file)
        aps = []
        for qid, rel in g.items():
            ranked, hits, score = p.get(qid, [])[:20], 0, 0.0
            for i, c in enumerate(ranked):
                if c in rel and c not in ranked[:i]: hits += 1; score += hits / (i + 1)
            aps.append(score / min(len(rel), 20))
        return {'map@20': 100 * sum(aps) / len(aps)}
    raise KeyError(task)

GROUPS = {'xtreme': {'classification': ['pawsx', 'xnli'], 'tagging': ['udpos', 'panx'], 'qa': ['xquad', 'mlqa', 'tydiqa'],
                      'retrieval': ['bucc2018', 'tatoeba']},
          'xtreme-r': {'classification': ['xnli', 'xcopa'], 'tagging': ['udpos', 'panx'], 'qa': ['xquad', 'mlqa', 'tydiqa'],
                       'retrieval': ['tatoeba', 'mewslix'], 'multi_choice': ['xcopa']}}
TASKS_OF = {'xtreme': ['pawsx', 'xnli', 'panx', 'udpos', 'bucc2018', 'tatoeba', 'xquad', 'mlqa', 'tydiqa'],
            'xtreme-r': ['xnli', 'xcopa', 'udpos', 'panx', 'xquad', 'mlqa', 'tydiqa', 'tatoeba', 'mewslix', 'lareqa']}
SUFFIX = {'xquad': 'json', 'mlqa': 'json', 'tydiqa': 'json', 'mewslix': 'json', 'lareqa': 'json', 'xcopa': 'jsonl'}

def official_evaluate(pred_dir, gold_dir, bench):
    """The scorer's evaluate(): per task folder present on both sides, the mean of each metric over its languages
    (here: the languages exported, where the scorer reads every language of its list), avg_metric = QA (EM + F1) / 2,
    else F1, else accuracy (else mAP@20 for Mewsli-X); groups when all their tasks are present; all_task for XTREME only.
    XTREME-R lists LAReQA with no languages, so a lareqa folder gets no avg_metric and the report fails on it."""
    langs_of = {t: sorted(f.name[5:].rsplit('.', 1)[0] for f in (Path(gold_dir)/t).glob('test-*')) for t in TASKS_OF[bench]}
    if bench == 'xtreme-r': langs_of['lareqa'] = []
    detailed = {}
    for task, langs in langs_of.items():
        if not ((Path(pred_dir)/task).is_dir() and (Path(gold_dir)/task).is_dir()): continue
        per = {}
        for lg in langs:
            f = f'{task}/test-{lg}.{SUFFIX.get(task, "tsv")}'
            for m, v in official_score(task, Path(pred_dir)/f, Path(gold_dir)/f, lg).items(): per.setdefault(m, []).append(v)
        sc = {f'avg_{m}': sum(v) / len(v) for m, v in per.items()}
        if task in GROUPS[bench]['qa']: sc['avg_metric'] = (sc['avg_exact_match'] + sc['avg_f1']) / 2
        else:
            for m in ('avg_f1', 'avg_accuracy', 'avg_map@20'):
                if m in sc: sc['avg_metric'] = sc[m]; break
        detailed[task] = sc
    for task, sc in detailed.items(): sc['avg_metric']          # the report prints every task's avg_metric
    out = {g: sum(detailed[t]['avg_metric'] for t in ts) / len(ts) for g, ts in GROUPS[bench].items() if set(ts) <= set(detailed)}
    if bench == 'xtreme' and set(TASKS_OF[bench]) == set(detailed): out['all_task'] = sum(d['avg_metric'] for d in detailed.values()) / len(detailed)
    return out, detailed

# ---- a fake run with real labels where the data folder has them ----

def _recs(ids, preds, golds): return [dict(id=str(i), pred=p, gold=g) for i, p, g in zip(ids, preds, golds)]

def _predictions(data_dir):
    out = {}
    ds = load_split('pawsx', 'validation', 'de', data_dir=data_dir).select(range(300))
    out[('pawsx', 'de')] = _recs(ds['id'], [(i * 7) % 2 for i in range(len(ds))], ds['label'])
    ds = load_split('xnli', 'validation', 'de', data_dir=data_dir).select(range(300))
    out[('xnli', 'de')] = _recs(ds['id'], [(l + (i % 4 == 0)) % 3 for i, l in enumerate(ds['label'])], ds['label'])
    ds = load_split('udpos', 'test', 'de', data_dir=data_dir).select(range(120))
    out[('udpos', 'de')] = _recs(ds['id'], [[('NOUN' if (i + j) % 6 == 0 else t) for j, t in enumerate(ts)] for i, ts in enumerate(ds['tags'])], ds['tags'])
    ds = load_split('panx', 'test', 'de', data_dir=FIXTURES)
    out[('panx', 'de')] = _recs(ds['id'], [[('O' if j == 0 else t) for j, t in enumerate(ts)] for ts in ds['tags']], ds['tags'])
    for task, lang in [('xquad', 'de'), ('xquad', 'zh'), ('mlqa', 'de'), ('mlqa', 'en')]:
        ds = load_split(task, 'validation', lang, data_dir=data_dir).select(range(150))
        gold = [a['text'] for a in ds['answers']]
        pred = [None if i % 17 == 0 else (g[0][: max(1, len(g[0]) * 2 // 3)] if i % 3 else 'Der ' + g[-1]) for i, g in enumerate(gold)]
        out[(task, lang)] = _recs(ds['id'], pred, ds['answers'] if task == 'xquad' else gold)   # SQuAD answers dicts, as the trainer writes them, or plain lists
    ds = load_split('tatoeba', 'test', 'de', data_dir=data_dir).select(range(100))
    out[('tatoeba', 'de')] = _recs(ds['id'], [i if i % 5 else (i + 1) % 100 for i in range(100)], list(range(100)))
    out[('bucc2018', 'de')] = [dict(id=f'de-{i}', pred=(f'en-{i}' if i % 4 else f'en-{i + 1}') if i % 7 else None, gold=f'en-{i}' if i < 40 else None) for i in range(60)]
    ds = load_split('xcopa', 'test', 'et', data_dir=data_dir)
    out[('xcopa', 'et')] = _recs(ds['id'], [(l + (i % 3 == 0)) % 2 for i, l in enumerate(ds['label'])], ds['label'])
    out[('mewslix', 'de')] = [dict(id=f'm{i}', pred=[f'Q{(i + j) % 30}' for j in range(25)], gold=[f'Q{(2 * i) % 30}']) for i in range(30)]
    out[('lareqa', 'ar')] = [dict(id=f'q{i}', pred=[f'ar:{(i + j) % 40}' for j in range(20)], gold=[f'ar:{i}', f'en:{i}', f'ar:{(i + 3) % 40}']) for i in range(40)]
    return out


@pytest.fixture(scope='module')
def run(tmp_path_factory, data_dir):
    root = tmp_path_factory.mktemp('run')
    preds, rows = _predictions(data_dir), []
    for (task, lang), recs in preds.items():
        split = 'test' if task in ('udpos', 'panx', 'tatoeba', 'bucc2018', 'xcopa', 'mewslix') else 'validation'
        write_predictions(root/'xtreme-base', task, lang, split, recs)
        if task == 'bucc2018':
            p = [(r['id'], r['pred']) for r in recs if r['pred']]; g = [(r['id'], r['gold']) for r in recs if r['gold']]
            m = compute_metrics(task, p, g, lang=lang)
        else: m = compute_metrics(task, [r['pred'] for r in recs], [r['gold'] for r in recs], lang=lang)
        rows += [dict(run='t', stage='xtreme-base', model='m', seed=0, intermediate='none', target=task, lora='none',
                      lang=lang, split=split, metric=k, value=v, n=len(recs)) for k, v in m.items()]
    write_metrics(root/'xtreme-base', dict(stage='xtreme-base', rows=rows))    # the layout every evaluation writes
    merge_results(root)
    return root


@pytest.mark.parametrize('bench', ['xtreme', 'xtreme-r'])
def test_official_rules_on_export_reproduce_our_numbers(run, tmp_path, bench, capsys):
    pred, gold = tmp_path/'pred', tmp_path/'gold'
    assert cli_main(['export', '--run', str(run), '--out', str(pred), '--gold', str(gold), '--benchmark', bench]) == 0
    printed = capsys.readouterr().out
    ours = pd.read_csv(run/'results.csv')
    man = json.loads((pred/'manifest.json').read_text())
    assert man['benchmark'] == bench and man['files']
    checked, per_task = 0, {}
    for f in man['files']:
        task, lang = f['task'], f['lang']
        assert f['file'] == f'{task}/test-{lang}.{EXT[task]}' and (pred/f['file']).is_file() and (gold/f['file']).is_file()
        assert f['file'] in printed
        got = official_score(task, pred/f['file'], gold/f['file'], lang)
        mine = ours[(ours.target == task) & (ours.lang == lang)]
        assert set(mine.split) == {f['split']}
        for metric, v in got.items():
            assert abs(v - mine[mine.metric == metric].value.item()) < 1e-6, (task, lang, metric)
            checked += 1
        per_task.setdefault(task, []).append(got)
    expected = {'xtreme': {'pawsx', 'xnli', 'udpos', 'panx', 'xquad', 'mlqa', 'tatoeba', 'bucc2018'},
                'xtreme-r': {'xnli', 'udpos', 'panx', 'xquad', 'mlqa', 'tatoeba', 'xcopa', 'mewslix'}}[bench]
    assert set(per_task) == expected and checked >= 2 * len(expected)
    # the scorer's task average (QA: mean of avg EM and avg F1) equals our aggregate over the same languages
    agg = aggregate(ours, bench).query("level == 'task'").set_index('name').value
    for task, scores in per_task.items():
        avg = {m: sum(s[m] for s in scores) / len(scores) for m in scores[0]}
        main = (avg['exact_match'] + avg['f1']) / 2 if 'exact_match' in avg else avg.get('f1', avg.get('accuracy', avg.get('map@20')))
        assert abs(main - agg[task]) < 1e-6, task
    skipped = {s['task'] for s in man['skipped']}
    assert skipped == ({'xcopa', 'mewslix', 'lareqa'} if bench == 'xtreme' else {'pawsx', 'bucc2018', 'lareqa'})
    if bench == 'xtreme-r':
        why = next(s['why'] for s in man['skipped'] if s['task'] == 'lareqa')
        assert "'lareqa': []" in why and not (pred/'lareqa').exists()
    # the scorer's groups over the exported folders equal our aggregate's groups
    groups, detailed = official_evaluate(pred, gold, bench)
    ours_g = aggregate(ours, bench, by=[]).query("level != 'task'").set_index('name').value.to_dict()   # one system (the fake run mixes splits)
    assert set(groups) == set(ours_g) and groups, (groups, ours_g)
    for g, v in groups.items(): assert abs(v - ours_g[g]) < 1e-9, g
    for task, d in detailed.items(): assert abs(d['avg_metric'] - agg[task]) < 1e-9, task


def test_a_lareqa_folder_breaks_the_xtreme_r_scorer(run, tmp_path):
    "Why the XTREME-R export leaves LAReQA out: the scorer lists no LAReQA languages, so its folder has no avg_metric."
    pred, gold = tmp_path/'pred', tmp_path/'gold'
    export_run(run, pred, gold, benchmark='xtreme-r')
    recs = read_predictions(run/'xtreme-base'/'predictions'/'lareqa.ar.validation.jsonl', 'lareqa')
    for d, which in ((pred, 'pred'), (gold, 'gold')):
        (d/'lareqa').mkdir(); (d/'lareqa'/'test-ar.json').write_text(render('lareqa', recs, which))
    with pytest.raises(KeyError, match='avg_metric'): official_evaluate(pred, gold, 'xtreme-r')


def test_manifest_records_real_split_and_gold_layout(run, tmp_path):
    m = export_run(run, tmp_path/'p', tmp_path/'g', benchmark='xtreme')
    by = {(f['task'], f['lang']): f['split'] for f in m['files']}
    assert by[('xquad', 'de')] == 'validation' and by[('udpos', 'de')] == 'test'
    g = json.loads((tmp_path/'g/xquad/test-de.json').read_text())
    assert g['version'] == '1.1' and len(g['data'][0]['paragraphs'][0]['qas']) == 150
    p = json.loads((tmp_path/'p/xquad/test-de.json').read_text())
    assert len(p) == 150 - len(range(0, 150, 17))        # unanswered questions are left out, as the scorer expects
    labels = (tmp_path/'g/xnli/test-de.tsv').read_text().split()
    assert set(labels) <= {'entailment', 'neutral', 'contradiction'}
    assert m['missing_langs']['xnli'] and 'de' not in m['missing_langs']['xnli']
    assert json.loads((tmp_path/'g/manifest.json').read_text())['side'] == 'gold'


def test_stage_choice_and_errors(tmp_path):
    for st in ('a', 'b'):
        f = tmp_path/'run'/st/'predictions'/'xnli.de.test.jsonl'
        f.parent.mkdir(parents=True)
        f.write_text(json.dumps(dict(id='0', pred=0, gold=0)) + '\n')
    with pytest.raises(ITTError, match='several stages'): export_run(tmp_path/'run', tmp_path/'out')
    m = export_run(tmp_path/'run', tmp_path/'out', stage='b')
    assert m['files'][0]['stage'] == 'b' and m['files'][0]['ours'] == {'accuracy': 100.0}
    m = export_run(tmp_path/'run'/'a', tmp_path/'out2')           # a stage folder works too
    assert m['files'][0]['stage'] == 'a'
    with pytest.raises(ITTError, match="--stage 'c'"): export_run(tmp_path/'run', tmp_path/'out', stage='c')
    with pytest.raises(ITTError, match='not a folder'): export_run(tmp_path/'nope', tmp_path/'out')
    (tmp_path/'run'/'a'/'predictions'/'xnli.de.test.jsonl').write_text('{"id": "0", "pred": 0, "gold": 0}\nnot json\n')
    with pytest.raises(ITTError, match=r'xnli.de.test.jsonl:2: not JSON'): read_predictions(tmp_path/'run'/'a'/'predictions'/'xnli.de.test.jsonl')
    assert cli_main(['export', '--run', str(tmp_path/'nope'), '--out', str(tmp_path/'o')]) == 2


def test_failed_export_leaves_previous_folder_untouched(run, tmp_path, monkeypatch):
    out = tmp_path/'pred'
    export_run(run, out, benchmark='xtreme')
    before = sorted((p.relative_to(out), p.read_bytes()) for p in out.rglob('*') if p.is_file())
    import itt_xling.export as ex
    calls = []
    def boom(task, records, which='pred'):
        calls.append(task)
        if len(calls) > 3: raise RuntimeError('disk full')
        return render(task, records, which)
    monkeypatch.setattr(ex, 'render', boom)
    with pytest.raises(RuntimeError, match='disk full'): export_run(run, out, benchmark='xtreme')
    after = sorted((p.relative_to(out), p.read_bytes()) for p in out.rglob('*') if p.is_file())
    assert after == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith('.pred')]
