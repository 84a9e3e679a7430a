"""`itt-xling sweep` against a real scheduler: the local one-node Slurm of tools/slurm_local.sh (fixture `slurm`).
The smoke plan as one CPU job per stage gives the results of `itt-xling run smoke`; a cancelled job resumes from its
checkpoint when the same sweep is run again; a failing job is reported and Slurm cancels the job waiting for it;
jobs finishing together lose no row of results.csv; `--status` follows it all. Each sweep test takes about a minute."""
import csv, shutil, subprocess, sys, time
from pathlib import Path
import pytest
from itt_xling.cli import main
from itt_xling.sweep import read_jobs, stage_states

pytest.importorskip('submitit')

def itt(capsys, *args):
    "Run `itt-xling ARGS` here (the CLI's entry point, in this process); returns (exit status, what it printed)."
    capsys.readouterr()
    rc = main([str(a) for a in args])
    out = capsys.readouterr()
    print(out.out, out.err)
    return rc, out.out + out.err

def slurm_state(jid) -> str:
    out = subprocess.run(['scontrol', 'show', 'job', '--oneliner', str(jid)], capture_output=True, text=True).stdout
    return dict(kv.split('=', 1) for kv in out.split() if '=' in kv).get('JobState', '')

def wait_for(cond, what, timeout=180):
    t0 = time.monotonic()
    while not cond():
        assert time.monotonic() - t0 < timeout, f'timed out waiting for {what}'
        time.sleep(0.2)

SWEEP = ['--executor', 'slurm', '--gpus', '0', '--poll', '1']

def test_sweep_smoke_on_slurm_equals_run(slurm, data_dir, tmp_path, capsys):
    "One job per stage, the target after its intermediate's job (afterok), every job's logs in the run folder, and the gathered results.csv equal to `itt-xling run smoke`'s."
    out, ref = tmp_path/'sweep', tmp_path/'run'
    rc, log = itt(capsys, 'sweep', 'smoke', *SWEEP, '--data-dir', data_dir, '--out', out, '--wait')
    assert rc == 0, log
    jobs = read_jobs(out)
    inter, tgt = [next(s for s in jobs if s.startswith(p)) for p in ('rte-s1-', 'rte.pawsx-s1-')]
    assert len(jobs) == len({j['job'] for j in jobs.values()}) == 4                     # one job per stage
    assert jobs[tgt]['after'] == jobs[inter]['job'] and all(j['after'] is None for s, j in jobs.items() if s != tgt)
    assert f"{tgt} pending (waits for job {jobs[inter]['job']})" in log
    for j in jobs.values(): assert (out/'.submitit'/j['job']/f"{j['job']}_0_log.out").is_file()
    assert {p.name for p in out.iterdir()} == {*jobs, 'results.csv', '.results.lock', 'sweep.json', '.submitit'}   # jobs write their stage folder only
    rows = list(csv.DictReader(open(out/'results.csv')))
    assert inter in {r['stage'] for r in rows if r['target'] == 'tatoeba'}              # retrieval off the intermediate checkpoint
    assert itt(capsys, 'run', 'smoke', '--data-dir', data_dir, '--out', ref)[0] == 0
    assert (out/'results.csv').read_text() == (ref/'results.csv').read_text()
    rc, status = itt(capsys, 'sweep', 'smoke', '--out', out, '--data-dir', data_dir, '--status')
    assert rc == 0 and status.strip().endswith('4 stages: 4 done')

RESUME = """name: resume
model: tiny-xlmr
intermediate: [rte]
target: [tatoeba]
langs: {tatoeba: [de, sw]}
max_train_examples: 128
max_eval_examples: 16
train: {epochs: 3, lr: 1.0e-3, batch_size: 16, max_length: 64}
"""

def test_cancel_and_resume(slurm, data_dir, tmp_path, capsys):
    """`scancel` of a running stage after its first checkpoint, then the same sweep again: the finished stage is skipped, the
    cancelled one resumes from its checkpoint, and the results equal an uninterrupted run. (Checkpoints at epoch ends,
    the default: a resume from a checkpoint within an epoch does not reproduce the uninterrupted run yet.)"""
    plan, out, ref = tmp_path/'resume.yaml', tmp_path/'sweep', tmp_path/'run'
    plan.write_text(RESUME)
    args = ['sweep', plan, *SWEEP, '--data-dir', data_dir, '--out', out]
    assert itt(capsys, *args)[0] == 0
    jobs = read_jobs(out)
    inter = next(s for s in jobs if s.startswith('rte-s1-'))
    base = next(s for s in jobs if s != inter)
    ckpts = out/inter/'checkpoints'
    wait_for(lambda: any(ckpts.glob('checkpoint-*/trainer_state.json')), 'a checkpoint of the intermediate stage')
    # scancel gives a job a few seconds (submitit ignores its SIGTERM): long enough for this tiny stage to finish; a
    # SIGKILL to the job's step first stops it where it is
    subprocess.run(['scancel', '--signal=KILL', jobs[inter]['job'] + '.0'], check=True)
    subprocess.run(['scancel', jobs[inter]['job']], check=True)
    wait_for(lambda: slurm_state(jobs[inter]['job']) == 'CANCELLED' and (out/base/'metrics.json').exists(), 'the cancel and the baseline')
    assert not (out/inter/'metrics.json').exists()
    rc, status = itt(capsys, 'sweep', plan, '--out', out, '--data-dir', data_dir, '--status')
    assert f"{inter}  " in status and 'cancelled' in status and 'CANCELLED' in status and '1 done, 1 cancelled' in status
    rc, log = itt(capsys, *args, '--wait')
    assert rc == 0 and f'{base}: done, skipped' in log
    again = read_jobs(out)[inter]['job']
    assert again != jobs[inter]['job'] and 'resuming from checkpoint-' in (out/'.submitit'/again/f'{again}_0_log.out').read_text()
    assert itt(capsys, 'run', plan, '--data-dir', data_dir, '--out', ref)[0] == 0
    assert (out/'results.csv').read_text() == (ref/'results.csv').read_text()

