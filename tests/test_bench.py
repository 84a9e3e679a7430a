"""Smoke tests of the benchmark scripts: each runs with `--quick` on the tiny model and prints its table (no timings checked).
The five that take 15-50 s each are marked slow (`pytest --slow`)."""
import importlib.util, sys
from pathlib import Path
import pytest

BENCH = Path(__file__).resolve().parent.parent / 'bench'


def script(name):
    "Import bench/<name>.py as a module."
    if str(BENCH) not in sys.path: sys.path.insert(0, str(BENCH))
    spec = importlib.util.spec_from_file_location(f'bench_{name}', BENCH / f'{name}.py')
    mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
    return mod


def rows(text):
    "The rows of the last markdown table in `text`, as dicts of strings."
    blocks, prev = [], False
    for l in text.splitlines():
        is_row = l.startswith('|')
        if is_row and not prev: blocks.append([])
        if is_row: blocks[-1].append(l)
        prev = is_row
    lines = blocks[-1]
    head = [c.strip() for c in lines[0].strip('|').split('|')]
    return [dict(zip(head, (c.strip() for c in l.strip('|').split('|')))) for l in lines[2:]]


def run(name, capsys, *args):
    assert script(name).main(['--quick', *args]) == 0
    out = capsys.readouterr().out
    assert out.startswith('# ') and 'machine: ' in out and 'load ' in out
    return out


@pytest.mark.slow
def test_train_throughput(data_dir, capsys):
    text = run('train_throughput', capsys, '--padding')
    pad = rows(text)  # the last table: positions per real token
    assert {r['task'] for r in pad} == {'tatoeba'}
    assert all(float(r['pad-to-max']) > float(r['random batches (r)']) >= 1 and float(r['length-grouped (a)']) >= 1 for r in pad)
    out = rows(text.split('positions computed per real token')[0])
    assert [r['task'] for r in out] == ['tatoeba']
    for r in out:
        assert float(r['(a) tok/s']) > 0 and float(r['(b) tok/s']) > 0 and float(r['(c) tok/s']) > 0
        assert 0 <= float(r['pad % (a)']) < 100 and r['pad_to'] in ('256', '512')


@pytest.mark.slow
def test_eval_throughput(data_dir, capsys):
    out = rows(run('eval_throughput', capsys))
    assert 'stages.evaluate_stage' in [r['path'] for r in out]
    for r in out:
        assert int(r['langs']) >= 2 and float(r['speed-up']) > 0
        assert float(r['max acc diff']) < 1e-6  # itt_xling and the naive loop scored the same examples alike


def test_retrieval(data_dir, capsys):
    out = rows(run('retrieval', capsys))
    assert {r['what'].split()[0] for r in out} == {'tatoeba', 'bucc'}
    assert all(r['same result'] == 'True' for r in out)  # faiss and numpy agree


@pytest.mark.slow
def test_memory(data_dir, capsys):
    (r,) = rows(run('memory', capsys))
    assert int(r['full MiB']) > 0 and int(r['LoRA MiB']) > 0
    assert abs(float(r['LoRA/full']) - int(r['LoRA MiB']) / int(r['full MiB'])) < 0.01


@pytest.mark.slow
def test_cache(data_dir, capsys):
    (r,) = rows(run('cache', capsys))
    assert int(r['cold map calls']) > 0 and r['warm map calls'] == '0'  # the second run tokenizes nothing
    assert r['same features'] == 'True'


def test_gpu_mfu(capsys):
    import torch
    out = run('gpu_mfu', capsys)
    if not torch.cuda.is_available(): assert 'no CUDA GPU' in out
    else: assert 'MFU' in out


def test_optimizer(capsys):
    (r,) = rows(run('optimizer', capsys))
    assert r['model'] == 'tiny-xlmr' and float(r['fused (adamw_torch_fused) s']) > 0


@pytest.mark.slow
def test_step_overhead(data_dir, capsys):
    "The per-item breakdown runs, and every Trainer variant trains exactly like the package's own setting."
    text = run('step_overhead', capsys)          # --quick: every variant
    out = {r['variant']: r for r in rows(text)}
    assert {'current', 'before', 'torch-clip', 'nan-fill', 'c', 'c+det+clip'} <= set(out)
    for v in ('before', 'torch-clip', 'nan-fill'): assert out[v]['same loss'] == out[v]['same weights'] == 'yes', v
    assert out['c+det+clip']['same weights'] == 'yes'
