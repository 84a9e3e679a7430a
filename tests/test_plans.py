"""Plans: YAML errors, expansion into stage chains, presets, dry runs, the CLI and local sweeps."""
import csv
import pytest
from itt_xling.core import ITTError
from itt_xling.plans import load_plan, expand, estimate_cost, describe, presets, with_options, cli_run, cli_sweep

GOOD = "model: tiny-xlmr\nseeds: [1]\nintermediate: [rte]\ntarget: [pawsx, tatoeba]\ntrain_on_dev: [pawsx]\n"

@pytest.mark.parametrize('text,msg', [
    ("target: [xnli\nseeds: [1]\n", "<yaml>:2: malformed YAML: expected ',' or ']'"),
    ("target: [xnli]\nseed: [1]\n", "<yaml>:2: seed: unknown key 'seed'. Did you mean 'seeds'"),
    ("target: [xnli]\nseeds: [one]\n", "<yaml>:2: seeds: expected a list of integers"),
    ("target: xnli\n", "<yaml>:1: target: expected a list, got str"),
    ("target: [xnli]\nbaseline: 3\n", "baseline: expected true/false"),
    ("target: [xnli]\nintermediate: [mlni]\n", "<yaml>:2: intermediate.0: unknown task 'mlni'. Did you mean 'mnli'"),
    ("target: [xnli]\nlangs:\n  xnli: [de, klingon]\n", "<yaml>:3: langs.xnli.1: xnli has no language 'klingon'"),
    ("target: [mnli]\n", "mnli is an intermediate task, not a target"),
    ("target: [xnli]\noverrides:\n  xnli: {lr: fast}\n", "<yaml>:3: overrides.xnli.lr: expected a number"),
    ("target: [xnli]\nlora: {r: 8, strategy: fuse}\n", "strategy: must be one of merge, stack, continue"),
    ("target: [xnli]\nintermediate: [{tasks: [mnli], tagets: [xnli]}]\n", "unknown key 'tagets'. Did you mean 'targets'"),
    ("target: [xcopa]\nintermediate: [{name: r, tasks: [siqa], targets: [xnli]}]\n", "'xnli' is not among the plan's targets"),
])
def test_yaml_errors(text, msg):
    with pytest.raises(ITTError) as e: load_plan(text)
    assert msg in str(e.value)

def test_file_errors(tmp_path):
    f = tmp_path/'p.yaml'; f.write_text("target: [xnli]\nmodell: x\n")
    with pytest.raises(ITTError, match=rf"{f}:2: modell: unknown key 'modell'. Did you mean 'model'"): load_plan(str(f))
    with pytest.raises(ITTError, match="unknown preset 'phang'. Did you mean 'phang2020'"): load_plan('phang')
    with pytest.raises(ITTError, match='does not exist'): load_plan(str(tmp_path/'nope.yaml'))
    with pytest.raises(ITTError, match='data dir .* does not exist'): with_options(GOOD, data_dir=tmp_path/'missing')

def test_expand_chains():
    chains = expand(load_plan(GOOD))
    assert [[s.name for s in c] for c in chains] == [['none', 'none'], ['rte', 'rte']]
    (b0, b1), (i0, i1) = chains
    assert b0.tasks == () and b0.evals == ('tatoeba',) and b1.parent is None           # baseline: pretrained encoder
    assert i0.evals == ('tatoeba',) and i1.parent == i0.id and i1.tasks == ('pawsx',)  # retrieval off the intermediate checkpoint
    assert i1.train_on_dev == ('pawsx',) and i1.heldout_tasks == ('pawsx',)
    assert (i1.lr, i1.warmup_ratio, i1.batch_size, i1.max_length, i1.epochs) == (1e-5, 0.1, 32, 256, 5)  # paper settings (PAWS-X: 5 epochs)
    assert [s.id for c in expand(load_plan(GOOD)) for s in c] == [s.id for c in chains for s in c]  # deterministic ids

