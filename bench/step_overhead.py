"""Where a training step's time goes outside the model's compute, item by item, and what each proposed fix saves.

One process, the same examples, batches and initial weights for every variant; the variants alternate within each
repetition (so the machine's load hits them alike) and the tables give medians over repetitions of the per-step
medians of steps 2..N (step 1 is warm-up), in this process's CPU milliseconds (torch runs one thread).

Trainer variants: `trainer.fit` exactly as the package configures it ('current': since this script's first findings it
skips the x1.0 gradient multiply of clipping on one CPU process and switches off full_determinism's NaN fill of new
tensors while training), and variants that each change one thing, applied from here (a Trainer subclass passed as
`fit(trainer_cls=...)`, a callback, or a changed field of `trainer.training_args`), never by editing the package:
  before     the package before those two fixes: the Trainer's own clipping (torch's `clip_grad_norm_`, which
             multiplies every gradient by min(1, max_norm / (norm + 1e-6)) even when that is 1.0) and
             `torch.utils.deterministic.fill_uninitialized_memory` on, as `full_determinism` sets it (every
             `torch.empty` NaN-filled, e.g. the 384 MB embedding gradient at every step)
  torch-clip current with the Trainer's own clipping only
  nan-fill   current with the NaN fill only
  no-clip    `max_grad_norm=0` (the Trainer then still takes the norm for logging, with clip_grad_norm_(inf))
  no-det     `full_determinism=False` (keeps `set_seed`, drops `torch.use_deterministic_algorithms(True)`)
  no-tqdm    `disable_tqdm=True`
  log50      `logging_steps=50` (what a real run of >= 500 steps uses; this short run logs every step)
Compute variants (the loop of train_throughput.py's (c), on exactly the batches 'current' used):
  c          forward + backward + fused AdamW step + zero_grad, deterministic algorithms off
  c+det      the same with `torch.use_deterministic_algorithms(True)`, as `full_determinism` sets on CPU
  c+clip     c with `clip_grad_norm_(1.0)` before the step, as the Trainer does (max_grad_norm 1.0)
  c+det+clip the same computation as the Trainer's step: the fair compute limit; unless `--constant-lr`, it also
             uses the Trainer's per-step learning rates and the RNG state of its first step (dropout), so its losses
             and final weights can be compared with 'current''s bit for bit
Items are self times (a nested timed call is subtracted from its caller); 'other' is the step's CPU time minus the
items. Each trainer run saves no checkpoint (`save_strategy='no'`): the end-of-epoch save lies outside the steps.
The kernel-time and page-fault rows show the C allocator's share: by default glibc maps and unmaps every block over
32 MB (me5-small's 384 MB embedding gradient, every step); `--keep-memory` makes it keep freed memory instead.
"""
from __future__ import annotations
import argparse, contextlib, functools, gc, hashlib, io, resource, shutil, sys, tempfile, time
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import header, median, table, load, encoder, task_sample, pad_length, keep_freed_memory, MODEL_HELP

TRAINER_VARIANTS = ('current', 'before', 'torch-clip', 'nan-fill', 'no-clip', 'no-det', 'no-tqdm', 'log50')
COMPUTE_VARIANTS = ('c', 'c+det', 'c+clip', 'c+det+clip')
DEFAULT_VARIANTS = 'current,before,torch-clip,nan-fill,c,c+det+clip'


class Prof:
    "Self CPU time per named item: a timed call inside another timed call is subtracted from the outer one."
    def __init__(self): self.acc, self.stack = {}, []

    @contextlib.contextmanager
    def __call__(self, name):
        t = time.process_time(); self.stack.append(0.0)
        try: yield
        finally:
            dt = time.process_time() - t; child = self.stack.pop()
            self.acc[name] = self.acc.get(name, 0.0) + dt - child
            if self.stack: self.stack[-1] += dt

    def wrap(self, name, fn):
        @functools.wraps(fn)
        def timed(*a, **k):
            with self(name): return fn(*a, **k)
        return timed


