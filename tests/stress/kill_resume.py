"""Kill-and-resume stress test for `itt-xling run`.

Runs a plan once without interruption (the reference), then, for each trial, runs it again in a fresh
folder, SIGKILLs the process at random moments (while tokenizing, mid-epoch, while a checkpoint or the
final model is being saved, while predictions are written, or after a random delay), restarts it with
`--resume` until it finishes, and compares the final `results.csv` with the reference value by value.
After every kill it also checks that no file under its final name is partial (every JSON, JSON-lines,
YAML and CSV file parses).

    python tests/stress/kill_resume.py --trials 10 [--plan smoke] [--data-dir DIR] [--seed 0] [--json OUT]

Exit status 0 when every trial reproduces the reference exactly.
"""
from __future__ import annotations
import argparse, csv, json, os, random, shutil, signal, subprocess, sys, tempfile, time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]

# A lean two-stage plan (RTE -> PAWS-X, three languages) for the quick version run by the test suite.
LEAN_PLAN = """\
name: stress
description: two-stage chain for the kill-and-resume test
model: tiny-xlmr
seeds: [1]
baseline: false
intermediate: [rte]
target: [pawsx]
langs: {pawsx: [en, de, fr]}
split: validation
train_on_dev: [pawsx]
max_train_examples: 48
max_eval_examples: 24
train: {epochs: 2, lr: 1.0e-3, batch_size: 8, max_length: 64}
"""

TRIGGERS = ('tokenize', 'train', 'checkpoint', 'model', 'evaluate', 'random')


def itt_command() -> list[str]:
    "The `itt-xling` console script beside this Python, or the same entry point through `-c`."
    exe = Path(sys.executable).parent/'itt-xling'
    return [str(exe)] if exe.exists() else [sys.executable, '-c', 'import sys; from itt_xling.cli import main; sys.exit(main())']


def run_env(cache:Path) -> dict:
    "Offline, single-threaded environment with a private cache (fresh tokenized features, shared built models)."
    env = dict(os.environ, HF_HUB_OFFLINE='1', HF_DATASETS_OFFLINE='1', TRANSFORMERS_OFFLINE='1', OMP_NUM_THREADS='1',
               MKL_NUM_THREADS='1', TOKENIZERS_PARALLELISM='false', ITT_XLING_CACHE=str(cache))
    shared = Path(os.environ.get('ITT_XLING_CACHE', Path.home()/'.cache'/'itt_xling')).expanduser()
    cache.mkdir(parents=True, exist_ok=True)
    for sub in ('models', 'build'):                       # building the encoders is not what is being tested
        (shared/sub).mkdir(parents=True, exist_ok=True)
        if not (cache/sub).exists(): (cache/sub).symlink_to(shared/sub, target_is_directory=True)
    return env


def _new_lines(path:Path, start:int) -> str:
    try:
        with open(path, 'rb') as f: f.seek(start); return f.read().decode('utf-8', 'replace')
    except OSError: return ''


def _unfinished(out:Path) -> list[Path]:
    return [d for d in out.iterdir() if d.is_dir() and not d.name.startswith('.') and not (d/'metrics.json').exists()] if out.is_dir() else []


def _mtimes(d:Path) -> set:
    "(name, mtime) of the files in `d`, temporary ones included; a file renamed or removed while we look is left out."
    out = set()
    for p in (d.iterdir() if d.is_dir() else ()):
        try: out.add((p.name, p.stat().st_mtime_ns))
        except FileNotFoundError: pass
    return out


def _snapshot(sd:Path) -> dict:
    "What a stage folder holds now: log lines, checkpoints, temporary model folders, prediction files."
    return dict(log=len(_new_lines(sd/'log.jsonl', 0).splitlines()), ck={p.name for p in (sd/'checkpoints').glob('checkpoint-*')},
                tmp={p.name for p in sd.glob('.model.*.tmp')}, preds=_mtimes(sd/'predictions'))