def test_overrides_and_qa_defaults():
    p = load_plan("target: [xquad, xnli]\nintermediate: [mnli]\ntrain: {lr: 2.0e-5}\noverrides: {xnli: {epochs: 3}}\n")
    st = {s.id.split('-')[0]: s for c in expand(p) for s in c}
    assert (st['mnli.xquad'].batch_size, st['mnli.xquad'].max_length, st['mnli.xquad'].tasks) == (16, 384, ('squad_v1',))
    assert st['mnli.xnli'].epochs == 3 and st['mnli.xnli'].lr == 2e-5 and st['mnli.xnli'].tasks == ('mnli',)

def test_presets_and_phang_grid(capsys):
    assert {'smoke', 'phang2020', 'xtreme-r-nli'} <= set(presets())
    p = load_plan('phang2020')
    chains = expand(p)
    inter = [s for c in chains for s in c if s.target is None and s.tasks]
    assert len({s.name for s in inter}) == 10 and len(p.seeds) == 3                    # 10 intermediate settings x 3 seeds
    targets = [s for c in chains for s in c if s.target]
    assert len(targets) == 3 * 11 * 7                                                   # 7 trained targets (+ 2 retrieval) per setting
    assert sum(1 for c in chains for s in c if 'tatoeba' in s.evals) == 3 * 11
    cost = estimate_cost(p)
    assert cost['stages'] == 3 * (11 + 11 * 7) and cost['gpu_hours'] > 10
    assert cli_run(['phang2020', '--dry-run']) == 0
    out = capsys.readouterr().out
    assert 'multi.xnli-s3-' in out and 'GPU-hours' in out and f"{cost['stages']} stages" in out

def test_run_dry_run_options(capsys):
    assert cli_run(['smoke', '--dry-run', '--seeds', '1', '2', '--model', 'me5-small']) == 0
    out = capsys.readouterr().out
    assert 'model me5-small; seeds [1, 2]' in out and 'rte.pawsx-s2-' in out

def test_sweep_local(tmp_path, data_dir, capsys):
    pytest.importorskip('submitit')
    f = tmp_path/'p.yaml'
    f.write_text("name: sw\nmodel: tiny-xlmr\nintermediate: []\ntarget: [tatoeba]\nlangs: {tatoeba: [de, sw]}\nmax_eval_examples: 16\n")
    assert cli_sweep([str(f), '--executor', 'local', '--out', str(tmp_path/'out'), '--data-dir', str(data_dir), '--timeout-min', '10']) == 0
    rows = list(csv.DictReader(open(tmp_path/'out'/'results.csv')))
    assert {r['lang'] for r in rows} == {'de', 'sw'} and {r['intermediate'] for r in rows} == {'none'}
    with pytest.raises(ITTError, match='sbatch not found'):
        cli_sweep([str(f), '--executor', 'slurm', '--out', str(tmp_path/'out2'), '--data-dir', str(data_dir)])

def test_sweep_slurm_dependencies(tmp_path, monkeypatch):
    "On Slurm, each target stage is a job that starts after its intermediate stage's job (afterok)."
    import shutil
    submitit = pytest.importorskip('submitit')
    from itt_xling.plans import sweep
    subs = []
    class Job:
        def __init__(self, i): self.job_id = str(100 + i)
    class FakeExecutor:
        def __init__(self, folder, cluster): self.params = {}; assert cluster == 'slurm'
        def update_parameters(self, **kw): self.params.update(kw)
        def submit(self, fn, stages, *args):
            subs.append(([s.id for s in stages], dict(self.params.get('slurm_additional_parameters', {})))); return Job(len(subs))
    monkeypatch.setattr(submitit, 'AutoExecutor', FakeExecutor)
    monkeypatch.setattr(shutil, 'which', lambda name: '/usr/bin/' + name)
    jobs = sweep(load_plan(GOOD), tmp_path, 'slurm', log=None, slurm_args={'account': 'x'})
    assert len(jobs) == 4
    (base_eval, d0), (base_tgt, d1), (inter, d2), (tgt, d3) = subs
    assert base_eval[0].startswith('none-') and 'dependency' not in d1               # baseline targets start from the pretrained encoder
    assert inter[0].startswith('rte-') and 'dependency' not in d2
    assert tgt[0].startswith('rte.pawsx-') and d3 == {'account': 'x', 'dependency': 'afterok:103'}
