"""Training throughput in real (non-padding) tokens per second on real length distributions.

Variants, run back to back in one process on the same examples and the same initial weights:
  (a) itt_xling's trainer path: `featurize` + `data_collator` (dynamic padding) + `trainer.fit` (the HF Trainer as the
      package configures it);
  (b) the pad-to-max pipeline of the anchors: the same Trainer and examples, every batch padded to the paper's length
      (256; QA 384; retrieval 512), no length grouping;
  (c) the compute limit: model forward + backward + AdamW step on exactly the batches (a) used, nothing else (no
      gradient clipping, deterministic algorithms off: the Trainer's `full_determinism` leaves them on for the
      process); it runs right after (a), before (b), so that both see the same state of the C allocator (see
      `--keep-memory`); `step_overhead.py` times what (a) adds, item by item;
  (r) optional (`--random`): (a) with `make_stage(group_by_length=False)`, random batches as the paper's pipeline drew
      them (still dynamically padded); (a) itself uses the package default, the Trainer's length-grouped sampler
      reading featurize's `length` column.
Throughput counts the steady state: from the end of step 1 to the end of the last step (setup, the first step and
the end-of-epoch checkpoint are reported apart as fixed seconds). Tokens/s columns and the plain ratios use this
process's CPU time (torch runs one thread, so it is the wall time of an unloaded machine and does not move with other
people's load); the `wall` ratios use wall-clock time.
"""
from __future__ import annotations
import argparse, contextlib, gc, io, shutil, sys, tempfile, time
from pathlib import Path
import os
os.environ.setdefault('TQDM_DISABLE', '1')
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import header, median, table, load, encoder, task_sample, pad_length, keep_freed_memory, MODEL_HELP


def now():
    "(wall seconds, this process's CPU seconds): with one compute thread, CPU time is the wall time an unloaded machine would show."
    return time.perf_counter(), time.process_time()


def real_tokens(batch) -> int:
    return int(batch['attention_mask'].sum())


def padded_tokens(batch) -> int:
    return int(batch['attention_mask'].numel())


class Recorder:
    "A collator wrapper that keeps every batch it makes, in order."
    def __init__(self, collator): self.collator, self.batches = collator, []
    def __call__(self, rows):
        b = self.collator(rows); self.batches.append(b); return b


def _step_timer():
    from transformers import TrainerCallback
    class StepTimer(TrainerCallback):
        def __init__(self): self.ends = []
        def on_step_end(self, args, state, control, **kw): self.ends.append(now())
    return StepTimer()


def pad_to_max_collator(task, tok, length):
    "The anchors' batches: every row padded to `length` (labels with -100 for tagging)."
    from transformers import DataCollatorWithPadding, DataCollatorForTokenClassification
    from itt_xling.features import ModelInputs
    if task.kind == 'tagging': c = DataCollatorForTokenClassification(tok, padding='max_length', max_length=length)
    else: c = DataCollatorWithPadding(tok, padding='max_length', max_length=length)
    return ModelInputs(c)


def trainer_run(enc, task, tok, feats, collator, batch, seed, random_batches=False):
    "Train one epoch of `feats` through `itt_xling.trainer.fit`; returns (batches, step end times, total seconds)."
    from dataclasses import replace
    import itt_xling.trainer as T
    from itt_xling.settings import make_stage
    from transformers import set_seed
    from itt_xling.models import build_model
    stage = make_stage(name='bench', tasks=(task.name,), model=enc, seed=seed, batch_size=batch, epochs=1, lr=1e-5,
                       select_best=False, max_length=int(max(feats['length'])))
    set_seed(seed)
    model = build_model(enc, task)
    rec, timer = Recorder(collator), _step_timer()
    orig = T.training_args
    if random_batches: stage = replace(stage, optim=replace(stage.optim, group_by_length=False))
    tmp = Path(tempfile.mkdtemp(prefix='itt-bench-'))
    try:
        (tmp / 'stage').mkdir()
        t = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):  # the Trainer's per-step log lines
            T.fit(stage, tmp / 'stage', model, tok, feats, rec, callbacks=[timer])
        total = time.perf_counter() - t
    finally:
        T.training_args = orig
        shutil.rmtree(tmp, ignore_errors=True)
    del model; gc.collect()
    return rec.batches, timer.ends, total


