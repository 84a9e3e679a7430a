"""Peak memory (RSS) of one training stage: full fine-tuning vs LoRA.

Each variant runs `itt_xling.stages.run_stage` (build the model, LoRA if asked, featurize, train with the Trainer,
save) in its own subprocess; its peak RSS is the child's `ru_maxrss` from `os.wait4`. A 'load' variant (build the
model and load the data, no training) shows the part neither can avoid.
"""
from __future__ import annotations
import argparse, json, os, subprocess, sys, tempfile, shutil, time
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import header, median, table, load, encoder, MODEL_HELP

LORA = dict(r=8, alpha=16, dropout=0.1, strategy='stack')


def child(model_name, variant, steps, batch, task):
    "Run in the subprocess: one training stage of `variant` ('full', 'lora' or 'load')."
    os.environ.setdefault('TQDM_DISABLE', '1')
    import contextlib, io
    from _common import data_dir
    import itt_xling.stages as S
    from itt_xling.settings import make_stage
    from itt_xling.recipe import load_stage_data
    enc, data = encoder(model_name), data_dir()
    stage = make_stage(name='bench', tasks=(task,), model=enc, seed=1, epochs=1, batch_size=batch, lr=1e-5,
                       select_best=False, train_on_dev=(task,), max_train_examples=steps * batch, max_length=256,
                       lora=LORA if variant == 'lora' else None, data_dir=str(data))
    out = Path(tempfile.mkdtemp(prefix='itt-bench-mem-'))
    t = time.perf_counter()
    try:
        if variant == 'load':
            from itt_xling.models import build_model, load_tokenizer
            from itt_xling.features import featurize
            model, tok = build_model(enc, task), load_tokenizer(enc)
            featurize(task, load_stage_data(stage, task, str(data)), tok, max_length=256)
        else:
            with contextlib.redirect_stdout(io.StringIO()): S.run_stage(stage, out)
    finally: shutil.rmtree(out, ignore_errors=True)
    print(json.dumps(dict(seconds=time.perf_counter() - t)))


def measure(model_name, variant, steps, batch, task):
    "(peak RSS in MiB, seconds) of one child run."
    cmd = [sys.executable, __file__, '--child', model_name, variant, str(steps), str(batch), task]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, status, ru = os.wait4(p.pid, 0)
    out, err = p.stdout.read(), p.stderr.read()
    if status != 0: raise SystemExit(f"{variant} run of {model_name} failed:\n{err[-3000:]}")
    return round(ru.ru_maxrss / 1024), json.loads(out.strip().splitlines()[-1])['seconds']


def main(argv=None):
    if argv is None and len(sys.argv) > 1 and sys.argv[1] == '--child':
        m, v, s, b, t = sys.argv[2:7]; child(m, v, int(s), int(b), t); return 0
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--models', default='me5-small,base', help=f'comma-separated: {MODEL_HELP}')
    p.add_argument('--task', default='xnli', help='training task (trained on its English dev set by item)')
    p.add_argument('--steps', type=int, default=2, help='optimizer steps per stage')
    p.add_argument('--batch', type=int, default=8)
    p.add_argument('--reps', type=int, default=1, help='repetitions (peak RSS hardly varies)')
    p.add_argument('--quick', action='store_true', help='tiny model, 1 step, no load-only run')
    a = p.parse_args(argv)
    if a.quick: a.models, a.steps, a.batch, a.reps = 'tiny-xlmr', 1, 4, 1
    header('peak RSS of a training stage: full fine-tuning vs LoRA (r=8, query/value)')
    rows = []
    for m in a.models.split(','):
        encoder(m)  # build / convert once, outside the measured runs
        variants = ('full', 'lora') if a.quick else ('load', 'full', 'lora')
        res = {v: [measure(m, v, a.steps, a.batch, a.task) for _ in range(a.reps)] for v in variants}
        peak = {v: int(median([r[0] for r in rs])) for v, rs in res.items()}
        row = dict(model=m, task=a.task, steps=a.steps, batch=a.batch)
        if 'load' in peak: row['load MiB'] = peak['load']
        row.update({'full MiB': peak['full'], 'LoRA MiB': peak['lora'], 'LoRA/full': peak['lora'] / peak['full']})
        if 'load' in peak: row['(LoRA-load)/(full-load)'] = (peak['lora'] - peak['load']) / max(1e-9, peak['full'] - peak['load'])
        row.update({'full s': median([r[1] for r in res['full']]), 'LoRA s': median([r[1] for r in res['lora']])})
        rows.append(row)
        print(f"  {m}: {load()}", flush=True)
    print(table(rows))
    print(f"{load()} at end. Target: LoRA/full <= 0.60.")
    return 0


if __name__ == '__main__':
    sys.exit(main())
