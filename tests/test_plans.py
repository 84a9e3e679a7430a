"""Plans: file and preset errors (the YAML error table is in test_settings.py), expansion into stage chains, presets, dry runs, the CLI and local sweeps."""
import csv
import pytest
from itt_xling.core import ITTError
from itt_xling.plans import load_plan, expand, estimate_cost, describe, presets, with_options, cli_run
from itt_xling.sweep import cli_sweep

GOOD = "model: tiny-xlmr\nseeds: [1]\nintermediate: [rte]\ntarget: [pawsx, tatoeba]\ntrain_on_dev: [pawsx]\n"

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
    assert i1.recipe.train_on_dev == ('pawsx',) and i1.recipe.heldout_tasks == ('pawsx',)
    assert (i1.optim.lr, i1.optim.warmup_ratio, i1.optim.batch_size, i1.optim.max_length, i1.optim.epochs) == (1e-5, 0.1, 32, 256, 5)  # paper settings (PAWS-X: 5 epochs)
    assert [s.id for c in expand(load_plan(GOOD)) for s in c] == [s.id for c in chains for s in c]  # deterministic ids

def test_overrides_and_qa_defaults():
    p = load_plan("target: [xquad, xnli]\nintermediate: [mnli]\ntrain: {lr: 2.0e-5}\noverrides: {xnli: {epochs: 3}}\n")
    st = {s.id.split('-')[0]: s for c in expand(p) for s in c}
    assert (st['mnli.xquad'].optim.batch_size, st['mnli.xquad'].optim.max_length, st['mnli.xquad'].tasks) == (16, 384, ('squad_v1',))
    assert st['mnli.xnli'].optim.epochs == 3 and st['mnli.xnli'].optim.lr == 2e-5 and st['mnli.xnli'].tasks == ('mnli',)

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

def test_sweep_local(tmp_path, data_dir, capsys, monkeypatch):
    import shutil
    pytest.importorskip('submitit')
    f = tmp_path/'p.yaml'
    f.write_text("name: sw\nmodel: tiny-xlmr\nintermediate: []\ntarget: [tatoeba]\nlangs: {tatoeba: [de, sw]}\nmax_eval_examples: 16\n")
    assert cli_sweep([str(f), '--executor', 'local', '--out', str(tmp_path/'out'), '--data-dir', str(data_dir), '--timeout-min', '10']) == 0
    rows = list(csv.DictReader(open(tmp_path/'out'/'results.csv')))
    assert {r['lang'] for r in rows} == {'de', 'sw'} and {r['intermediate'] for r in rows} == {'none'}
    which = shutil.which                                        # as on a machine without Slurm (this one may have it)
    monkeypatch.setattr(shutil, 'which', lambda name, *a, **k: None if name == 'sbatch' else which(name, *a, **k))
    with pytest.raises(ITTError, match='sbatch not found'):
        cli_sweep([str(f), '--executor', 'slurm', '--out', str(tmp_path/'out2'), '--data-dir', str(data_dir)])

def test_sweep_slurm_dependencies(tmp_path, monkeypatch):
    "On Slurm, each target stage is a job that starts after its intermediate stage's job (afterok)."
    import shutil
    submitit = pytest.importorskip('submitit')
    from itt_xling.sweep import sweep
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
    assert len(jobs) == 4 and all(len(ids) == 1 for ids, _ in subs)                # one job per stage
    job = {ids[0].split('-')[0]: (str(100 + i), d) for i, (ids, d) in enumerate(subs, 1)}   # the order of submission may vary
    assert set(job) == {'none', 'none.pawsx', 'rte', 'rte.pawsx'}
    assert 'dependency' not in job['none.pawsx'][1]                                # baseline targets start from the pretrained encoder
    assert 'dependency' not in job['rte'][1]
    assert job['rte.pawsx'][1] == {'account': 'x', 'dependency': f"afterok:{job['rte'][0]}", 'kill-on-invalid-dep': 'yes'}

