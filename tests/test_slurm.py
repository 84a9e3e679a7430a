"""The local one-node Slurm (tools/slurm_local.sh) runs real jobs: output files, `afterok` dependencies, `scancel`."""
import os, subprocess, time
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parent.parent
DONE = {'COMPLETED', 'FAILED', 'CANCELLED', 'TIMEOUT', 'NODE_FAIL', 'OUT_OF_MEMORY', 'BOOT_FAIL', 'DEADLINE', 'PREEMPTED'}

def sh(*args):
    r = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, f'{args}: {r.stderr}'
    return r.stdout.strip()

def submit(folder, cmd, *opts):
    "Submit `cmd` as a batch job running in `folder` (output in folder/slurm-ID.out); return the job id."
    return sh('sbatch', '--parsable', '--chdir', str(folder), '--output', str(folder/'slurm-%j.out'), *opts, '--wrap', cmd).split(';')[0]

def job(jid):
    "The job's fields from `scontrol show job` (kept after the end for MinJobAge; no accounting needed)."
    out = sh('scontrol', 'show', 'job', '--oneliner', jid)
    return dict(kv.split('=', 1) for kv in out.split() if '=' in kv)

def wait(jid, until=lambda j: j['JobState'] in DONE, timeout=60):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        j = job(jid)
        if until(j): return j
        time.sleep(0.2)
    raise AssertionError(f'job {jid} still {j["JobState"]} ({j["Reason"]}) after {timeout}s')

def state(jid):
    j = job(jid); return j['JobState'], j['Reason']

def test_refuses_a_configured_cluster(tmp_path):
    "The script never runs next to a real cluster: a SLURM_CONF pointing elsewhere is refused before anything starts."
    env = dict(os.environ, SLURM_CONF=str(tmp_path/'slurm.conf'), ITT_SLURM_DIR=str(tmp_path/'state'))
    r = subprocess.run(['bash', str(ROOT/'tools'/'slurm_local.sh'), 'start'], capture_output=True, text=True, env=env)
    assert r.returncode == 1 and 'refusing' in r.stderr and not (tmp_path/'state').exists()

def test_status(slurm):
    out = sh('bash', str(ROOT/'tools'/'slurm_local.sh'), 'status')
    assert 'slurmctld: running' in out and 'slurmd: running' in out and 'munged: running' in out
    assert f'export SLURM_CONF={slurm}' in out

def test_job_runs_and_writes_output(slurm, tmp_path):
    jid = submit(tmp_path, 'echo hello from $SLURM_JOB_ID')
    assert wait(jid)['JobState'] == 'COMPLETED'
    assert (tmp_path/f'slurm-{jid}.out').read_text().strip() == f'hello from {jid}'

def test_afterok_holds_child_until_parent_finishes(slurm, tmp_path):
    parent = submit(tmp_path, 'sleep 2; touch parent.done')
    child = submit(tmp_path, 'test -e parent.done && echo saw parent', f'--dependency=afterok:{parent}')
    wait(parent, lambda j: j['JobState'] == 'RUNNING')
    states = [('parent running', state(parent), 'child', state(child))]
    assert states[0][3] == ('PENDING', 'Dependency')
    wait(child)
    states.append(('parent done', state(parent), 'child', state(child)))
    print(states)
    assert states[1][1][0] == states[1][3][0] == 'COMPLETED'
    assert (tmp_path/f'slurm-{child}.out').read_text().strip() == 'saw parent'

def test_failing_parent_never_runs_child(slurm, tmp_path):
    "A failed parent: an afterok child stays PENDING (DependencyNeverSatisfied), or is cancelled with --kill-on-invalid-dep."
    parent = submit(tmp_path, 'exit 3')
    held = submit(tmp_path, 'touch held.ran', f'--dependency=afterok:{parent}')
    killed = submit(tmp_path, 'touch killed.ran', f'--dependency=afterok:{parent}', '--kill-on-invalid-dep=yes')
    assert wait(parent)['ExitCode'] == '3:0'
    held_j = wait(held, lambda j: j['Reason'] == 'DependencyNeverSatisfied')
    killed_j = wait(killed)
    print({'parent': state(parent), 'held': state(held), 'killed': state(killed)})
    assert state(parent) == ('FAILED', 'NonZeroExitCode') and held_j['JobState'] == 'PENDING'
    assert killed_j['JobState'] == 'CANCELLED' and killed_j['Reason'] == 'DependencyNeverSatisfied'
    sh('scancel', held)
    assert wait(held)['JobState'] == 'CANCELLED'
    assert not (tmp_path/'held.ran').exists() and not (tmp_path/'killed.ran').exists()

def test_scancel_stops_a_running_job(slurm, tmp_path):
    jid = submit(tmp_path, 'echo started; sleep 300; echo not cancelled')
    wait(jid, lambda j: j['JobState'] == 'RUNNING')
    t0 = time.monotonic()
    sh('scancel', jid)
    assert wait(jid, timeout=30)['JobState'] == 'CANCELLED' and time.monotonic() - t0 < 30
    assert 'not cancelled' not in (tmp_path/f'slurm-{jid}.out').read_text()