def compute_run(enc, task, batches, seed, lr=1e-5):
    "Forward + backward + AdamW step on `batches`, nothing else (deterministic algorithms off); returns step end times."
    import torch
    from transformers import set_seed
    from itt_xling.models import build_model
    det = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(False)  # (a)'s full_determinism leaves them on, with their NaN-fill of torch.empty
    set_seed(seed)
    model = build_model(enc, task); model.train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr, weight_decay=0.0, fused=True)  # the optimizer the trainer uses (adamw_torch_fused)
    ends = []
    for b in batches:
        model(**b).loss.backward()
        opt.step(); opt.zero_grad(set_to_none=True)
        ends.append(now())
    torch.use_deterministic_algorithms(det)
    del model, opt; gc.collect()
    return ends


def steady(batches, ends):
    "(real tokens, padded tokens, wall s, CPU s) from the end of step 1 to the end of the last step."
    n = len(ends)
    return (sum(real_tokens(b) for b in batches[1:n]), sum(padded_tokens(b) for b in batches[1:n]),
            ends[-1][0] - ends[0][0], ends[-1][1] - ends[0][1])


def bench_one(model_name, task_name, steps, batch, reps, random_batches, seed=1, profile=False, variants='abc'):
    from itt_xling.models import load_tokenizer
    from itt_xling.features import featurize, data_collator
    enc = encoder(model_name)
    tok = load_tokenizer(enc)
    task, raw = task_sample(task_name, steps * batch, seed=seed)
    feats = featurize(task, raw, tok, max_length=pad_length(task), cache=False)
    # QA contexts split into several windows: keep exactly steps × batch features
    if len(feats) > steps * batch: feats = feats.select(range(steps * batch))
    L = pad_length(task)
    runs = {}  # variant -> list of (real tok/s wall, real tok/s CPU)
    pad, fixed = {}, []
    for r in range(reps):
        for v in ('a',) + tuple(v for v in 'cb' if v in variants) + (('r',) if random_batches else ()):  # (c) next to (a)
            if v == 'c': batches, ends = b_a, compute_run(enc, task, b_a, seed)
            else:
                coll = pad_to_max_collator(task, tok, L) if v == 'b' else data_collator(task, tok)
                batches, ends, total = trainer_run(enc, task, tok, feats, coll, batch, seed, random_batches=v == 'r')
                if v == 'a': b_a = batches; fixed.append(total - (ends[-1][0] - ends[0][0]))
            real, padded, wall, cpu = steady(batches, ends)
            runs.setdefault(v, []).append((real / wall, real / cpu))
            pad.setdefault(v, []).append(100 * (1 - real / padded))
        print(f"  rep {r + 1}: {model_name}/{task_name} real tok/s wall (CPU): "
              + ', '.join(f"({v}) {runs[v][-1][0]:.0f} ({runs[v][-1][1]:.0f})" for v in sorted(runs, key='abcr'.index))
              + f"; {load()}", flush=True)
    if profile: profile_trainer(enc, task, tok, feats, batch, seed)
    ratio = lambda x, y, i: median([p[i] / q[i] for p, q in zip(runs[x], runs[y])])
    row = dict(model=model_name, task=task_name, batch=batch, steps=steps, pad_to=L,
               **{'real tok/step': sum(real_tokens(b) for b in b_a) / len(b_a), 'pad % (a)': median(pad['a'])})
    for v in sorted(runs, key='abcr'.index): row[f'({v}) tok/s'] = median([x[1] for x in runs[v]])
    if 'b' in runs: row['(a)/(b)'] = ratio('a', 'b', 1)
    if 'c' in runs: row['(c)/(a) time'] = ratio('a', 'c', 1)
    if 'b' in runs: row['(a)/(b) wall'] = ratio('a', 'b', 0)
    if 'c' in runs: row['(c)/(a) wall'] = ratio('a', 'c', 0)
    if random_batches: row.update({'pad % (r)': median(pad['r']), '(a)/(r)': ratio('a', 'r', 1)})
    row['fixed s (a)'] = median(fixed)
    return row


