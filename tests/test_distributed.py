"""Several processes on CPU (torchrun, gloo): the same stage decisions on every rank, one writer, the same numbers as one process."""
import csv, json, os, shutil, signal, subprocess, sys, time
from pathlib import Path
import pytest

PLAN = """name: ddp
model: tiny-xlmr
seeds: [1]
baseline: false
intermediate: [rte]
target: [pawsx]
split: validation
train_on_dev: [pawsx]
langs: {pawsx: [en, de]}
max_train_examples: 64
max_eval_examples: 32
train: {epochs: 2, lr: 1.0e-3, batch_size: 16, max_length: 64, save_steps: 2}
"""

# every file the package writes goes through core.atomic_write: log (pid, path) of each write, then run the CLI
AUDIT = """import os, sys, contextlib
import itt_xling.core as core
_write = core.atomic_write
@contextlib.contextmanager
def audited(path, *a, **k):
    with _write(path, *a, **k) as f: yield f
    with open(os.environ['ITT_AUDIT'], 'a') as log: log.write(f"{os.getpid()} {os.path.abspath(path)}\\n")
core.atomic_write = audited
from itt_xling.cli import main
sys.exit(main())
"""

def env(tmp_path):
    return dict(os.environ, OMP_NUM_THREADS='1', TQDM_DISABLE='1', ITT_AUDIT=str(tmp_path/'writes.log'))

def launcher(procs:int, via:str='torchrun') -> list:
    "The command that starts `procs` processes: torchrun, or accelerate's launcher (its multi-GPU launcher is torch's elastic agent, gloo where there is no GPU)."
    exe = lambda name: shutil.which(name, path=str(Path(sys.executable).parent)) or name
    if procs == 1: return [sys.executable]
    if via == 'accelerate':
        return [exe('accelerate'), 'launch', '--multi_gpu', '--num_processes', str(procs), '--num_machines', '1',
                '--mixed_precision', 'no', '--dynamo_backend', 'no', '--main_process_port', '0']
    return [exe('torchrun'), '--nproc_per_node', str(procs)]

def run(tmp_path, data_dir, out, procs:int, extra=(), wait=True, via='torchrun'):
    (tmp_path/'plan.yaml').write_text(PLAN); (tmp_path/'audit.py').write_text(AUDIT)
    cmd = launcher(procs, via) + [str(tmp_path/'audit.py'), 'run', str(tmp_path/'plan.yaml'), '--out', str(out), '--data-dir', str(data_dir), *extra]
    if not wait: return subprocess.Popen(cmd, env=env(tmp_path), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    r = subprocess.run(cmd, env=env(tmp_path), capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    return r

def rows(out): return [(r['stage'], r['lang'], r['metric'], round(float(r['value']), 6), r['n']) for r in csv.DictReader(open(out/'results.csv'))]

def losses(out):
    recs = [json.loads(l) for f in sorted(out.glob('*/log.jsonl')) for l in f.read_text().splitlines()]
    return [r['loss'] for r in recs if 'loss' in r]

@pytest.fixture(scope='module')
def single(tmp_path_factory, data_dir):
    tmp = tmp_path_factory.mktemp('one')
    run(tmp, data_dir, tmp/'out', 1)
    return tmp/'out'

@pytest.mark.parametrize('via', ['torchrun', 'accelerate'])
def test_two_processes_match_one(tmp_path, data_dir, single, via):
    "torchrun or `accelerate launch` with 2 gloo processes: the same result rows as one process, each file written by one process only."
    out = tmp_path/'out'
    run(tmp_path, data_dir, out, 2, via=via)
    assert {json.loads(f.read_text())['train']['processes'] for f in out.glob('*/metrics.json')} == {2}   # really two processes
    assert rows(out) == rows(single)
    # the ranks see the batches one process sees (length groups of the global batch); dropout masks are drawn per
    # process, so losses agree to within dropout noise, not bit for bit
    a, b = losses(single), losses(out)
    assert len(a) == len(b) and max(abs(x - y) for x, y in zip(a, b)) < 0.02
    writes = [l.split() for l in (tmp_path/'writes.log').read_text().splitlines()]
    assert len({pid for pid, _ in writes}) == 1                           # only the main process writes
    per_file = {}
    for _, p in writes: per_file[p] = per_file.get(p, 0) + 1
    twice = {p: n for p, n in per_file.items() if n > 1 and not p.endswith(('results.csv', 'log.jsonl'))}
    assert not twice, twice                                              # results.csv is rebuilt after each stage, by design

def test_kill_and_resume_under_torchrun(tmp_path, data_dir, single):
    "SIGKILL of the whole torchrun job during the target stage, then --resume: the same results as an uninterrupted run."
    out = tmp_path/'out'
    p = run(tmp_path, data_dir, out, 2, wait=False)
    t0 = time.time()
    while not list(out.glob('rte.pawsx-*/checkpoints/checkpoint-*/trainer_state.json')) and p.poll() is None and time.time() - t0 < 600:
        time.sleep(0.2)
    assert p.poll() is None, 'the run ended before it could be killed'
    os.killpg(p.pid, signal.SIGKILL); p.wait()
    assert not list(out.glob('rte.pawsx-*/metrics.json'))                # killed inside the target stage
    run(tmp_path, data_dir, out, 2, extra=['--resume'])
    assert rows(out) == rows(single)
