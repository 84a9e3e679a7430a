"""Publishing: the package built as a wheel and installed without the source tree (not editable) runs
`itt-xling tasks` and `itt-xling run smoke --dry-run`, and ships its presets, data tables and fixtures.

The wheel is built from a copy of the packaging files (the checkout stays untouched) and installed with
`--no-deps` into a fresh venv. That venv sees the dependencies already installed for the tests through a
`.pth` line naming their site-packages folder: a plain path line, so the `.pth` files inside that folder,
the editable install of itt_xling among them, are not honoured and `import itt_xling` finds the wheel."""
import csv, os, shutil, site, subprocess, sys, sysconfig, zipfile
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGING = ['setup.py', 'pyproject.toml', 'settings.ini', 'README.md', 'LICENSE', 'MANIFEST.in']
SHIPPED = ['presets', 'data', 'fixtures']   # package_data folders in setup.py

def _run(cmd, **kw):
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=120, **kw)
    assert r.returncode == 0, f'{" ".join(map(str, cmd))} failed ({r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}'
    return r.stdout

def _shipped_files():
    "Package-relative paths of every file under the package_data folders, as the checkout has them."
    pkg = ROOT/'itt_xling'
    return sorted(str(p.relative_to(ROOT)).replace(os.sep, '/') for d in SHIPPED for p in (pkg/d).rglob('*')
                  if p.is_file() and '__pycache__' not in p.parts)

@pytest.fixture(scope='module')
def wheel(tmp_path_factory):
    try: import setuptools   # the build backend, used without isolation (offline)
    except ImportError as e: pytest.skip(f'building the wheel needs setuptools ({e})')
    if tuple(int(x) for x in setuptools.__version__.split('.')[:2]) < (70, 1):   # older ones need the wheel package
        try: import wheel as _  # noqa: F401
        except ImportError: pytest.skip(f'building the wheel needs setuptools >= 70.1 or the wheel package (setuptools {setuptools.__version__})')
    src, dist = tmp_path_factory.mktemp('src'), tmp_path_factory.mktemp('dist')
    for f in PACKAGING:
        if (ROOT/f).exists(): shutil.copy2(ROOT/f, src/f)
    shutil.copytree(ROOT/'itt_xling', src/'itt_xling', ignore=shutil.ignore_patterns('__pycache__', '*.pyc'))
    _run([sys.executable, '-m', 'pip', 'wheel', '--no-deps', '--no-build-isolation', '--no-index', '-q', '-w', dist, src])
    wheels = list(dist.glob('itt_xling-*.whl'))
    assert len(wheels) == 1, wheels
    return wheels[0]

def test_wheel_ships_presets_data_and_fixtures(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = _shipped_files()
    assert any('/presets/smoke.yaml' in f for f in expected) and any('/fixtures/' in f for f in expected)
    missing = [f for f in expected if f not in names]
    assert not missing, f'{len(missing)} package data files missing from the wheel, e.g. {missing[:5]}'
    assert 'itt_xling/cli.py' in names and not any(n.startswith(('nbs/', 'tests/')) for n in names)

@pytest.fixture(scope='module')
def venv(wheel, tmp_path_factory):
    "A fresh venv with the wheel installed (no pip of its own: the dependencies' pip is visible through the .pth)."
    v = tmp_path_factory.mktemp('venv')
    _run([sys.executable, '-m', 'venv', '--without-pip', v])
    py = v/('Scripts' if os.name == 'nt' else 'bin')/('python.exe' if os.name == 'nt' else 'python')
    new_site = Path(_run([py, '-c', 'import sysconfig; print(sysconfig.get_paths()["purelib"])']).strip())
    deps = [p for p in dict.fromkeys(site.getsitepackages() + [sysconfig.get_paths()['purelib']]) if Path(p).is_dir()]
    (new_site/'_itt_xling_test_deps.pth').write_text('\n'.join(deps) + '\n')
    # --ignore-installed: pip never touches the itt_xling the test environment has (it is outside this venv anyway)
    _run([py, '-m', 'pip', 'install', '-q', '--no-deps', '--no-index', '--ignore-installed', '--no-warn-script-location', wheel])
    return v, py

def _env():
    env = {k: v for k, v in os.environ.items() if k not in ('PYTHONPATH', 'ITT_XLING_DATA')}
    return env | {'HF_HUB_OFFLINE': '1', 'HF_DATASETS_OFFLINE': '1', 'TRANSFORMERS_OFFLINE': '1', 'TQDM_DISABLE': '1'}

def test_installed_package_is_the_wheel(venv, tmp_path):
    v, py = venv
    where = Path(_run([py, '-c', 'import itt_xling; print(itt_xling.__file__)'], cwd=tmp_path, env=_env()).strip())
    assert v in where.parents and ROOT not in where.parents, where

def test_installed_command_runs_outside_the_checkout(venv, tmp_path):
    v, _ = venv
    exe = v/('Scripts' if os.name == 'nt' else 'bin')/'itt-xling'
    assert exe.exists(), 'the wheel installed no itt-xling console script'
    tasks = _run([exe, 'tasks'], cwd=tmp_path, env=_env())
    assert 'xnli' in tasks and 'tatoeba' in tasks
    plan = _run([exe, 'run', 'smoke', '--dry-run'], cwd=tmp_path, env=_env())
    assert 'plan smoke' in plan and 'stages' in plan
    assert not any(tmp_path.iterdir()), 'a dry run wrote files'

def test_installed_command_runs_the_smoke_plan(venv, data_dir, tmp_path):
    "The whole pipeline from the wheel: `itt-xling run smoke` on the local data folder (about 40 s on 2 CPU cores)."
    v, _ = venv
    exe = v/('Scripts' if os.name == 'nt' else 'bin')/'itt-xling'
    _run([exe, 'run', 'smoke', '--data-dir', data_dir, '--out', tmp_path/'smoke'], cwd=tmp_path, env=_env())
    with open(tmp_path/'smoke'/'results.csv', newline='') as f: rows = list(csv.DictReader(f))
    assert len(rows) > 10 and {'pawsx', 'tatoeba'} <= {r['target'] for r in rows}
    assert {r['intermediate'] for r in rows} == {'none', 'rte'}