class Steps:
    "Per-step item times: a boundary at the start of each step (and one after the last) snapshots the totals."
    def __init__(self, prof): self.prof, self.marks = prof, []
    def mark(self):
        ru = resource.getrusage(resource.RUSAGE_SELF)
        self.marks.append((time.process_time(), time.perf_counter(), dict(self.prof.acc), ru.ru_stime, ru.ru_minflt))

    def per_step(self):
        "[(cpu s, wall s, {item: s, 'other': s}, {'kernel s': .., 'page faults': ..})] of every step."
        out = []
        for (c0, w0, a0, s0, f0), (c1, w1, a1, s1, f1) in zip(self.marks, self.marks[1:]):
            items = {k: v - a0.get(k, 0.0) for k, v in a1.items()}
            items['other'] = (c1 - c0) - sum(items.values())
            out.append((c1 - c0, w1 - w0, items, {'kernel s': s1 - s0, 'page faults': f1 - f0}))
        return out


def trainer_class(prof, steps, record, torch_clip=False, nan_fill=False):
    "StageTrainer with timers on every per-step item; `torch_clip`: the Trainer's own clipping; `nan_fill`: full_determinism's NaN fill on."
    from transformers import TrainerCallback
    from itt_xling.trainer import StageTrainer

    class Hooks(TrainerCallback):
        def __init__(self, tr): self.tr = tr
        def on_train_begin(self, args, state, control, model=None, **kw):
            if nan_fill:  # `fit` switched the fill off just before `train()`; `fit` restores the previous value after it
                import torch.utils.deterministic as D
                D.fill_uninitialized_memory = True
            tr = self.tr  # optimizer and scheduler as accelerate wrapped them
            tr.optimizer.step = prof.wrap('accelerate optimizer wrapper', tr.optimizer.step)
            tr.lr_scheduler.step = prof.wrap('lr scheduler step', tr.lr_scheduler.step)
            model.zero_grad = prof.wrap('zero_grad', model.zero_grad)
            ch = tr.callback_handler
            for ev in ('on_step_begin', 'on_pre_optimizer_step', 'on_optimizer_step', 'on_step_end'):
                setattr(ch, ev, prof.wrap('callbacks on_step_* (tqdm update, flow)', getattr(ch, ev)))
            ch.on_log = prof.wrap('on_log callbacks (LogFile, tqdm.write)', ch.on_log)
        def on_epoch_end(self, *a, **k): steps.mark()

    class Timed(StageTrainer):
        def __init__(self, *a, **k):
            super().__init__(*a, **k)
            self.accelerator.backward = prof.wrap('backward', self.accelerator.backward)
            self.add_callback(Hooks(self))
        def create_optimizer(self, *a, **k):
            opt = super().create_optimizer(*a, **k)
            opt.step = prof.wrap('optimizer step (fused AdamW)', opt.step)
            return opt
        def get_batch_samples(self, *a, **k):
            steps.mark()
            with prof('data loader (get_batch_samples)'): return super().get_batch_samples(*a, **k)
        def training_step(self, *a, **k):
            if 'rng' not in record: record['rng'] = __import__('torch').get_rng_state()  # dropout's RNG at step 1
            with prof('training_step extras'): loss = super().training_step(*a, **k)
            record['loss'].append(loss.item()); return loss
        def compute_loss(self, *a, **k):
            with prof('forward (compute_loss)'): return super().compute_loss(*a, **k)
        def floating_point_ops(self, *a, **k):
            with prof('floating_point_ops'): return super().floating_point_ops(*a, **k)
        def _track_num_input_tokens(self, *a, **k):
            with prof('track tokens / flos'): return super()._track_num_input_tokens(*a, **k)
        def _clip_grad_norm(self, model):
            with prof('gradient clipping'):
                from transformers import Trainer
                n = Trainer._clip_grad_norm(self, model) if torch_clip else super()._clip_grad_norm(model)
            record['grad_norm'].append(float(n)); return n
        def _get_grad_norm(self, *a, **k):
            with prof('_get_grad_norm'): return super()._get_grad_norm(*a, **k)
        def _get_learning_rate(self):
            with prof('_get_learning_rate'): lr = super()._get_learning_rate()
            record['lr'].append(lr); return lr
        def _maybe_log_save_evaluate(self, *a, **k):
            with prof('logging (_maybe_log_save_evaluate)'): return super()._maybe_log_save_evaluate(*a, **k)
    return Timed