def test_phang2020_ablations_preset(capsys, data_dir):
    "Both ablations in one preset: translated intermediate data beside its English setting, and multi-task + MLM beside multi-task."
    p = load_plan('phang2020-ablations')
    inter = {s.name: s for c in expand(p) for s in c if s.target is None and s.seed == 1}
    assert inter['mnli-translated'].recipe.translate_train == {'mnli': tuple('ar bg de el es fr hi ru sw th tr ur vi zh'.split())}
    assert inter['mnli'].recipe.translate_train == {} and inter['multi-mlm'].mlm.hub and inter['multi'].mlm is None
    assert all(not s.recipe.translate_train for c in expand(p) for s in c if s.target)          # targets train in English
    assert cli_run(['phang2020-ablations', '--dry-run', '--data-dir', 'hub']) == 0
    out = capsys.readouterr().out
    assert 'adds translated squad_v1 in ar de el' in out and 'validation of xnli for xnli' in out
    assert 'no dev set' not in out                                                              # every dev set is on the hub
    assert cli_run(['phang2020-ablations', '--dry-run', '--data-dir', str(data_dir)]) == 0          # a folder without SQuAD's dev set
    assert 'no dev set for none.xquad-s1-' in capsys.readouterr().out                           # said, not silent

def test_translate_train_languages_checked():
    with pytest.raises(ITTError, match=r"translate_train\.mnli\.0: mnli has no translated training data in 'ja'"):
        load_plan("target: [xnli]\nintermediate: [{tasks: [mnli], translate_train: {mnli: [ja]}}]\n")
    with pytest.raises(ITTError, match="rte is not among this setting's tasks"):
        load_plan("target: [xnli]\nintermediate: [{tasks: [mnli], translate_train: {rte: [de]}}]\n")
    with pytest.raises(ITTError, match="translate_train.rte.0: rte has no translated training data in 'de'; it has none"):
        load_plan("target: [xnli]\ntranslate_train: {rte: [de]}\n")

@pytest.mark.parametrize('preset', ['phang2020', 'xtreme-r-nli'])
def test_preset_dry_run_sources(preset, data_dir, tmp_path, monkeypatch, capsys):
    "Both GPU presets dry-run with and without a data folder: every stage names each task's source; file-only pieces name their files and where they are published; offline, what would be downloaded."
    import re
    monkeypatch.chdir(tmp_path); monkeypatch.delenv('ITT_XLING_DATA', raising=False)   # no data folder found
    outs = {}
    for key, extra in (('hub', []), ('data', ['--data-dir', str(data_dir)])):
        assert cli_run([preset, '--dry-run', *extra]) == 0
        outs[key] = out = capsys.readouterr().out
        stages = [l for l in out.splitlines() if re.match(r'\S+-s\d-[0-9a-f]{8} ', l)]
        assert len(stages) == estimate_cost(preset)['stages']
        assert all(re.search(r'  \S+ (local|hub|missing)(/\S+)?(, \S+ (local|hub|missing)(/\S+)?)*$', l) for l in stages), stages[:3]
        assert 'model FacebookAI/xlm-roberta-large: from the hub' in out and 'the hub is offline: these would be downloaded' in out
    hub, data = outs['hub'], outs['data']
    assert 'data folder: none (every task from the hub)' in hub and f'data folder: {data_dir}' in data
    if preset == 'phang2020':
        assert re.search(r'none\.xnli-s1-\S+ .*  mnli hub, xnli hub$', hub, re.M) and re.search(r'none\.udpos-s1-\S+ .*  udpos local$', data, re.M)
        assert 'files needed: ccg train: ccg/AUTO/02/wsj_*.auto ... ccg/AUTO/21/wsj_*.auto (20 patterns)' in hub and 'LDC2005T13' in hub
        assert 'files needed: cosmosqa validation' in hub and 'files needed: cosmosqa validation' not in data   # the data folder has it
        assert 'files needed: bucc2018 test: bucc2018/{lang}-en/{lang}-en.training.gold' in data and 'facebook/xnli (15 configs)' in data
    else:
        assert 'lareqa missing' in hub and 'lareqa local' in data and 'mewslix missing' in data and 'tatoeba hub' in hub
        assert 'files needed: mewslix test: mewslix/wikinews_mentions-test.jsonl' in data and 'mteb/tatoeba-bitext-mining' in hub

def test_run_stops_before_anything_when_files_are_missing(tmp_path, monkeypatch, capsys):
    "A task read only from files, without them, stops the run at the preflight, naming the files and where they are published."
    from itt_xling.cli import main
    monkeypatch.chdir(tmp_path); monkeypatch.delenv('ITT_XLING_DATA', raising=False)
    f = tmp_path/'p.yaml'
    f.write_text("model: tiny-xlmr\nintermediate: []\ntarget: [lareqa]\nlangs: {lareqa: [de]}\n")
    assert main(['run', str(f), '--out', str(tmp_path/'out')]) == 2
    err = capsys.readouterr().err
    assert 'lareqa is read from files only: put lareqa validation: lareqa/xquad-r/{lang}.json under the data folder' in err
    assert 'github.com/google-research-datasets/lareqa' in err and not (tmp_path/'out').exists()