def _fired(trigger:str, out:Path, err_text:str, t:float, delay:float, seen:dict) -> bool:
    "Whether the condition of `trigger` newly holds (`seen` keeps each stage folder as it was when the attempt started)."
    if trigger == 'random': return t >= delay
    if trigger == 'tokenize': return 'tokenize ' in err_text
    for sd in _unfinished(out):
        now, before = _snapshot(sd), seen.setdefault(sd.name, _snapshot(sd))
        if trigger == 'train' and now['log'] > before['log']: return True
        if trigger == 'checkpoint' and now['ck'] - before['ck']: return True
        if trigger == 'model' and now['tmp'] - before['tmp']: return True
        if trigger == 'evaluate' and now['preds'] - before['preds']: return True
    return False


def _phase(out:Path, err_text:str, seen:dict) -> str:
    "What the run was doing when it was killed, judged from what changed on disk and the last output."
    for sd in _unfinished(out):
        now, before = _snapshot(sd), seen.get(sd.name) or dict(log=0, ck=set(), tmp=set(), preds=set())
        for c in sorted(now['ck'] - before['ck']):
            try: json.loads((sd/'checkpoints'/c/'trainer_state.json').read_text())
            except (OSError, ValueError): return f'{sd.name}: saving {c} (incomplete)'
        if now['tmp'] - before['tmp']: return f'{sd.name}: saving the final model'
        if now['preds'] - before['preds']: return f'{sd.name}: zero-shot evaluation'
        if (sd/'model').is_dir(): return f'{sd.name}: after saving the model'
        if (sd/'log.jsonl').exists(): return f'{sd.name}: training (step {len((sd/"log.jsonl").read_text().splitlines())} logged)'
        tail = err_text[-400:]
        if 'tokenize ' in tail: return f'{sd.name}: tokenizing'
        return f'{sd.name}: setting up'
    return 'between stages' if out.is_dir() else 'starting up'


def check_integrity(out:Path) -> list[str]:
    "Problems with files under their final names: every JSON / JSON-lines / YAML / CSV file must parse in full."
    bad = []
    for p in sorted(out.rglob('*')) if out.is_dir() else []:
        if not p.is_file() or any(part.startswith('.') for part in p.relative_to(out).parts): continue
        if 'checkpoints' in p.relative_to(out).parts: continue   # the Trainer's own files; incomplete checkpoints are discarded on resume
        try:
            if p.suffix == '.json': json.loads(p.read_text())
            elif p.suffix == '.jsonl':
                text = p.read_text()
                if text and not text.endswith('\n'): raise ValueError('no final newline')
                for line in text.splitlines(): json.loads(line)
            elif p.suffix == '.yaml': yaml.safe_load(p.read_text())
            elif p.suffix == '.csv':
                rows = list(csv.reader(p.read_text().splitlines()))
                if rows and any(len(r) != len(rows[0]) for r in rows): raise ValueError('ragged rows')
        except (ValueError, yaml.YAMLError, UnicodeDecodeError) as e: bad.append(f'{p.relative_to(out)}: {e}')
    return bad


def attempt(plan:str, out:Path, data_dir, env:dict, log_dir:Path, resume:bool, trigger:str|None=None,
            delay:float=0.0, timeout:float=900) -> dict:
    "Run the plan once; with `trigger`, SIGKILL it when the trigger fires. Returns what happened."
    log_dir.mkdir(parents=True, exist_ok=True)
    k = len(list(log_dir.glob('attempt-*.err')))
    err_path, out_path = log_dir/f'attempt-{k}.err', log_dir/f'attempt-{k}.out'
    cmd = [*itt_command(), 'run', plan, '--out', str(out), *(['--data-dir', str(data_dir)] if data_dir else []), *(['--resume'] if resume else [])]
    seen, t0 = {}, time.time()
    _fired('checkpoint', out, '', 0.0, delay, seen)              # what is on disk before this attempt
    with open(err_path, 'wb') as ferr, open(out_path, 'wb') as fout:
        proc = subprocess.Popen(cmd, stdout=fout, stderr=ferr, env=env, cwd=str(ROOT), start_new_session=True)
        while proc.poll() is None:
            t = time.time() - t0
            if t > timeout:
                os.killpg(proc.pid, signal.SIGKILL); proc.wait()
                return dict(rc='timeout', t=t, trigger=trigger)
            if trigger and _fired(trigger, out, _new_lines(err_path, 0), t, delay, seen):
                if trigger == 'train': time.sleep(random.uniform(0, 0.3))   # somewhere inside the next steps
                os.killpg(proc.pid, signal.SIGKILL); proc.wait()
                return dict(rc='killed', t=round(time.time() - t0, 2), trigger=trigger, phase=_phase(out, _new_lines(err_path, 0), seen),
                            integrity=check_integrity(out))
            time.sleep(0.01)
    rc = proc.returncode
    res = dict(rc=rc, t=round(time.time() - t0, 2), trigger=trigger)
    if rc != 0: res['stderr'] = _new_lines(err_path, 0)[-2000:]
    return res


