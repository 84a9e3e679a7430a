"""core: temporary names, the folder swap and its fallback, the umask, `flat`, the `--data-dir` text."""
import os, subprocess, sys
from pathlib import Path
import pytest

from itt_xling import core
from itt_xling.core import atomic_dir, atomic_write, clean_partial, flat, write_text, DATA_DIR_HELP, DATA_ENV

ROOT = Path(__file__).resolve().parent.parent


def _no_exchange(a, b): raise OSError(38, 'not here')   # ENOSYS: a platform or file system without renameat2


def test_import_leaves_the_umask_alone():
    "Importing the package reads nothing process-wide: the umask is never touched."
    code = 'import os; os.umask = None; import itt_xling.core, itt_xling.load, itt_xling.encoders; print("ok")'
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert out.stdout.strip() == 'ok', out.stderr[-800:]


@pytest.mark.parametrize('umask', [0o022, 0o077, 0o002])
def test_modes_follow_the_umask_of_the_moment(tmp_path, umask):
    old = os.umask(umask)
    try:
        f = write_text(tmp_path/'a.csv', 'x\n')
        with atomic_dir(tmp_path/'d') as t: (t/'x').write_text('1')
    finally: os.umask(old)
    assert (f.stat().st_mode & 0o777, (tmp_path/'d').stat().st_mode & 0o777) == (0o666 & ~umask, 0o777 & ~umask)


def test_temporary_names_are_hidden_and_unique(tmp_path):
    seen = set()
    for _ in range(50):
        t, fd = core._temp_beside(tmp_path/'r.csv', lambda p: os.open(p, core._NEW_FILE, 0o666)); os.close(fd)
        assert t.name.startswith('.r.csv.') and t.name.endswith('.tmp') and t not in seen
        seen.add(t)
    assert len(list(tmp_path.iterdir())) == 50 and len(clean_partial(tmp_path)) == 50


@pytest.mark.skipif(sys.platform != 'linux', reason='renameat2 is Linux-only')
def test_exchange_swaps_two_folders(tmp_path):
    a, b = tmp_path/'a', tmp_path/'b'
    a.mkdir(); b.mkdir(); (a/'x').write_text('a'); (b/'x').write_text('b')
    try: core._exchange(a, b)
    except OSError as e: pytest.skip(f'this file system has no RENAME_EXCHANGE ({e})')
    assert ((a/'x').read_text(), (b/'x').read_text()) == ('b', 'a')


@pytest.mark.parametrize('exchange', ['native', 'fallback'])
def test_atomic_dir_replaces_a_folder(tmp_path, monkeypatch, exchange):
    if exchange == 'fallback': monkeypatch.setattr(core, '_exchange', _no_exchange)
    d = tmp_path/'pred'
    for v in ('v1', 'v2', 'v3'):
        with atomic_dir(d) as t: (t/'a.tsv').write_text(v)
    assert (d/'a.tsv').read_text() == 'v3' and [p.name for p in tmp_path.iterdir()] == ['pred']


def test_fallback_cut_between_its_two_renames_is_restored(tmp_path, monkeypatch):
    "Without the exchange, a crash after moving the old folder aside leaves `.NAME.old`; `clean_partial` and the next `atomic_dir` put it back."
    monkeypatch.setattr(core, '_exchange', _no_exchange)
    d = tmp_path/'pred'
    with atomic_dir(d) as t: (t/'a.tsv').write_text('v1')
    (tmp_path/'.pred.1a2b3c4d.tmp').mkdir()              # the new version, complete, not yet renamed in
    os.replace(d, tmp_path/'.pred.old')                  # the old one, moved aside by the first rename
    assert not d.exists() and clean_partial(tmp_path) == ['.pred.1a2b3c4d.tmp'] and (d/'a.tsv').read_text() == 'v1'
    os.replace(d, tmp_path/'.pred.old')                  # the same state, now recovered by the next write
    with atomic_dir(d) as t: (t/'a.tsv').write_text('v2')
    assert (d/'a.tsv').read_text() == 'v2' and sorted(p.name for p in tmp_path.iterdir()) == ['pred']


def test_fallback_failure_in_the_second_rename_puts_the_old_folder_back(tmp_path, monkeypatch):
    monkeypatch.setattr(core, '_exchange', _no_exchange)
    d = tmp_path/'pred'
    with atomic_dir(d) as t: (t/'a.tsv').write_text('v1')
    real = os.replace
    def second_fails(a, b):
        if Path(a).name.endswith('.tmp'): raise PermissionError(13, 'denied', str(b))
        return real(a, b)
    monkeypatch.setattr(core.os, 'replace', second_fails)
    with pytest.raises(PermissionError):
        with atomic_dir(d) as t: (t/'a.tsv').write_text('v2')
    monkeypatch.setattr(core.os, 'replace', real)
    assert (d/'a.tsv').read_text() == 'v1' and sorted(p.name for p in tmp_path.iterdir()) == ['pred']


def test_atomic_write_binary(tmp_path):
    with atomic_write(tmp_path/'w.bin', 'wb') as f: f.write(b'\x00\n\x01')
    assert (tmp_path/'w.bin').read_bytes() == b'\x00\n\x01'


@pytest.mark.parametrize('d, kw, want', [
    ({}, {}, {}),
    (None, {}, {}),
    ({'a': 1}, {}, {'a': 1}),
    ({'a': {'b': {'c': 1}}, 'd': 2}, {}, {'a.b.c': 1, 'd': 2}),
    ({'a': {}}, {}, {'a': {}}),                                   # an empty dict stays a value
    ({'a': [1, 2]}, {}, {'a': [1, 2]}),
    ({'a': {'b': (1, 'x')}}, dict(join=','), {'a.b': '1,x'}),
    ({'a': {'b': 1}}, dict(pre='cfg.'), {'cfg.a.b': 1}),
])
def test_flat(d, kw, want):
    assert flat(d, **kw) == want


def test_data_dir_help_says_the_rule():
    for part in (f'${DATA_ENV}', 'shared/data', 'hub'): assert part in DATA_DIR_HELP
    assert '%' not in DATA_DIR_HELP    # argparse formats help strings with %
