"""Tokenization cache: a second run (a fresh process) of `featurize` on the same data finds its features on disk.

Each run is a subprocess that loads the split and the tokenizer and calls `featurize(task, ds, tok, cache=FOLDER)`;
it counts the calls of the kind's featurizer (the function `datasets.map` runs on each batch). The cold run starts
from an empty cache folder, the warm run reuses it. A warm run that tokenizes nothing makes 0 calls.
"""
from __future__ import annotations
import argparse, json, os, subprocess, sys, tempfile, shutil, time
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import header, median, table, load, encoder, task_sample, MODEL_HELP


def child(model_name, task_name, n, folder):
    "Run in the subprocess: featurize once, counting featurizer calls."
    os.environ.setdefault('TQDM_DISABLE', '1')
    import datasets
    datasets.disable_progress_bars()
    import itt_xling.features as F
    from itt_xling.models import load_tokenizer
    t0 = time.perf_counter()
    task, ds = task_sample(task_name, n)
    tok = load_tokenizer(encoder(model_name))
    calls = dict(n=0, rows=0)
    fn = F.FEATURIZERS[task.kind]
    def counted(batch, *a, **k):
        calls['n'] += 1; calls['rows'] += len(next(iter(batch.values()))); return fn(batch, *a, **k)
    F.FEATURIZERS[task.kind] = counted
    t = time.perf_counter()
    feats = F.featurize(task, ds, tok, cache=folder)
    t_feat = time.perf_counter() - t
    print(json.dumps(dict(calls=calls['n'], rows=calls['rows'], featurize_s=t_feat, total_s=time.perf_counter() - t0,
                          features=len(feats), fingerprint=feats._fingerprint, ds_fingerprint=ds._fingerprint)))


def run(model_name, task, n, folder):
    cmd = [sys.executable, __file__, '--child', model_name, task, str(n), str(folder)]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode: raise SystemExit(f"featurize run failed:\n{p.stderr[-3000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def main(argv=None):
    if argv is None and len(sys.argv) > 1 and sys.argv[1] == '--child':
        m, t, n, f = sys.argv[2:6]; child(m, t, int(n), f); return 0
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--model', default='me5-small', help=MODEL_HELP)
    p.add_argument('--tasks', default='xnli,udpos', help='xnli, pawsx, udpos, xquad')
    p.add_argument('--n', type=int, default=20000, help='examples per task (capped at the split size)')
    p.add_argument('--reps', type=int, default=1)
    p.add_argument('--quick', action='store_true', help='tiny model, one task, 200 examples, 1 rep')
    a = p.parse_args(argv)
    if a.quick: a.model, a.tasks, a.n, a.reps = 'tiny-xlmr', 'xnli', 200, 1
    header('tokenization cache: cold vs warm (second) run of featurize, each in a fresh process')
    encoder(a.model)
    rows = []
    for task in a.tasks.split(','):
        cold, warm = [], []
        for _ in range(a.reps):
            folder = Path(tempfile.mkdtemp(prefix='itt-bench-cache-'))
            try:
                cold.append(run(a.model, task, a.n, folder)); warm.append(run(a.model, task, a.n, folder))
            finally: shutil.rmtree(folder, ignore_errors=True)
        c, w = cold[-1], warm[-1]
        rows.append(dict(task=task, examples=c['rows'], features=c['features'],
                         **{'cold map calls': c['calls'], 'warm map calls': w['calls'],
                            'cold featurize s': median([r['featurize_s'] for r in cold]),
                            'warm featurize s': median([r['featurize_s'] for r in warm]),
                            'cold/warm': median([x['featurize_s'] / y['featurize_s'] for x, y in zip(cold, warm)]),
                            'warm process s': median([r['total_s'] for r in warm]),
                            'same features': c['fingerprint'] == w['fingerprint'] and c['features'] == w['features']}))
        print(f"  {task}: {load()}", flush=True)
    print(table(rows))
    print(f"{load()} at end. Target: warm map calls == 0 (tokenization skipped entirely).")
    return 0


if __name__ == '__main__':
    sys.exit(main())