def read_results(path:Path) -> list[dict]:
    with open(path, newline='') as f: return list(csv.DictReader(f))


def compare(ref:list[dict], got:list[dict]) -> dict:
    "Row-by-row comparison of two results tables: identical rows, and the largest difference of a value."
    key = lambda r: tuple(v for k, v in r.items() if k != 'value')
    a, b = {key(r): r['value'] for r in ref}, {key(r): r['value'] for r in got}
    same = sum(1 for k in a if k in b and a[k] == b[k])
    diff = max([abs(float(a[k]) - float(b[k])) for k in a if k in b] or [0.0])
    return dict(rows=len(ref), rows_got=len(got), identical_rows=same, missing=len(set(a) - set(b)), extra=len(set(b) - set(a)),
                max_abs_diff=diff, identical=len(a) == len(b) == same and len(ref) == len(got))


def resolve_plan(plan:str, work:Path) -> str:
    "A preset name or YAML path as given; 'lean' writes the lean two-stage plan."
    if plan != 'lean': return plan
    p = work/'lean.yaml'; p.write_text(LEAN_PLAN)
    return str(p)


def reference(plan:str, work:Path, data_dir) -> tuple[Path, float]:
    "The uninterrupted run; returns its results.csv and duration."
    out = work/'reference'
    r = attempt(plan, out, data_dir, run_env(work/'reference-cache'), work/'reference-logs', resume=False)
    if r['rc'] != 0: raise RuntimeError(f"reference run failed (rc {r['rc']}):\n{r.get('stderr', '')}")
    return out/'results.csv', r['t']


def trial(i:int, plan:str, work:Path, data_dir, ref_rows:list[dict], t_ref:float, rng:random.Random,
          kills:tuple[int, int]=(2, 4), max_attempts:int=12) -> dict:
    "One trial: kill at random moments, resume until done, compare with the reference."
    out, logs = work/f'trial-{i}', work/f'trial-{i}-logs'
    env = run_env(work/f'trial-{i}-cache')                   # fresh features cache: tokenization happens in every trial
    triggers = rng.sample(TRIGGERS, rng.randint(*kills))
    rng.shuffle(triggers)
    events, t0, problems = [], time.time(), []
    for n, trig in enumerate(triggers):
        r = attempt(plan, out, data_dir, env, logs, resume=n > 0, trigger=trig, delay=rng.uniform(0.2, 0.9) * t_ref)
        events.append(r)
        problems += r.get('integrity', [])
        if r['rc'] != 'killed': break                        # it finished (or failed) before the trigger fired
    attempts = len(events)
    while events[-1]['rc'] == 'killed' and attempts < max_attempts:
        r = attempt(plan, out, data_dir, env, logs, resume=True); events.append(r); attempts += 1
    done = events[-1]['rc'] == 0
    cmp = compare(ref_rows, read_results(out/'results.csv')) if done and (out/'results.csv').exists() else dict(identical=False)
    problems += check_integrity(out)
    tmp_left = sorted(str(p.relative_to(out)) for p in out.rglob('.*.tmp')) if out.is_dir() else []
    tmp_left += sorted(str(p.relative_to(out)) for p in out.rglob('.*.old')) if out.is_dir() else []
    return dict(trial=i, kills=[dict(trigger=e['trigger'], t=e['t'], phase=e.get('phase')) for e in events if e['rc'] == 'killed'],
                missed=[e['trigger'] for e in events if e['trigger'] and e['rc'] != 'killed'],
                attempts=attempts, finished=done, seconds=round(time.time() - t0, 1), compare=cmp, integrity=problems,
                temp_files_left=tmp_left, log_repeats=log_repeats(out) if done else [], error=None if done else events[-1].get('stderr', events[-1]['rc']))