def weights_digest(model) -> str:
    h = hashlib.sha1()
    for _, p in sorted(model.state_dict().items()): h.update(p.detach().contiguous().numpy().tobytes())
    return h.hexdigest()[:12]


def trainer_run(variant, enc, task, tok, feats, batch, seed, max_grad_norm=None):
    "One epoch of `feats` through `itt_xling.trainer.fit` with `variant`'s setting; returns (per-step items, record, batches)."
    import torch
    import itt_xling.trainer as T
    from itt_xling.settings import make_stage
    from transformers import set_seed
    from itt_xling.features import data_collator
    from itt_xling.models import build_model
    torch.use_deterministic_algorithms(False)  # a previous full_determinism run leaves it on for the process
    stage = make_stage(name='bench', tasks=(task.name,), model=enc, seed=seed, batch_size=batch, epochs=1, lr=1e-5,
                       select_best=False, max_length=int(max(feats['length'])))
    set_seed(seed)
    model = build_model(enc, task)
    prof = Prof(); steps = Steps(prof); record = dict(loss=[], grad_norm=[], lr=[], batches=[])
    coll = data_collator(task, tok)
    def collator(rows):
        with prof('collator'): b = coll(rows)
        record['batches'].append(b); return b
    orig = T.training_args
    def args_for_variant(*a, **k):
        args = orig(*a, **k)
        args.save_strategy = 'no'  # the end-of-epoch checkpoint is outside the measured steps
        if variant == 'no-det': args.full_determinism = False
        if max_grad_norm is not None: args.max_grad_norm = max_grad_norm
        if variant == 'no-clip': args.max_grad_norm = 0.0
        if variant == 'no-tqdm': args.disable_tqdm = True
        if variant == 'log50': args.logging_steps = 50
        return args
    T.training_args = args_for_variant
    tmp = Path(tempfile.mkdtemp(prefix='itt-bench-'))
    import torch.utils.deterministic as D
    fill = D.fill_uninitialized_memory
    try:
        (tmp / 'stage').mkdir()
        cls = trainer_class(prof, steps, record, torch_clip=variant in ('before', 'torch-clip'), nan_fill=variant in ('before', 'nan-fill'))
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):  # log lines, tqdm bar
            T.fit(stage, tmp / 'stage', model, tok, feats, collator, trainer_cls=cls)
    finally:
        T.training_args, D.fill_uninitialized_memory = orig, fill
        shutil.rmtree(tmp, ignore_errors=True)
    record['weights'] = weights_digest(model)
    torch.use_deterministic_algorithms(False)
    del model; gc.collect()
    return steps.per_step(), record


def compute_run(variant, enc, task, batches, seed, lrs=None, rng=None, lr=1e-5, max_grad_norm=None):
    "Forward + backward + fused AdamW step (+ clipping, + determinism) on `batches`; returns (per-step items, record)."
    import torch
    from transformers import set_seed
    from itt_xling.models import build_model
    torch.use_deterministic_algorithms(False)
    set_seed(seed)
    model = build_model(enc, task); model.train()
    if rng is not None: torch.set_rng_state(rng)  # dropout's RNG as the Trainer's first training_step found it
    det, clip = '+det' in variant, '+clip' in variant
    torch.use_deterministic_algorithms(det)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0, fused=True)
    prof = Prof(); steps = Steps(prof); record = dict(loss=[], grad_norm=[])
    for i, b in enumerate(batches):
        steps.mark()
        if lrs: opt.param_groups[0]['lr'] = lrs[i]
        with prof('forward (compute_loss)'): loss = model(**b).loss
        with prof('backward'): loss.backward()
        record['loss'].append(loss.item())
        if clip:
            with prof('gradient clipping'): record['grad_norm'].append(float(torch.nn.utils.clip_grad_norm_(params, 1.0 if max_grad_norm is None else max_grad_norm)))
        with prof('optimizer step (fused AdamW)'): opt.step()
        with prof('zero_grad'): opt.zero_grad(set_to_none=True)
    steps.mark()
    record['weights'] = weights_digest(model)
    torch.use_deterministic_algorithms(False)
    del model, opt; gc.collect()
    return steps.per_step(), record