def padding_rows(task_names, n=2490, batches=(8, 32), seed=1):
    "Positions computed per real token, without a model: pad-to-max vs random dynamic batches vs length-grouped batches."
    import numpy as np, torch
    from transformers.trainer_pt_utils import LengthGroupedSampler
    from itt_xling.models import load_tokenizer
    from itt_xling.features import featurize
    tok = load_tokenizer(encoder('tiny-xlmr'))  # XLM-R's tokenizer (the same as me5-small's)
    rows = []
    for name in task_names:
        task, raw = task_sample(name, n, seed=seed)
        L = np.array(featurize(task, raw, tok, max_length=pad_length(task), cache=False)['length'])
        for B in batches:
            rnd = torch.randperm(len(L), generator=torch.Generator().manual_seed(seed)).tolist()
            grp = list(LengthGroupedSampler(B, lengths=L.tolist(), generator=torch.Generator().manual_seed(seed)))
            pos = lambda order: sum(int(L[order[i:i + B]].max()) * len(order[i:i + B]) for i in range(0, len(order), B))
            rows.append({'task': name, 'examples': len(L), 'mean tokens': float(L.mean()), 'batch': B,
                         f'pad-to-max': len(L) * pad_length(task) / L.sum(), 'random batches (r)': pos(rnd) / L.sum(),
                         'length-grouped (a)': pos(grp) / L.sum()})
    return rows


def profile_trainer(enc, task, tok, feats, batch, seed):
    "Where (a)'s time goes: torch.profiler over the trainer path, top operators by self CPU time."
    from torch.profiler import profile, ProfilerActivity
    from itt_xling.features import data_collator
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        trainer_run(enc, task, tok, feats, data_collator(task, tok), batch, seed)
    print(prof.key_averages().table(sort_by='self_cpu_time_total', row_limit=15))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--models', default='me5-small', help=f'comma-separated: {MODEL_HELP}')
    p.add_argument('--tasks', default='xnli,tatoeba', help='xnli, pawsx, udpos, xquad, tatoeba (Tatoeba sentences)')
    p.add_argument('--base-tasks', default='xnli,tatoeba', help="tasks for the 'base'/'large' shapes (slow on CPU)")
    p.add_argument('--steps', type=int, default=4, help='optimizer steps per variant (the first is warm-up)')
    p.add_argument('--base-steps', type=int, default=3, help="steps for the 'base'/'large' shapes")
    p.add_argument('--batch', type=int, default=8, help='examples per step')
    p.add_argument('--reps', type=int, default=2, help='repetitions (medians are reported)')
    p.add_argument('--variants', default='abc', help="which of (b), (c) to run besides (a), e.g. 'ac' to skip pad-to-max")
    p.add_argument('--random', action='store_true', help="also run (r): the trainer with random batches (group_by_length=False)")
    p.add_argument('--padding', action='store_true', help='also print padded positions per real token for batches of 8 and 32')
    p.add_argument('--padding-only', action='store_true', help='only that padding table (no model, seconds)')
    p.add_argument('--profile', action='store_true', help="print a torch.profiler table of (a)'s run")
    p.add_argument('--keep-memory', action='store_true',
                   help='glibc keeps freed memory (no mmap/munmap and page faults of large blocks each step)')
    p.add_argument('--quick', action='store_true', help='tiny model, Tatoeba lengths, 3 steps, 1 rep (a wiring check)')
    a = p.parse_args(argv)
    if a.quick: a.models, a.tasks, a.base_tasks, a.steps, a.batch, a.reps = 'tiny-xlmr', 'tatoeba', '', 3, 4, 1
    import torch
    header('training throughput: real tokens/s, (a) itt_xling trainer vs (b) pad-to-max vs (c) compute limit', a)
    if a.keep_memory: print(f"glibc keeps freed memory: {keep_freed_memory()}")
    rows = []
    if a.padding_only: a.models, a.padding = '', True
    for m in filter(None, a.models.split(',')):
        big = m in ('base', 'large')
        for t in (a.base_tasks if big else a.tasks).split(','):
            if not t: continue
            rows.append(bench_one(m, t, a.base_steps if big else a.steps, a.batch, a.reps, a.random, profile=a.profile, variants=a.variants))
    if rows: print(table(rows))
    if a.padding:
        print('\npositions computed per real token (XLM-R tokenizer, no model; 1.0 = no padding):')
        print(table(padding_rows([t for t in a.tasks.split(',') if t], n=200 if a.quick else 2490)))
    print(f"{load()} at end. Targets: (a)/(b) >= 2.0 on xnli and tatoeba; (c)/(a) time (= (a) tok/s / (c) tok/s) >= 0.90.")
    return 0


if __name__ == '__main__':
    sys.exit(main())
