"""A battery of bad inputs through the installed `itt-xling` command, each held to one contract.

For every case: exit status 2, exactly one line on stderr (`itt-xling CMD: error: ...`), no traceback, nothing
left in `--out`, nothing written anywhere else, and no user file touched: each case runs in its own sandbox
(plans, user files, a run folder, a copy of the data folder made of symbolic links with the broken file
replaced) whose whole tree is compared before and after. Each case is its own process: the cases that need a mount
and a sample of the others run the installed console script; the rest are forked, several at a time, from one
process that imported the package once (tests/battery_server.py), which runs the same `main` the script runs.

A case marked `pending` needs a change in a module this battery does not own (named in the mark); while the
change is missing it is an expected failure, and once the contract holds it simply passes.
"""
import hashlib, json, os, re, shutil, stat, subprocess, sys, tempfile
from dataclasses import dataclass, field
from pathlib import Path
import pytest
from itt_xling.core import find_data_dir

EXE = Path(sys.executable).parent/'itt-xling'
DATA = find_data_dir()
JOBS = int(os.environ.get('ITT_BATTERY_JOBS', str(min(4, len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count() or 1))))
ENV = {k: v for k, v in os.environ.items() if k not in ('ITT_XLING_DATA', 'ITT_XLING_DEBUG')} | dict(
    HF_HUB_OFFLINE='1', HF_DATASETS_OFFLINE='1', TRANSFORMERS_OFFLINE='1', TQDM_DISABLE='1', OMP_NUM_THREADS='1', PYTHONWARNINGS='ignore')

BASE = ("model: tiny-xlmr\nseeds: [1]\nmax_train_examples: 16\nmax_eval_examples: 8\nsplit: validation\n"
        "train: {epochs: 1, batch_size: 8, max_length: 32}\n")
PAWSX = BASE + "target: [pawsx]\ntrain_on_dev: [pawsx]\nlangs: {pawsx: [en]}\n"
XQUAD = BASE.replace('max_length: 32', 'max_length: 256') + "target: [xquad]\ntrain_on_dev: [xquad]\nlangs: {xquad: [en]}\n"
XCOPA = BASE + "target: [xcopa]\nlangs: {xcopa: [et]}\n"
UDPOS = BASE + "target: [udpos]\nlangs: {udpos: [en]}\n"
RTE = BASE + "baseline: false\nintermediate: [rte]\ntarget: [pawsx]\ntrain_on_dev: [pawsx]\nlangs: {pawsx: [en]}\n"

# --- sandbox pieces ------------------------------------------------------------------------------------------------

def text_edit(f):
    "An edit of a data file's text (read and written as UTF-8)."
    return lambda p: p.write_text(f(p.read_text(encoding='utf-8')), encoding='utf-8')

def line_edit(n:int, f):
    "An edit of line `n` (1-based) of a data file."
    def edit(text):
        ls = text.split('\n'); ls[n - 1] = f(ls[n - 1]); return '\n'.join(ls)
    return text_edit(edit)

def json_edit(f):
    "An edit of a JSON data file's document."
    def edit(p):
        d = json.loads(p.read_text(encoding='utf-8')); f(d); p.write_text(json.dumps(d, ensure_ascii=False), encoding='utf-8')
    return edit

def first_qa(d): return d['data'][0]['paragraphs'][0]['qas'][0]

def _set(d, **kw): d.update(kw)

def data_copy(w:Path, broken:dict) -> Path:
    "`w/data`: the data folder as symbolic links, with each file of `broken` ({rel: edit(path)}) a real, edited copy."
    d = w/'data'; d.mkdir()
    tops = {rel.split('/', 1)[0] for rel in broken}
    for p in DATA.iterdir():
        if p.name not in tops: (d/p.name).symlink_to(p)
    for top in tops:
        for p in sorted((DATA/top).rglob('*')):
            q = d/top/p.relative_to(DATA/top)
            if p.is_dir(): q.mkdir(parents=True, exist_ok=True); continue
            q.parent.mkdir(parents=True, exist_ok=True)
            rel = str(p.relative_to(DATA))
            if rel in broken: shutil.copyfile(p, q); broken[rel](q)
            else: q.symlink_to(p)
    return d

def replace_with(kind:str):
    "An edit that replaces a data file with a folder, a dangling link or a link to itself."
    def edit(p:Path):
        p.unlink()
        if kind == 'folder': p.mkdir()
        elif kind == 'dangling': p.symlink_to(p.parent/'no-such-file')
        elif kind == 'loop': p.symlink_to(p.name)
    return edit