def summarize(per_step):
    "Median over steps 2..N of (cpu, wall, items)."
    rest = per_step[1:] or per_step
    keys = dict.fromkeys(k for _, _, it, _ in rest for k in it)
    return (median([c for c, _, _, _ in rest]), median([w for _, w, _, _ in rest]),
            {k: median([it.get(k, 0.0) for _, _, it, _ in rest]) for k in keys},
            {k: median([m[k] for _, _, _, m in rest]) for k in ('kernel s', 'page faults')})


def bench(model_name, task_name, steps, batch, reps, variants, same_lr=True, seed=1, warmup=False, max_grad_norm=None):
    from itt_xling.models import load_tokenizer
    from itt_xling.features import featurize
    enc = encoder(model_name); tok = load_tokenizer(enc)
    task, raw = task_sample(task_name, steps * batch, seed=seed)
    feats = featurize(task, raw, tok, max_length=pad_length(task), cache=False)
    if len(feats) > steps * batch: feats = feats.select(range(steps * batch))
    trainer_vs = ['current'] + [v for v in variants if v in TRAINER_VARIANTS and v != 'current']
    compute_vs = [v for v in variants if v in COMPUTE_VARIANTS]
    res = {v: [] for v in trainer_vs + compute_vs}  # variant -> [(cpu, wall, items)] per repetition
    rec = {}
    if warmup: trainer_run('current', enc, task, tok, feats, batch, seed, max_grad_norm)  # grows the heap once (see --keep-memory)
    for r in range(reps):
        for v in trainer_vs + compute_vs:
            if v in TRAINER_VARIANTS: ps, rc = trainer_run(v, enc, task, tok, feats, batch, seed, max_grad_norm)
            else:
                fair = same_lr and '+clip' in v and '+det' in v  # the Trainer's computation: same lr schedule, same dropout
                ps, rc = compute_run(v, enc, task, rec['current']['batches'], seed, lrs=rec['current']['lr'] if fair else None,
                                     rng=rec['current']['rng'] if fair else None, max_grad_norm=max_grad_norm)
            if v == 'current' and r > 0: assert [int(b['input_ids'].sum()) for b in rc.get('batches', [])] == \
                [int(b['input_ids'].sum()) for b in rec['current']['batches']], 'the Trainer drew other batches'
            res[v].append(summarize(ps)); rec.setdefault(v, rc)
        print(f"  rep {r + 1}: CPU ms/step " + ', '.join(f"{v} {1e3 * x[-1][0]:.0f}" for v, x in res.items()) + f"; {load()}",
              flush=True)
    real = sum(int(b['attention_mask'].sum()) for b in rec['current']['batches'][1:]) / max(1, len(rec['current']['batches']) - 1)
    return res, rec, real


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--model', default='me5-small', help=MODEL_HELP)
    p.add_argument('--task', default='tatoeba', help='xnli, pawsx, udpos, xquad, tatoeba (Tatoeba sentences)')
    p.add_argument('--steps', type=int, default=8, help='optimizer steps per run (the first is warm-up)')
    p.add_argument('--batch', type=int, default=8, help='examples per step')
    p.add_argument('--reps', type=int, default=3, help='repetitions (medians are reported)')
    p.add_argument('--variants', default=DEFAULT_VARIANTS,
                   help=f"comma-separated, of {', '.join(TRAINER_VARIANTS + COMPUTE_VARIANTS)}; 'all' for every one")
    p.add_argument('--constant-lr', action='store_true', help="c+det+clip at a constant lr (as (c)) instead of the Trainer's")
    p.add_argument('--max-grad-norm', type=float, default=None,
                   help="override the package's max_grad_norm (1.0) in every variant, e.g. 0.1 to check the clipping where steps clip")
    p.add_argument('--keep-memory', action='store_true',
                   help="glibc keeps freed memory (mallopt M_MMAP_MAX=0, M_TRIM_THRESHOLD=2 GiB; "
                        "one unrecorded warm-up run grows the heap): no page faults per step")
    p.add_argument('--quick', action='store_true', help='tiny model, 3 steps of 4, 1 rep, every variant (a wiring check)')
    a = p.parse_args(argv)
    if a.quick: a.model, a.steps, a.batch, a.reps, a.variants = 'tiny-xlmr', 3, 4, 1, 'all'
    variants = list(TRAINER_VARIANTS + COMPUTE_VARIANTS) if a.variants == 'all' else a.variants.split(',')
    bad = [v for v in variants if v not in TRAINER_VARIANTS + COMPUTE_VARIANTS]
    if bad: p.error(f"unknown variants {bad}")
    header('per-step overhead of the Trainer over the compute loop, item by item, and what each fix of the package saves', a)
    if a.keep_memory: print(f"glibc keeps freed memory: {keep_freed_memory()}")
    res, rec, real = bench(a.model, a.task, a.steps, a.batch, a.reps, variants, same_lr=not a.constant_lr,
                          warmup=a.keep_memory, max_grad_norm=a.max_grad_norm)
    print(f"\n{a.model}, {a.task}: {a.steps} steps of {a.batch} examples, {real:.1f} real tokens per step (steps 2..N); "
          f"CPU ms per step, median of {a.reps} repetitions of the per-step medians")
    # 1. the breakdown, item by item, the trainer's 'current' next to the compute loops
    shown = [v for v in res]
    items = list(dict.fromkeys(k for v in shown for x in res[v] for k in x[2]))
    items = [k for k in items if k != 'other'] + ['other']
    rows = []
    for k in items:
        row = {'item': k}
        for v in shown: row[v] = 1e3 * median([x[2].get(k, 0.0) for x in res[v]])
        rows.append(row)
    rows.append({'item': '**step (CPU)**', **{v: 1e3 * median([x[0] for x in res[v]]) for v in shown}})
    rows.append({'item': 'step (wall)', **{v: 1e3 * median([x[1] for x in res[v]]) for v in shown}})
    rows.append({'item': 'of the step: kernel (sys) time', **{v: 1e3 * median([x[3]['kernel s'] for x in res[v]]) for v in shown}})
    rows.append({'item': 'page faults per step (thousands)', **{v: 1e-3 * median([x[3]['page faults'] for x in res[v]]) for v in shown}})
    print(table(rows, floatfmt='{:.1f}'))
    # 2. each variant's step time, its ratio to the compute loops, and whether it computes what 'current' computes
    print('\n(c)/(x): compute-loop CPU time over variant x\'s, per repetition, median. "same loss": the per-step losses '
          "equal 'current''s exactly; \"same weights\": the final weights are bit-identical to 'current''s.")
    base = rec['current']
    rows = []
    for v in shown:
        row = {'variant': v, 'CPU ms/step': 1e3 * median([x[0] for x in res[v]]), 'real tok/s (CPU)': real / median([x[0] for x in res[v]])}
        for c in [c for c in COMPUTE_VARIANTS if c in res]:
            row[f'({c})/(x)'] = median([y[0] / x[0] for x, y in zip(res[v], res[c])])
        same = rec[v]['loss'] == base['loss']
        row['same loss'] = 'yes' if same else f"no (max diff {max(abs(x - y) for x, y in zip(rec[v]['loss'], base['loss'])):.1e})"
        row['same weights'] = 'yes' if rec[v]['weights'] == base['weights'] else 'no'
        rows.append(row)
    print(table(rows))
    gn = base['grad_norm']
    mx = 1.0 if a.max_grad_norm is None else a.max_grad_norm
    print(f"\ngrad norms of 'current' (max_grad_norm {mx:g}): {', '.join(f'{x:.3g}' for x in gn)}; "
          f"{sum(x > mx for x in gn)} of {len(gn)} steps clipped")
    print(f"{load()} at end. Target: (c)/(a) time >= 0.90.")
    return 0


if __name__ == '__main__':
    sys.exit(main())
