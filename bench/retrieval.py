"""Retrieval after encoding: Tatoeba search and BUCC mining, faiss vs numpy (`itt_xling.retrieval.knn` backends).

Tatoeba: real sentences of the local Tatoeba files, encoded once with `encode_sentences` (its time is shown apart),
then xx→en and en→xx nearest-neighbour search timed per backend.
BUCC: the local data has no BUCC 2018 files, so the mining step (`bucc_candidates`: k=4 neighbours both ways, ratio
margin, greedy pairs) runs on unit vectors of the model's width with planted translation pairs, at a pool size you
choose (BUCC's test pools hold 100k-400k sentences a side; the time grows with n × m).
"""
from __future__ import annotations
import argparse, os, sys, time
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import header, median, table, load, encoder, data_dir, MODEL_HELP


def timed(fn, reps):
    ts, out = [], None
    for _ in range(reps):
        t = time.perf_counter(); out = fn(); ts.append(time.perf_counter() - t)
    return median(ts), out


def with_backend(backend, fn):
    "Run `fn` with `knn`'s 'auto' backend forced to `backend` (bucc_candidates calls knn with the default)."
    import itt_xling.retrieval as R
    orig = R._have_faiss
    R._have_faiss = lambda: backend == 'faiss'
    try: return fn()
    finally: R._have_faiss = orig


def planted(n, m, d, seed=0, noise=0.6):
    "n source and m target unit vectors; the first min(n, m)//2 sources have a noisy translation among the targets."
    import numpy as np
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)).astype(np.float32)
    y = rng.standard_normal((m, d)).astype(np.float32)
    k = min(n, m) // 2
    perm = rng.permutation(m)[:k]
    y[perm] = x[:k] + noise * rng.standard_normal((k, d)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True); y /= np.linalg.norm(y, axis=1, keepdims=True)
    return x, y, {(str(i), str(j)) for i, j in zip(range(k), perm)}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--model', default='me5-small', help=MODEL_HELP)
    p.add_argument('--langs', default='de', help='Tatoeba languages to encode (ISO 639-1)')
    p.add_argument('--limit', type=int, default=1000, help='pairs per Tatoeba language')
    p.add_argument('--bucc', default='10000x10000,20000x20000', help='BUCC pool sizes, source x target, comma-separated')
    p.add_argument('--reps', type=int, default=2)
    p.add_argument('--quick', action='store_true', help='tiny model, 64 pairs, a 2000x2000 pool, 1 rep')
    a = p.parse_args(argv)
    if a.quick: a.model, a.langs, a.limit, a.bucc, a.reps = 'tiny-xlmr', 'de', 64, '2000x2000', 1
    import numpy as np
    import itt_xling.retrieval as R
    from itt_xling.load import load_split
    from itt_xling.models import load_tokenizer
    from transformers import AutoModel
    header('retrieval after encoding: faiss vs numpy')
    data = data_dir()
    enc = encoder(a.model)
    tok, model = load_tokenizer(enc), AutoModel.from_pretrained(enc)
    R.knn(np.eye(4, dtype=np.float32), np.eye(4, dtype=np.float32), 1, backend='faiss')  # warm-up: faiss import
    rows = []
    for lang in a.langs.split(','):
        ds = load_split('tatoeba', 'test', lang, data_dir=data)
        ds = ds.select(range(min(a.limit, len(ds))))
        t = time.perf_counter()
        src = R.encode_sentences(model, tok, ds['source']); tgt = R.encode_sentences(model, tok, ds['target'])
        t_enc = time.perf_counter() - t
        gold = np.arange(len(ds))
        row = dict(what=f'tatoeba {lang} xx->en + en->xx', size=f'{len(ds)}x{len(ds)}', dim=src.shape[1], **{'encode s': t_enc})
        preds = {}
        for be in ('faiss', 'numpy'):
            s, preds[be] = timed(lambda: (R.knn(src, tgt, 1, backend=be)[1][:, 0], R.knn(tgt, src, 1, backend=be)[1][:, 0]), a.reps)
            row[f'{be} ms'] = 1000 * s
        row['numpy/faiss'] = row['numpy ms'] / row['faiss ms']
        row['same result'] = all((f == n).all() for f, n in zip(preds['faiss'], preds['numpy']))
        row['acc xx->en'] = 100 * float((preds['faiss'][0] == gold).mean())
        rows.append(row)
        print(f"  {row['what']}: {load()}", flush=True)
    d = rows[0]['dim'] if rows else model.config.hidden_size
    for size in a.bucc.split(','):
        n, m = map(int, size.lower().split('x'))
        x, y, gold = planted(n, m, d)
        ids_x, ids_y = [str(i) for i in range(n)], [str(j) for j in range(m)]
        row = dict(what='bucc mining (k=4, margin)', size=f'{n}x{m}', dim=d)
        got = {}
        for be in ('faiss', 'numpy'):
            s, got[be] = timed(lambda: with_backend(be, lambda: R.bucc_candidates(x, y, ids_x, ids_y, k=4)), a.reps)
            row[f'{be} ms'] = 1000 * s
        row['numpy/faiss'] = row['numpy ms'] / row['faiss ms']
        row['same result'] = set(got['faiss']) == set(got['numpy'])
        top = sorted(got['faiss'], key=got['faiss'].get, reverse=True)[:len(gold)]
        row['P@gold %'] = 100 * len(set(top) & gold) / max(1, len(gold))
        rows.append(row)
        print(f"  bucc {size}: {load()}", flush=True)
    print(table(rows))
    print(f"{load()} at end.")
    return 0


if __name__ == '__main__':
    sys.exit(main())
