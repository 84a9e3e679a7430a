"""Zero-shot evaluation over every language of a task: itt_xling's path vs a naive loop.

  itt_xling: `itt_xling.zero_shot.zero_shot` (batched by length, each distinct input once) and the trainer's
             zero-shot evaluation (`itt_xling.stages.evaluate_stage`, what `run_stage` runs; it predicts through
             `predict_examples` too, so the two paths now share their batching), each timed against the
             naive loop on the same model and the same examples;
  naive:     the anchors' loop: one language at a time, every example padded to the paper's length (256), batches of 8,
             in file order.
Times are this process's CPU seconds (torch runs one thread; wall-clock ratios are shown too). Both score the same examples with the same model (an untrained head: speed does not depend on the weights); their
accuracies are printed as a check that they did the same work.
"""
from __future__ import annotations
import argparse, contextlib, io, inspect, os, shutil, sys, tempfile, time
from pathlib import Path
os.environ.setdefault('TQDM_DISABLE', '1')
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import header, median, table, load, encoder, data_dir, PAD_TO, MODEL_HELP


def cpu_wall(start=None):
    "(wall, CPU) seconds now, or elapsed since `start`; CPU time of this process is robust to other people's load."
    now = (time.perf_counter(), time.process_time())
    return now if start is None else (now[0] - start[0], now[1] - start[1])


def subset(task, langs, n, data, first=True):
    "Per language, the row indices the itt_xling path evaluates: the first `n` (zero_shot's `limit`) or `cap_examples`'s."
    from itt_xling.load import load_split
    from itt_xling.recipe import cap_examples
    out = {}
    for lang in langs:
        ds = load_split(task.name, 'validation', lang, data_dir=data)
        if first: out[lang] = list(range(min(n, len(ds))))
        else: out[lang] = list(cap_examples(ds.add_column('_row', list(range(len(ds)))), n)['_row'])
    return out


def naive_eval(model, tok, task, rows, data, batch=8, length=256):
    "One language at a time (`rows`: lang -> row indices), pad to `length`, batches of `batch`: accuracy per language."
    import torch
    from itt_xling.load import load_split
    model.eval(); acc = {}
    for lang, idx in rows.items():
        ds = load_split(task.name, 'validation', lang, data_dir=data).select(idx)
        pair = task.pair and any(ds['text_b'])
        enc = tok(list(ds['text_a']), list(ds['text_b']) if pair else None, truncation='longest_first', max_length=length,
                  padding='max_length', return_tensors='pt')
        preds = []
        with torch.no_grad():
            for s in range(0, len(ds), batch):
                out = model(**{k: v[s:s + batch] for k, v in enc.items()})
                preds += out.logits.argmax(-1).tolist()
        acc[lang] = 100 * sum(int(p == g) for p, g in zip(preds, list(ds['label']))) / len(ds)
    return acc


def zero_shot_eval(model, tok, task, langs, n, data):
    "`itt_xling.zero_shot.zero_shot` on the first `n` examples of each language: accuracy per language."
    from itt_xling.zero_shot import zero_shot
    rows, _ = zero_shot(model, task.name, langs=langs, split='validation', data_dir=data, tokenizer=tok, limit=n)
    return {r['lang']: r['value'] for r in rows if r['metric'] == 'accuracy'}


def stage_eval(model, tok, task, langs, n, data):
    "The trainer's zero-shot evaluation (`stages.evaluate_stage`, as `run_stage` calls it) on `n` examples per language."
    import itt_xling.stages as S
    from itt_xling.settings import make_stage
    stage = make_stage(name='bench', evals=(task.name,), langs={task.name: list(langs)}, max_eval_examples=n, split='validation')
    sd = Path(tempfile.mkdtemp(prefix='itt-bench-'))
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            rows, _ = S.evaluate_stage(stage, model, tok, sd, data)
    finally: shutil.rmtree(sd, ignore_errors=True)
    return {r['lang']: r['value'] for r in rows if r['metric'] == 'accuracy'}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--model', default='me5-small', help=MODEL_HELP)
    p.add_argument('--task', default='xnli', help='a classification task with local dev files (xnli, pawsx)')
    p.add_argument('--n', type=int, default=32, help='examples per language (the same items in every language)')
    p.add_argument('--reps', type=int, default=2, help='repetitions (medians are reported)')
    p.add_argument('--quick', action='store_true', help='tiny model, 8 examples per language, 1 rep')
    a = p.parse_args(argv)
    if a.quick: a.model, a.n, a.reps = 'tiny-xlmr', 8, 1
    from transformers import set_seed
    from itt_xling.models import build_model, load_tokenizer
    from itt_xling.tasks import get_task
    from itt_xling.load import local_files
    header(f'zero-shot evaluation of every language: itt_xling vs naive loop (pad to {PAD_TO["classification"]}, batch 8)')
    data = data_dir()
    task = get_task(a.task)
    langs = [l for l in task.langs if local_files(task.name, 'validation', l, data)]
    enc = encoder(a.model)
    tok = load_tokenizer(enc)
    set_seed(0)
    model = build_model(enc, task)
    try: import itt_xling.zero_shot  # noqa: F401
    except ImportError: paths = {}
    else: paths = {'zero_shot.zero_shot': (zero_shot_eval, True)}
    paths['stages.evaluate_stage'] = (stage_eval, False)  # what run_stage evaluates with
    res = {}
    for name, (fn, first) in paths.items():
        fn(model, tok, task, langs[:1], 4, data)  # warm-up: imports, first calls
        rows_of = subset(task, langs, a.n, data, first)
        for r in range(a.reps):
            t = cpu_wall(); acc_i = fn(model, tok, task, langs, a.n, data); t_i = cpu_wall(t)
            t = cpu_wall(); acc_n = naive_eval(model, tok, task, rows_of, data); t_n = cpu_wall(t)
            res.setdefault(name, []).append((t_i, t_n, max(abs(acc_i[l] - acc_n[l]) for l in langs)))
            print(f"  rep {r + 1}: {name} {t_i[1]:.1f}s CPU ({t_i[0]:.1f}s wall), naive {t_n[1]:.1f}s CPU ({t_n[0]:.1f}s wall); {load()}", flush=True)
    n_ex = a.n * len(langs)
    rows = []
    for name, rs in res.items():
        rows.append(dict(model=a.model, task=a.task, langs=len(langs), examples=n_ex, path=name,
                         **{'itt_xling CPU s': median([r[0][1] for r in rs]), 'naive CPU s': median([r[1][1] for r in rs]),
                            'itt_xling ex/s': n_ex / median([r[0][1] for r in rs]), 'naive ex/s': n_ex / median([r[1][1] for r in rs]),
                            'speed-up': median([r[1][1] / r[0][1] for r in rs]),
                            'speed-up wall': median([r[1][0] / r[0][0] for r in rs]),
                            'max acc diff': max(r[2] for r in rs)}))
    print(table(rows))
    print(f"{load()} at end. Target: speed-up >= 3.")
    return 0


if __name__ == '__main__':
    sys.exit(main())