def log_repeats(out:Path) -> list[str]:
    "Steps logged twice in a stage's `log.jsonl` (a resumed run must not log the steps after its checkpoint again)."
    bad = []
    for f in sorted(Path(out).glob('*/log.jsonl')):
        seen = set()
        for line in f.read_text().splitlines():
            r = json.loads(line)
            key = (r['step'], tuple(sorted(r)))
            if key in seen: bad.append(f'{f.parent.name}: step {r["step"]}')
            seen.add(key)
    return bad


def stress(trials:int=10, plan:str='smoke', data_dir=None, seed:int=0, work=None, kills=(2, 4), log=print) -> dict:
    "Reference run plus `trials` kill-and-resume trials; returns a summary (`ok` when every trial is identical)."
    rng = random.Random(seed)
    work = Path(work or tempfile.mkdtemp(prefix='itt-stress-'))
    work.mkdir(parents=True, exist_ok=True)
    plan = resolve_plan(plan, work)
    ref, t_ref = reference(plan, work, data_dir)
    ref_rows = read_results(ref)
    log(f'reference: {len(ref_rows)} rows in {t_ref:.1f} s ({work})')
    out, i = [], 0
    while len(out) < trials and i < 2 * trials:
        r = trial(i, plan, work, data_dir, ref_rows, t_ref, rng, kills); i += 1
        if not r['kills']:                                    # the run ended before its first trigger: not a trial
            log(f"(run {i} finished before its first kill ({r['missed']}); not counted)"); continue
        out.append(r)
        ks = '; '.join(f"{k['trigger']}@{k['t']}s -> {k['phase']}" for k in r['kills'])
        c = r['compare']
        log(f"trial {len(out)}/{trials}: {'IDENTICAL' if c.get('identical') else 'DIFFERENT'} "
            f"({c.get('identical_rows', 0)}/{c.get('rows', len(ref_rows))} rows, max |diff| {c.get('max_abs_diff', 'n/a')}), "
            f"{len(r['kills'])} kills, {r['attempts']} attempts, {r['seconds']} s; {ks}"
            + (f"; missed {r['missed']}" if r['missed'] else '') + (f"; PARTIAL FILES {r['integrity']}" if r['integrity'] else '')
            + (f"; error {r['error']}" if r['error'] else '')
            + (f"; temporary files left {r['temp_files_left']}" if r['temp_files_left'] else '')
            + (f"; steps logged twice {r['log_repeats']}" if r['log_repeats'] else ''))
    n_ok = sum(1 for r in out if r['compare'].get('identical') and not r['integrity'] and not r['temp_files_left'] and not r['log_repeats'])
    return dict(ok=n_ok == trials == len(out), identical=n_ok, trials=len(out), reference_rows=len(ref_rows), reference_seconds=t_ref,
                kills=sum(len(r['kills']) for r in out), plan=plan, work=str(work), results=out)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--trials', type=int, default=10, help='kill-and-resume trials (default 10)')
    p.add_argument('--plan', default='smoke', help="preset or plan YAML (default smoke); 'lean' = a two-stage RTE -> PAWS-X plan")
    p.add_argument('--data-dir', help='local data folder (default: the one the package finds)')
    p.add_argument('--seed', type=int, default=0, help='seed of the kill schedule')
    p.add_argument('--kills', type=int, nargs=2, default=(2, 4), metavar=('MIN', 'MAX'), help='kills per trial (default 2 4)')
    p.add_argument('--work', help='working folder (default: a new temporary one)')
    p.add_argument('--keep', action='store_true', help='keep the working folder')
    p.add_argument('--json', help='write the full summary here')
    a = p.parse_args(argv)
    t0 = time.time()
    s = stress(a.trials, a.plan, a.data_dir, a.seed, a.work, tuple(a.kills))
    s['seconds'] = round(time.time() - t0, 1)
    print(f"{s['identical']}/{s['trials']} trials identical to the uninterrupted run "
          f"({s['kills']} kills, {s['reference_rows']} result rows each, {s['seconds']} s in all)")
    if a.json: Path(a.json).write_text(json.dumps(s, indent=2, default=str))
    if not a.keep and not a.work: shutil.rmtree(s['work'], ignore_errors=True)
    return 0 if s['ok'] else 1


if __name__ == '__main__': sys.exit(main())