FAIL = """name: fail
model: tiny-xlmr
intermediate: [rte]
target: [pawsx]
baseline: false
train_on_dev: [pawsx]
max_train_examples: 32
max_eval_examples: 16
train: {epochs: 1, batch_size: 16, max_length: 64}
"""

def test_failing_job_is_reported(slurm, data_dir, tmp_path, capsys):
    "Bad data for the intermediate stage: its job fails, the sweep names the stage, the job and the log's last line, and Slurm cancels the target job waiting for it."
    bad = tmp_path/'data'
    (bad/'glue_rte').mkdir(parents=True)
    (bad/'pawsx').symlink_to(Path(data_dir)/'pawsx')
    (bad/'glue_rte'/'train.tsv').write_text('index\tsentence1\n0\tone column only\n')
    shutil.copy(Path(data_dir)/'glue_rte'/'dev.tsv', bad/'glue_rte'/'dev.tsv')
    (tmp_path/'fail.yaml').write_text(FAIL)
    out = tmp_path/'sweep'
    rc, log = itt(capsys, 'sweep', tmp_path/'fail.yaml', *SWEEP, '--data-dir', bad, '--out', out, '--wait')
    jobs = read_jobs(out)
    inter, tgt = [next(s for s in jobs if s.startswith(p)) for p in ('rte-s1-', 'rte.pawsx-s1-')]
    assert rc == 1
    assert f"FAILED: {inter} (job {jobs[inter]['job']}): itt_xling.core.ITTError: glue_rte/train.tsv:1: header" in log
    assert f"Slurm cancelled the stages waiting for it (afterok): {tgt} (job {jobs[tgt]['job']})" in log
    assert slurm_state(jobs[tgt]['job']) == 'CANCELLED' and not (out/tgt).exists()
    states = {r['stage']: r['state'] for r in stage_states(tmp_path/'fail.yaml', out)}
    assert states == {inter: 'failed', tgt: 'cancelled'}

MERGER = """
import sys, time
from pathlib import Path
from itt_xling.core import write_json
from itt_xling.rundir import merge_results
out, tag, n = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
def barrier(name):
    (out/f'{name}-{tag}').touch()
    while len(list(out.glob(f'{name}-*'))) < 2: time.sleep(0.001)
barrier('ready')
for k in range(n):
    if k == n - 1: barrier('last')                                  # the two jobs finish their last stage together
    write_json(out/f'{tag}{k}'/'metrics.json', {'rows': [dict(run='c', stage=f'{tag}{k}', lang='en', metric='accuracy', value=k)]})
    merge_results(out)
"""

def test_jobs_finishing_together_lose_no_row(slurm, tmp_path):
    "Two jobs write 20 stages each into one run folder at the same time, each rebuilding results.csv after every stage, and finish together: no row is lost."
    out = tmp_path/'run'
    for tag in 'ab':
        for k in range(20): (out/f'{tag}{k}').mkdir(parents=True)
    script = tmp_path/'merger.py'; script.write_text(MERGER)
    ids = [subprocess.run(['sbatch', '--parsable', '--chdir', str(tmp_path), '--output', str(tmp_path/f'{tag}.log'),
                           '--wrap', f'{sys.executable} {script} {out} {tag} 20'], capture_output=True, text=True, check=True).stdout.strip()
           for tag in 'ab']
    wait_for(lambda: all(slurm_state(j) not in ('PENDING', 'RUNNING', 'COMPLETING') for j in ids), 'the two jobs')
    assert [slurm_state(j) for j in ids] == ['COMPLETED'] * 2, [(tmp_path/f'{t}.log').read_text() for t in 'ab']
    stages = sorted(r['stage'] for r in csv.DictReader(open(out/'results.csv')))
    assert stages == sorted(f'{t}{k}' for t in 'ab' for k in range(20))

TWO = """name: two
model: tiny-xlmr
baseline: false
intermediate: [rte]
target: [pawsx]
split: validation
train_on_dev: [pawsx]
langs: {pawsx: [en, de]}
max_train_examples: 64
max_eval_examples: 32
train: {epochs: 1, lr: 1.0e-3, batch_size: 16, max_length: 64}
"""

@pytest.mark.slow   # 85 s; two processes against one are checked in CI by tests/test_distributed.py (torchrun, gloo)
def test_two_process_jobs_equal_one_process(slurm, data_dir, tmp_path, capsys):
    "`--procs 2`: each job launches two training processes (torchrun's launcher, gloo on CPU) in one task; same rows as `itt-xling run`."
    plan, out, ref = tmp_path/'two.yaml', tmp_path/'sweep', tmp_path/'run'
    plan.write_text(TWO)
    rc, log = itt(capsys, 'sweep', plan, *SWEEP, '--procs', '2', '--data-dir', data_dir, '--out', out, '--wait')
    assert rc == 0, log
    for j in read_jobs(out).values():
        assert 'cpus-per-task=2' in (out/'.submitit'/j['job']/f"{j['job']}_submission.sh").read_text()
    assert itt(capsys, 'run', plan, '--data-dir', data_dir, '--out', ref)[0] == 0
    assert (out/'results.csv').read_text() == (ref/'results.csv').read_text()