def fake_run(d:Path, task='pawsx', lang='de', preds=None):
    "A run folder as a run leaves it: one stage with predictions and metrics.json, and results.csv."
    st = d/'none.pawsx-s1-cd925d31'; (st/'predictions').mkdir(parents=True)
    preds = preds or [dict(id=str(i), pred=i % 2, gold=(i // 2) % 2) for i in range(20)]
    (st/'predictions'/f'{task}.{lang}.validation.jsonl').write_text(''.join(json.dumps(r) + '\n' for r in preds))
    (st/'metrics.json').write_text(json.dumps(dict(stage=st.name, rows=[])))
    (st/'config.yaml').write_text('id: none.pawsx-s1-cd925d31\n')
    (d/'results.csv').write_text('run,stage,model,seed,intermediate,target,lora,lang,split,metric,value,n\n'
                                 f'plan,{st.name},tiny-xlmr,1,none,{task},none,{lang},validation,accuracy,50.0,20\n')
    return d

def bad_model(d:Path, config:str|None, tokenizer:bool=True):
    "A model folder with `config` as its config.json (None: none)."
    d.mkdir(parents=True)
    if config is not None: (d/'config.json').write_text(config)
    if tokenizer: (d/'tokenizer.json').write_text('{}')

def base_sandbox(w:Path):
    "What every sandbox holds: user files that must never change."
    (w/'notes.txt').write_text('my notes\n')
    (w/'userdir').mkdir(); (w/'userdir'/'keep.txt').write_text('keep me\n')
    fake_run(w/'run')

# --- the cases ------------------------------------------------------------------------------------------------------

@dataclass
class Case:
    id: str
    argv: list                          # strings; {W}: the sandbox, {M}: the fine-tuned tiny model
    expect: str = ''                    # a regex the error line must match
    files: dict = field(default_factory=dict)   # name -> text written into the sandbox
    data: dict|None = None              # broken data files ({rel: edit}); None: no data folder
    setup: object = None                # setup(sandbox) for anything else
    pending: str = ''                   # the missing change (owner: what) that makes this case an expected failure
    mount: str = ''                     # 'ro' or 'full': run with {W}/mnt a read-only / nearly full file system
    model: bool = False                 # needs the fine-tuned tiny model

def run_case(plan, *extra, expect='', data=None, pending='', setup=None, id=None):
    return Case(id, ['run', 'plan.yaml', *extra, '--out', 'out'] + (['--data-dir', 'data'] if data is not None else []),
                expect, {'plan.yaml': plan}, data, setup, pending)

def export_case(id, *extra, expect='', setup=None, pending='', mount=''):
    return Case(id, ['export', '--run', 'run', '--benchmark', 'xtreme', *extra], expect, setup=setup, pending=pending, mount=mount)

def preds_edit(text:str):
    return lambda w: (w/'run'/'none.pawsx-s1-cd925d31'/'predictions'/'pawsx.de.validation.jsonl').write_text(text)

VIA_COMMAND = {'unknown command', 'missing required options'}   # run through the installed console script as well as the mount cases
EN_DEV = 'pawsx/dev-en.tsv'
CASES = [
    # the command line
    Case('unknown command', ['frobnicate'], r"unknown command 'frobnicate'"),
    Case('missing required options', ['export'], r"the following arguments are required: --run, --out \(see itt-xling export --help\)"),
    Case('invalid choice', ['export', '--run', 'run', '--out', 'o', '--benchmark', 'xtreme-x'], r"argument --benchmark: invalid choice"),
    Case('unknown option', ['export', '--run', 'run', '--out', 'o', '--bogus'], r"unrecognized arguments: --bogus"),
    Case('unknown task (tasks)', ['tasks', 'xnlii'], r"unknown task 'xnlii'"),
    Case('data dir missing (tasks)', ['tasks', '--data-dir', 'nope'], r"data dir nope does not exist"),
    Case('data dir is a file (tasks)', ['tasks', '--data-dir', 'notes.txt'], r"data dir notes.txt does not exist"),
    Case('unknown model', ['model', 'me5small'], r"unknown model 'me5small'"),
    Case('--out for tiny-xlmr', ['model', 'tiny-xlmr', '--out', 'o'], r"apply to me5-small only"),
    Case('run without a plan', ['run'], r"the following arguments are required: plan"),
    Case('unknown preset', ['run', 'smok', '--out', 'out'], r"unknown preset 'smok'"),
    Case('negative seed option', ['run', 'plan.yaml', '--seeds', '-1', '--out', 'out'], r"seeds", {'plan.yaml': PAWSX}),
    Case('seed not a number', ['run', 'plan.yaml', '--seeds', 'x', '--out', 'out'], r"argument --seeds: invalid int value", {'plan.yaml': PAWSX}),
    Case('eval without --model', ['eval', '--task', 'pawsx'], r"required: --model"),
    Case('eval --batch-size 0', ['eval', '--model', '{M}', '--task', 'pawsx', '--batch-size', '0', '--langs', 'en', '--data-dir', 'data'], r"--batch-size", model=True, data={}),
    Case('eval --limit -3', ['eval', '--model', '{M}', '--task', 'pawsx', '--limit', '-3', '--langs', 'en', '--data-dir', 'data'], r"--limit", model=True, data={}),
    Case('eval --batch-size not a number', ['eval', '--model', 'x', '--task', 'pawsx', '--batch-size', 'x'], r"argument --batch-size: expected an integer, got 'x'"),
    Case('eval unknown task', ['eval', '--model', '{M}', '--task', 'xnlii'], r"unknown task 'xnlii'", model=True),
    Case('eval --out holding user files', ['eval', '--model', '{M}', '--task', 'pawsx', '--langs', 'en', '--limit', '4', '--out', 'userdir', '--data-dir', 'data'],
         r"userdir holds files", model=True, data={}),
    Case('report --resamples 0', ['report', 'run', '--resamples', '0'], r"--resamples"),
    Case('report --distance bogus', ['report', 'run', '--distance', 'bogus'], r"argument --distance: invalid choice"),
    Case('report on a missing folder', ['report', 'nope'], r"nope"),
    Case('report on a malformed results.csv', ['report', 'run'], r"results\.csv", setup=lambda w: (w/'run'/'results.csv').write_text('a,b\n1,"2\n')),
    Case('report --out is a file', ['report', 'run', '--out', 'notes.txt'], r"notes\.txt"),
    Case('demo --train-pairs -5', ['demo', '--train-pairs', '-5', '--out', 'demo-out'], r"argument --train-pairs: must be a number >= 1"),
    Case('demo unknown language', ['demo', '--langs', 'fr,xx', '--out', 'demo-out'], r"unknown demo language 'xx'"),
    # plans
    run_case(BASE + "target: [xnli\nseeds: 1\n", expect=r"plan\.yaml:8: malformed YAML", id='malformed YAML'),
    Case('plan not UTF-8', ['run', 'plan.yaml', '--out', 'out'], r"plan\.yaml.*not UTF-8", setup=lambda w: (w/'plan.yaml').write_bytes(b'model: tiny-xlmr\ntarget: [caf\xe9]\n')),
    run_case("a: &x [1, *x]\ntarget: [pawsx]\n", expect=r"plan\.yaml", id='recursive alias'),
    run_case(PAWSX + "model: me5-small\n", expect=r"plan\.yaml:\d+: .*duplicate key 'model'", id='duplicate key'),
    run_case("- pawsx\n- xnli\n", expect=r"a plan is a mapping", id='plan is a list'),
    Case('plan is a folder', ['run', 'dir.yaml', '--out', 'out'], r"dir\.yaml", setup=lambda w: (w/'dir.yaml').mkdir()),
    Case('plan is a dangling link', ['run', 'gone.yaml', '--out', 'out'], r"gone\.yaml", setup=lambda w: (w/'gone.yaml').symlink_to(w/'nowhere.yaml')),
    Case('plan is a link loop', ['run', 'loop.yaml', '--out', 'out'], r"loop\.yaml", setup=lambda w: (w/'loop.yaml').symlink_to('loop.yaml')),
    run_case(PAWSX + "description: !!python/object/apply:os.system ['touch hacked']\n", expect=r"malformed YAML", id='python tag in YAML'),
    run_case(PAWSX + "modle: x\n", expect=r"unknown key 'modle'\. Did you mean 'model'", id='unknown key'),
    run_case(PAWSX.replace('seeds: [1]', 'seeds: one'), expect=r"seeds: expected a list of integers", id='wrong type'),
    run_case(BASE + "target: [xnlii]\n", expect=r"unknown task 'xnlii'", id='unknown task'),
    run_case(BASE + "target: [xnli]\nlangs: {xnli: [xx]}\n", expect=r"xnli has no language 'xx'", id='unknown language'),
    run_case(PAWSX.replace('max_train_examples: 16', 'max_train_examples: -5'), expect=r"max_train_examples: must be >= 1", id='negative cap'),
    run_case(PAWSX.replace('batch_size: 8', 'batch_size: 0'), expect=r"batch_size: must be >= 1", id='batch size 0'),
    run_case(PAWSX.replace('epochs: 1', 'epochs: 0'), expect=r"epochs: must be > 0", id='epochs 0'),
    run_case(PAWSX.replace('epochs: 1', 'epochs: 1, lr: -0.5'), expect=r"lr: must be > 0", id='negative lr'),
    run_case(PAWSX.replace('max_eval_examples: 8', 'max_eval_examples: 0'), expect=r"max_eval_examples: must be >= 1", id='max_eval_examples 0'),
    run_case(BASE + "baseline: false\nintermediate: [{name: ../../escaped, tasks: [rte]}]\ntarget: [pawsx]\ntrain_on_dev: [pawsx]\nlangs: {pawsx: [en]}\n",
             expect=r"'\.\./\.\./escaped' is not a safe name", id='intermediate name leading out'),
    run_case(BASE + "baseline: false\nintermediate: [{name: /abs/path, tasks: [rte]}]\ntarget: [pawsx]\ntrain_on_dev: [pawsx]\n",
             expect=r"'/abs/path' is not a safe name", id='absolute intermediate name'),
    run_case("name: ../x\n" + PAWSX, expect=r"'\.\./x' is not a safe name", id='plan name leading out'),
    run_case(PAWSX + "translate_train: {pawsx: de}\n", expect=r"translate_train\.pawsx: expected a list of strings", id='translate_train not a list'),
    run_case(PAWSX.replace('langs: {pawsx: [en]}', 'langs: {pawsx: []}'), expect=r"langs\.pawsx: an empty list", id='empty language list'),
    run_case(PAWSX + "lora: {r: 0}\n", expect=r"r: must be >= 1", id='LoRA rank 0'),
    run_case(XQUAD.replace('max_length: 256', 'max_length: 16'), data={}, expect=r"max_length", id='QA max_length below the tokenizer stride'),
    run_case(PAWSX, '--data-dir', 'no/such/folder', expect=r"data dir no/such/folder does not exist", id='data dir missing'),
    run_case(PAWSX, '--model', './no/such/model', expect=r"encoder directory \./no/such/model does not exist", id='model folder missing'),
    Case('model config not JSON', ['run', 'plan.yaml', '--model', 'bm', '--out', 'out'], r"bm/config\.json:1: invalid JSON",
         {'plan.yaml': PAWSX}, setup=lambda w: bad_model(w/'bm', '{"model_type": ')),
    Case('model config a list', ['eval', '--model', 'bm', '--task', 'pawsx'], r"bm/config\.json is not a transformers config",
         setup=lambda w: bad_model(w/'bm', '[1, 2]')),
    Case('model without a tokenizer', ['eval', '--model', 'bm', '--task', 'pawsx'], r"bm has no tokenizer",
         setup=lambda w: bad_model(w/'bm', '{"model_type": "bert"}', tokenizer=False)),
    Case('model is a file', ['eval', '--model', 'notes.txt', '--task', 'pawsx'], r"notes\.txt is a file"),
    Case('run --out is a file', ['run', 'plan.yaml', '--out', 'notes.txt', '--data-dir', 'data'], r"notes\.txt", {'plan.yaml': PAWSX}, data={}),
    Case('run --out holding user files', ['run', 'plan.yaml', '--out', 'userdir', '--data-dir', 'data'], r"userdir holds files",
         {'plan.yaml': PAWSX}, data={}),
    Case('sweep --out holding user files', ['sweep', 'plan.yaml', '--executor', 'local', '--out', 'userdir', '--data-dir', 'data'], r"userdir holds files",
         {'plan.yaml': PAWSX}, data={}),
    Case('eval --out is a file', ['eval', '--model', '{M}', '--task', 'pawsx', '--langs', 'en', '--out', 'notes.txt', '--data-dir', 'data'], r"notes\.txt is a file", model=True, data={}),
    run_case(XQUAD + "overrides: {xquad: {max_length: 200}}\n", data={}, expect=r"overrides\.xquad\.max_length: max_length 200 is too short", id='QA max_length too short in an override'),
    run_case(BASE + "intermediate: [{name: a, tasks: [rte], tasks: [sst2]}]\ntarget: [pawsx]\ntrain_on_dev: [pawsx]\n", expect=r"plan\.yaml:7: .*duplicate key 'tasks'", id='duplicate key inside an entry'),
    Case('report --out holding user files', ['report', 'run', '--out', 'userdir'], r"userdir holds files"),
    Case('demo --out holding user files', ['demo', '--out', 'userdir', '--langs', 'fr'], r"userdir holds files"),
    # data files
    run_case(PAWSX, data={EN_DEV: line_edit(4, lambda l: l + '\textra')}, expect=r"pawsx/dev-en\.tsv:4: expected 3 tab-separated fields", id='TSV row with an extra column'),
    run_case(RTE, data={'glue_rte/train.tsv': line_edit(3, lambda l: l + '\textra')}, expect=r"glue_rte/train\.tsv:3: expected 4 tab-separated fields", id='GLUE row with an extra column'),
    run_case(PAWSX, data={EN_DEV: line_edit(4, lambda l: l.rsplit('\t', 1)[0] + '\t7')}, expect=r"pawsx/dev-en\.tsv:4: label '7' is not in the label set", id='label outside the set'),
    run_case(PAWSX.replace('[en]', '[en, de]'), data={'pawsx/dev-de.tsv': text_edit(lambda t: '\n'.join(l for i, l in enumerate(t.split('\n')) if i != 4))},
             expect=r"pawsx/dev-de\.tsv has 1999 rows but pawsx/dev-en\.tsv has 2000", id='parallel file with a row deleted'),
    run_case(PAWSX.replace('langs: {pawsx: [en]}\n', ''), data={'pawsx/dev-fr.tsv': line_edit(7, lambda l: l.rsplit('\t', 1)[0] + '\t7')},
             expect=r"pawsx/dev-fr\.tsv:7: label '7'", id='bad language file, no languages named'),
    run_case(PAWSX, data={EN_DEV: lambda p: p.write_bytes(p.read_bytes().replace(b'\xc3\xa9', b'\xe9', 1))}, expect=r"pawsx/dev-en\.tsv:\d+: not UTF-8", id='data file not UTF-8'),
    run_case(PAWSX, data={EN_DEV: replace_with('folder')}, expect=r"pawsx/dev-en\.tsv: is a folder", id='folder where a data file should be'),
    run_case(PAWSX, data={EN_DEV: replace_with('dangling')}, expect=r"pawsx/dev-en\.tsv: is a symbolic link to nothing", id='dangling link for a data file'),
    run_case(PAWSX, data={EN_DEV: replace_with('loop')}, expect=r"pawsx/dev-en\.tsv: is a symbolic link loop", id='link loop for a data file'),
    run_case(PAWSX, data={EN_DEV: text_edit(lambda t: '')}, expect=r"pawsx/dev-en\.tsv: the file is empty", id='empty data file'),
    run_case(RTE, data={'glue_rte/train.tsv': text_edit(lambda t: t.split('\n')[0] + '\n')}, expect=r"glue_rte/train\.tsv.*no rte examples", id='header only'),
    run_case(XQUAD, data={'xquad/xquad.en.json': json_edit(lambda d: _set(first_qa(d)['answers'][0], answer_start='134'))},
             expect=r"answer_start '134' is not a non-negative integer", id='answer_start a string'),
    run_case(XQUAD, data={'xquad/xquad.en.json': json_edit(lambda d: _set(first_qa(d)['answers'][0], answer_start=-1))},
             expect=r"answer_start -1 is not a non-negative integer", id='negative answer_start'),
    run_case(XQUAD, data={'xquad/xquad.en.json': json_edit(lambda d: _set(first_qa(d), answers=[]))},
             expect=r"a question without an answer", id='SQuAD v1.1 question without an answer'),
    run_case(XQUAD, data={'xquad/xquad.en.json': json_edit(lambda d: _set(d['data'][0]['paragraphs'][0]['qas'][1], id=first_qa(d)['id']))},
             expect=r"occurs twice", id='duplicate question id'),
    run_case(XQUAD, data={'xquad/xquad.en.json': json_edit(lambda d: d['data'].insert(0, 'an article'))},
             expect=r"data\[0\]: expected an article", id='data list holding a string'),
    run_case(XQUAD, data={'xquad/xquad.en.json': text_edit(lambda t: t.replace('"question"', '"question":', 1))},
             expect=r"xquad/xquad\.en\.json:\d+: invalid JSON", id='malformed JSON'),
    run_case(XCOPA, data={'copa_en/train-en.jsonl': line_edit(2, lambda l: l.replace('"label": 0', '"label": 1.7').replace('"label": 1,', '"label": 1.7,'))},
             expect=r"copa_en/train-en\.jsonl:2: label 1\.7 is not a choice index", id='JSON label 1.7'),
    run_case(XCOPA, data={'copa_en/train-en.jsonl': line_edit(2, lambda l: l.replace('"label": 0', '"label": true').replace('"label": 1,', '"label": true,'))},
             expect=r"copa_en/train-en\.jsonl:2: label True is not a choice index", id='JSON label true'),
    run_case(XCOPA, data={'copa_en/train-en.jsonl': line_edit(3, lambda l: l[:-5])}, expect=r"copa_en/train-en\.jsonl:3: not a JSON object", id='malformed JSON line'),
    run_case(UDPOS, data={'ud/UD_English-EWT/en_ewt-ud-train.conllu': line_edit(7, lambda l: 'abc\t' + l.split('\t', 1)[1])},
             expect=r"en_ewt-ud-train\.conllu:7: token id 'abc'", id='CoNLL-U token id abc'),
    run_case(UDPOS, data={'ud/UD_English-EWT/en_ewt-ud-train.conllu': text_edit(lambda t: t.replace('\n\n', '\n', 1))},
             expect=r"en_ewt-ud-train\.conllu:\d+: .*(blank line|a comment inside a sentence)", id='CoNLL-U sentences without a blank line'),
    run_case(UDPOS, data={'ud/UD_English-EWT/en_ewt-ud-train.conllu': line_edit(7, lambda l: l.replace('\t', ' '))},
             expect=r"en_ewt-ud-train\.conllu:7: expected 10 tab-separated CoNLL-U columns", id='CoNLL-U columns'),
    # output folders: export, model
    export_case('export --out is the run (deleted the run)', '--out', 'run', expect=r"--out run is the same folder as --run run"),
    export_case('export --out is a file', '--out', 'notes.txt', expect=r"--out notes\.txt is a file"),
    export_case('export --out holding user files', '--out', 'userdir', expect=r"--out userdir holds files this command did not write \(keep\.txt\)"),
    export_case('export --gold equal to --out', '--out', 'pred', '--gold', 'pred', expect=r"is the same folder as --gold pred"),
    export_case('export --out inside the run', '--out', 'run/export', expect=r"--out run/export is inside --run run"),
    Case('export --run is a file', ['export', '--run', 'notes.txt', '--out', 'pred'], r"--run notes\.txt is not a folder"),
    Case('export --run missing', ['export', '--run', 'nope', '--out', 'pred'], r"--run nope is not a folder"),
    export_case('export: malformed predictions line', '--out', 'pred', expect=r"pawsx\.de\.validation\.jsonl:2: not JSON", setup=preds_edit('{"id": "0", "pred": 0, "gold": 0}\n{"id": \n')),
    export_case('export: prediction 7 for a binary task', '--out', 'pred', expect=r"pawsx\.de\.validation\.jsonl:1: pred 7 is not a pawsx label", setup=preds_edit('{"id": "0", "pred": 7, "gold": 0}\n')),
    export_case('export: label true', '--out', 'pred', expect=r"pred True is not a pawsx label", setup=preds_edit('{"id": "0", "pred": true, "gold": 0}\n')),
    export_case('export: predictions not UTF-8', '--out', 'pred', expect=r"pawsx\.de\.validation\.jsonl:1: not UTF-8", setup=lambda w: (w/'run'/'none.pawsx-s1-cd925d31'/'predictions'/'pawsx.de.validation.jsonl').write_bytes(b'{"id": "caf\xe9"}\n')),
    export_case('export: predictions file is a folder', '--out', 'pred', expect=r"is a folder", setup=lambda w: (w/'run'/'none.pawsx-s1-cd925d31'/'predictions'/'pawsx.fr.validation.jsonl').mkdir()),
    export_case('export: malformed results.csv', '--out', 'pred', expect=r"results\.csv: not a results table", setup=lambda w: (w/'run'/'results.csv').write_text('a,b\n1,"2\n')),
    export_case('export: results.csv without its columns', '--out', 'pred', expect=r"results\.csv: not a results table \(no ", setup=lambda w: (w/'run'/'results.csv').write_text('a,b\n1,2\n')),
    export_case('export --out on a read-only file system', '--out', 'mnt/pred', expect=r"mnt.*read-only file system", mount='ro'),
    export_case('export --out on a full disk', '--out', 'mnt/pred', expect=r"no space left on the disk", mount='full'),
    Case('model --out holding user files', ['model', 'me5-small', '--out', 'userdir'], r"--out userdir holds files this command did not write \(keep\.txt\)"),
    Case('model --out is a file', ['model', 'me5-small', '--out', 'notes.txt'], r"--out notes\.txt is a file"),
]

# --- running them --------------------------------------------------------------------------------------------------

def snapshot(root:Path) -> dict:
    "Every path under `root` (links not followed): kind, and for files size and content hash."
    out = {}
    for dirpath, dirs, files in os.walk(root):
        for n in dirs + files:
            p = Path(dirpath)/n
            st = p.lstat()
            if stat.S_ISLNK(st.st_mode): out[str(p.relative_to(root))] = ('link', os.readlink(p))
            elif stat.S_ISDIR(st.st_mode): out[str(p.relative_to(root))] = ('dir',)
            else: out[str(p.relative_to(root))] = ('file', st.st_size, st.st_mtime_ns, hashlib.sha1(p.read_bytes()).hexdigest())
    return out

def _mount_ok() -> bool:
    if not shutil.which('unshare') or os.geteuid() != 0: return False
    d = tempfile.mkdtemp()
    try: return subprocess.run(['unshare', '-m', 'sh', '-c', f'mount -t tmpfs -o ro,size=64k tmpfs {d}'], capture_output=True).returncode == 0
    finally: os.rmdir(d)

MOUNT = {'ro': 'ro,size=64k', 'full': 'size=4k'}

def prepare(case:Case, root:Path, model:Path|None) -> dict:
    "Set up `case` in `root/work`: its folder, its command line, and a snapshot of `root` before it runs."
    w = root/'work'; w.mkdir(parents=True)
    base_sandbox(w)
    for name, text in case.files.items(): (w/name).write_text(text)
    if case.data is not None: data_copy(w, dict(case.data))
    if case.setup: case.setup(w)
    argv = [a.replace('{W}', str(w)).replace('{M}', str(model)) for a in case.argv]
    return dict(w=w, argv=argv, before=snapshot(root))

def via_command(case:Case, job:dict) -> dict:
    "Run a prepared case through the installed console script (a mount case inside its own mount namespace)."
    cmd = [str(EXE), *job['argv']]
    if case.mount:
        (job['w']/'mnt').mkdir()
        cmd = ['unshare', '-m', 'sh', '-c', f'mount -t tmpfs -o {MOUNT[case.mount]} tmpfs mnt && exec "$@"', 'sh', *cmd]
        job['before'] = snapshot(job['w'].parent)
    try: r = subprocess.run(cmd, cwd=job['w'], env=ENV, capture_output=True, text=True, timeout=900)
    except subprocess.TimeoutExpired as e: return dict(rc='timeout', stderr=str(e), stdout='')
    return dict(rc=r.returncode, stderr=r.stderr, stdout=r.stdout)

def via_server(jobs:dict, tmp:Path) -> dict:
    "Run prepared cases as forked children of one process that imported the package once (tests/battery_server.py)."
    if not jobs: return {}
    spec = [dict(cwd=str(j['w']), argv=j['argv'], out=str(tmp/f'{i}.out'), err=str(tmp/f'{i}.err'), timeout=900)
            for i, j in enumerate(jobs.values())]
    r = subprocess.run([sys.executable, str(Path(__file__).parent/'battery_server.py'), str(JOBS)], input=json.dumps(spec),
                       env=ENV, capture_output=True, text=True, timeout=3600)
    assert r.returncode == 0, f'battery server failed: {r.stderr[-3000:]}'
    rcs = json.loads(r.stdout)
    return {k: dict(rc=rc, stdout=Path(s['out']).read_text(), stderr=Path(s['err']).read_text())
            for k, rc, s in zip(jobs, rcs, spec)}

def _available(case:Case, mount_ok:bool) -> str:
    "Why `case` cannot run here ('' when it can)."
    if not EXE.exists(): return 'itt-xling console script not installed next to this Python'
    if case.data is not None and DATA is None: return 'no local data folder'
    if case.mount and not mount_ok: return 'cannot mount a file system here (needs root and unshare)'
    return ''

@pytest.fixture(scope='session')
def fine_tuned(tmp_path_factory):
    "A tiny XLM-R with a PAWS-X classification head, saved as a stage saves its model (not trained: the cases fail before using it)."
    from itt_xling.models import build_model, save_model, load_tokenizer
    from itt_xling.encoders import tiny_xlmr
    d = tmp_path_factory.mktemp('model')/'model'
    t = tiny_xlmr()
    save_model(build_model(t, 'pawsx'), d, load_tokenizer(t))
    return d

@pytest.fixture(scope='session')
def results(tmp_path_factory, request):
    "Every selected case run once: id -> outcome. Most run as forked children of one server; the cases that need a mount and a sample of the others run through the installed command."
    mount_ok, tmp = _mount_ok(), tmp_path_factory.mktemp('battery')
    chosen = {i.callspec.params['case'].id for i in request.session.items
              if getattr(i, 'originalname', '') == 'test_bad_input' and hasattr(i, 'callspec') and Path(str(i.fspath)) == Path(__file__)}
    todo = {c.id: c for c in CASES if c.id in chosen and not _available(c, mount_ok)}        # only the cases selected (-k)
    model = request.getfixturevalue('fine_tuned') if any(c.model for c in todo.values()) else None
    jobs = {k: prepare(c, tmp/f'case{i:03d}', model) for i, (k, c) in enumerate(todo.items())}
    direct = {k for k, c in todo.items() if c.mount or k in VIA_COMMAND}
    out = {k: via_command(todo[k], jobs[k]) for k in direct}
    (tmp/'server').mkdir()
    out |= via_server({k: j for k, j in jobs.items() if k not in direct}, tmp/'server')
    for k, j in jobs.items(): out[k] |= dict(before=j['before'], after=snapshot(j['w'].parent))
    out['_skipped'] = {c.id: _available(c, mount_ok) for c in CASES if _available(c, mount_ok)}
    return out

def contract(case:Case, r:dict) -> list[str]:
    "How outcome `r` of `case` breaks the contract (empty: it holds)."
    errs, lines = [], r['stderr'].strip().splitlines()
    if r['rc'] != 2: errs.append(f"exit status {r['rc']}, not 2")
    if 'Traceback' in r['stderr']: errs.append('a traceback')
    if len(lines) != 1: errs.append(f'{len(lines)} lines on stderr')
    cmd = case.argv[0]
    if lines and not lines[-1].startswith(f'itt-xling {cmd}: error: '): errs.append(f'the line does not start with "itt-xling {cmd}: error: "')
    if lines and case.expect and not re.search(case.expect, lines[-1]): errs.append(f'the message does not match {case.expect!r}')
    changed = sorted(k for k in set(r['before']) | set(r['after']) if r['before'].get(k) != r['after'].get(k))
    if changed: errs.append(f"files changed: {', '.join(changed[:5])}{' ...' if len(changed) > 5 else ''}")
    return errs

def test_battery_size():
    assert len(CASES) >= 60 and len({c.id for c in CASES}) == len(CASES)

@pytest.mark.parametrize('case', CASES, ids=[c.id for c in CASES])
def test_bad_input(case, results):
    if case.id in results['_skipped']: pytest.skip(results['_skipped'][case.id])
    r = results[case.id]
    errs = contract(case, r)
    if errs and case.pending: pytest.xfail(f"pending ({case.pending}): {'; '.join(errs)}")
    assert not errs, f"{'; '.join(errs)}\nstderr: {r['stderr'][-2000:]}\nstdout: {r['stdout'][-500:]}"

# --- the leak of reproducer 4, at the level of items -------------------------------------------------------------

def test_heldout_items_stay_disjoint_from_trained_items(tmp_path, data_dir):
    "Trained English dev items and held-out German ones never share an item: intact files line up, and a file with a deleted row is refused."
    from itt_xling.core import ITTError
    from itt_xling.load import load_split
    from itt_xling.recipe import by_item
    en = load_split('pawsx', 'validation', 'en', data_dir)
    de = load_split('pawsx', 'validation', 'de', data_dir)
    trained, held = by_item(en, 0.5, True), by_item(de, 0.5, False)
    assert set(trained['id']).isdisjoint(held['id']) and len(trained) + len(held) == len(en)
    lbl = dict(zip(en['id'], en['label']))                      # held-out German items are translations of held-out English ones
    assert sum(lbl[i] == y for i, y in zip(held['id'], held['label'])) > 0.95 * len(held)
    (tmp_path/'pawsx').mkdir()
    shutil.copy(data_dir/'pawsx'/'dev-en.tsv', tmp_path/'pawsx')
    lines = (data_dir/'pawsx'/'dev-de.tsv').read_text(encoding='utf-8').split('\n')
    (tmp_path/'pawsx'/'dev-de.tsv').write_text('\n'.join(lines[:4] + lines[5:]), encoding='utf-8')
    with pytest.raises(ITTError, match=r'dev-de\.tsv has 1999 rows but pawsx/dev-en\.tsv has 2000'):
        load_split('pawsx', 'validation', 'de', tmp_path)
