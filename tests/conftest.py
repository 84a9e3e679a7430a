"""Shared fixtures: the local data folder (skip cleanly where it is absent) and offline hub settings."""
import os
from pathlib import Path
import pytest

os.environ.setdefault('HF_HUB_OFFLINE', '1')
os.environ.setdefault('HF_DATASETS_OFFLINE', '1')
os.environ.setdefault('TRANSFORMERS_OFFLINE', '1')

ROOT = Path(__file__).resolve().parent.parent

def _data_dir():
    return Path(os.environ.get('ITT_XLING_DATA', ROOT.parent/'shared'/'data'))

@pytest.fixture(scope='session')
def data_dir():
    d = _data_dir()
    if not d.is_dir(): pytest.skip(f'local data folder not found ({d}); set ITT_XLING_DATA')
    return d

SLURM_LOCAL = ROOT/'tools'/'slurm_local.sh'

def _slurm_local(cmd, **kw):
    import subprocess
    return subprocess.run(['bash', str(SLURM_LOCAL), cmd], capture_output=True, text=True, **kw)

@pytest.fixture(scope='session')
def slurm():
    """A one-node Slurm on this machine (tools/slurm_local.sh), started once per session and stopped at its end
    when this fixture started it; yields the SLURM_CONF path, also set in os.environ for the session.
    Skips with the reason where it cannot start (not Linux, no root to install it, a real cluster configured, ...);
    set ITT_SLURM=0 to skip these tests."""
    import shutil, sys
    if os.environ.get('ITT_SLURM') == '0': pytest.skip('ITT_SLURM=0: local Slurm tests switched off')
    if not sys.platform.startswith('linux') or not shutil.which('bash'): pytest.skip('local Slurm needs Linux and bash')
    was_running = _slurm_local('status').returncode == 0
    r = _slurm_local('start', timeout=600)
    try:
        lines = [l for l in r.stdout.splitlines() if l.startswith('export SLURM_CONF=')]
        if r.returncode != 0 or not lines:
            pytest.skip('local Slurm could not be started: ' + (r.stderr.strip().splitlines() or ['no message'])[-1])
        conf = lines[-1].split('=', 1)[1]
        old = os.environ.get('SLURM_CONF')
        os.environ['SLURM_CONF'] = conf
        try: yield conf
        finally:
            if old is None: os.environ.pop('SLURM_CONF', None)
            else: os.environ['SLURM_CONF'] = old
    finally:
        if not was_running: _slurm_local('stop', timeout=120)

# --- tests that only `--slow` (or ITT_SLOW=1) runs --------------------------------------------------------------------
# Marked `@pytest.mark.slow`: long measurements whose quick forms the default run already covers (the benchmark scripts'
# memory and cache tables). The default run (the README's test command, CI) skips them and says so.

def pytest_addoption(parser):
    parser.addoption('--slow', action='store_true', default=False, help='also run the tests marked slow')

def pytest_configure(config):
    config.addinivalue_line('markers', 'slow: long; runs with --slow or ITT_SLOW=1')

def pytest_collection_modifyitems(config, items):
    if config.getoption('--slow') or os.environ.get('ITT_SLOW') == '1': return
    skip = pytest.mark.skip(reason='slow: run with --slow (or ITT_SLOW=1)')
    for item in items:
        if 'slow' in item.keywords: item.add_marker(skip)
