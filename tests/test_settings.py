"""Settings: the table of plan YAML errors (one line naming the key, at every level), every declared range refused just
outside it (the ranges read from the dataclasses' metadata, so a new ranged field is covered without editing this file),
exponent numbers, and every `Optim` / `Scope` field accepted in `train:` and `overrides:`."""
import dataclasses, importlib, re, types, typing
from pathlib import Path
import pytest
import yaml
from itt_xling.core import ITTError
from itt_xling.settings import Settings, Stage, Optim, Scope, TaskSettings, field_types, settings_fields, make_stage
from itt_xling.plans import Plan, Intermediate, load_plan, expand

PKG = Path(__file__).resolve().parent.parent/'itt_xling'
for _p in sorted(PKG.glob('*.py')):                      # every module that declares settings, so that all are found below
    if re.search(r'^class \w+\(Settings\)', _p.read_text(), re.M): importlib.import_module(f'itt_xling.{_p.stem}')

# --- the table of plan YAML errors ---------------------------------------------------------------------------------

INTER = "target: [xnli]\nintermediate: "
YAML_ERRORS = {
    'malformed YAML':                  ("target: [xnli\nseeds: [1]\n", "<yaml>:2: malformed YAML: expected ',' or ']'"),
    'malformed YAML (flow)':           ("target: [xnli\nseeds: 1\n", "<yaml>:2: malformed YAML: expected ',' or ']'"),
    'not a mapping':                   ("[1, 2]\n", "<yaml>: a plan is a mapping of keys (name, model, seeds"),
    # unknown keys, with the closest known ones, at every level
    'unknown key (top)':               ("target: [xnli]\nseed: [1]\n", "<yaml>:2: seed: unknown key 'seed'. Did you mean 'seeds'"),
    'unknown key (top, line 4)':       ("model: tiny-xlmr\nseeds: [1]\ntarget: [xnli]\nintermediat: [mnli]\n",
                                        "<yaml>:4: intermediat: unknown key 'intermediat'. Did you mean 'intermediate'? Allowed: name,"),
    'unknown key (train)':             ("target: [xnli]\ntrain: {lrr: 1.0e-5}\n", "<yaml>:2: train.lrr: unknown key 'lrr'. Did you mean 'lr'? Allowed: lr,"),
    'unknown key (overrides)':         ("target: [xnli]\noverrides: {xnli: {epoch: 2}}\n",
                                        "<yaml>:2: overrides.xnli.epoch: unknown key 'epoch'. Did you mean 'epochs'? Allowed: lr,"),
    'unknown key (lora)':              ("target: [xnli]\nlora: {rr: 8}\n", "<yaml>:2: lora.rr: unknown key 'rr'. Did you mean 'r'? Allowed: r, alpha,"),
    'unknown key (intermediate)':      (INTER + "[{tasks: [mnli], tagets: [xnli]}]\n",
                                        "<yaml>:2: intermediate.0.tagets: unknown key 'tagets'. Did you mean 'targets'"),
    'unknown key (intermediate sampling)': (INTER + "[{tasks: [mnli], temprature: 2}]\n",
                                        "<yaml>:2: intermediate.0.temprature: unknown key 'temprature'. Did you mean 'temperature'? Allowed: name,"),
    'unknown key (mlm)':               (INTER + "[{tasks: [mnli, rte], mlm: {sorce: x}}]\n",
                                        "<yaml>:2: intermediate.0.mlm.sorce: unknown key 'sorce'. Did you mean 'source'? Allowed: source,"),
    'stage setting not per task':      ("target: [xnli]\ntrain: {benchmark: xtreme}\n", "<yaml>:2: train.benchmark: unknown key 'benchmark'. Allowed: lr,"),
    'stage setting not in plans':      ("target: [xnli]\nheldout_tasks: [xnli]\n", "<yaml>:2: heldout_tasks: unknown key 'heldout_tasks'. Allowed: name,"),
    # wrong types
    'seeds not a list':                ("target: [xnli]\nseeds: one\n", "<yaml>:2: seeds: expected a list of integers, got str 'one'"),
    'seed not an integer':             ("target: [xnli]\nseeds: [one]\n", "<yaml>:2: seeds.0: expected an integer, got str 'one'"),
    'seeds a float':                   ("target: [xnli]\nseeds: 1.5\n", "<yaml>:2: seeds: expected a list of integers, got float 1.5"),
    'target not a list':               ("target: xnli\n", "<yaml>:1: target: expected a list of strings, got str 'xnli'"),
    'baseline not true/false':         ("target: [xnli]\nbaseline: 3\n", "<yaml>:2: baseline: expected true/false, got int 3"),
    'model not a string':              ("target: [xnli]\nmodel: 3\n", "<yaml>:2: model: expected a string, got int 3"),
    'train not a mapping':             ("target: [xnli]\ntrain: 3\n", "<yaml>:2: train: expected a mapping of stage settings, got 3"),
    'train value':                     ("target: [xnli]\ntrain: {batch_size: 8.5}\n", "<yaml>:2: train.batch_size: expected an integer, got float 8.5"),
    'train true/false':                ("target: [xnli]\ntrain: {select_best: maybe}\n", "<yaml>:2: train.select_best: expected true/false, got str 'maybe'"),
    'overrides not a mapping':         ("target: [xnli]\noverrides: {xnli: 3}\n", "<yaml>:2: overrides.xnli: expected a mapping of stage settings, got 3"),
    'overrides value (line 3)':        ("target: [xnli]\noverrides:\n  xnli: {lr: fast}\n", "<yaml>:3: overrides.xnli.lr: expected a number, got str 'fast'"),
    'lora not a mapping':              ("target: [xnli]\nlora: 3\n", "<yaml>:2: lora: expected a mapping of LoraSpec settings, got 3"),
    'lora value':                      ("target: [xnli]\nlora: {r: eight}\n", "<yaml>:2: lora.r: expected an integer, got str 'eight'"),
    'intermediate entry':              (INTER + "[3]\n", "<yaml>:2: intermediate.0: expected a mapping of Intermediate settings, got 3"),
    'intermediate tasks not a list':   (INTER + "[{tasks: mnli}]\n", "<yaml>:2: intermediate.0.tasks: expected a list of strings, got str 'mnli'"),
    'intermediate value':              (INTER + "[{tasks: [mnli], cap: many}]\n", "<yaml>:2: intermediate.0.cap: expected an integer, got str 'many'"),
    'mlm value':                       (INTER + "[{tasks: [mnli, rte], mlm: {files: a.txt}}]\n",
                                        "<yaml>:2: intermediate.0.mlm.files: expected a list of strings, got str 'a.txt'"),
    'langs not a list':                ("target: [xnli]\nlangs: {xnli: de}\n", "<yaml>:2: langs.xnli: expected a list of strings, got str 'de'"),
    'translate_train not a list':      ("target: [pawsx]\ntranslate_train: {pawsx: de}\n", "<yaml>:2: translate_train.pawsx: expected a list of strings, got str 'de'"),
    # ranges (each declared range is also tried below, generated from the declarations)
    'negative lr':                     ("target: [xnli]\ntrain: {lr: -1}\n", "<yaml>:2: train.lr: must be > 0, not -1.0"),
    'negative cap':                    ("target: [xnli]\nmax_train_examples: -5\n", "<yaml>:2: max_train_examples: must be >= 1, not -5"),
    'split':                           ("target: [xnli]\nsplit: dev\n", "<yaml>:2: split: must be one of validation, test, not 'dev'"),
    'lora strategy':                   ("target: [xnli]\nlora: {r: 8, strategy: fuse}\n", "<yaml>:2: lora.strategy: must be one of stack, merge, continue, not 'fuse'"),
    # tasks and languages
    'unknown task (target)':           ("target: [xnil]\n", "<yaml>:1: target.0: unknown task 'xnil'. Did you mean 'xnli'"),
    'unknown task (intermediate)':     (INTER + "[mlni]\n", "<yaml>:2: intermediate.0.tasks.0: unknown task 'mlni'. Did you mean 'mnli'"),
    'unknown task (overrides)':        ("target: [xnli]\noverrides: {xnlii: {lr: 1.0e-5}}\n", "<yaml>:2: overrides.xnlii: unknown task 'xnlii'. Did you mean 'xnli'"),
    'unknown task (translate_train)':  ("target: [xnli]\ntranslate_train: {pawsxx: [de]}\n", "<yaml>:2: translate_train.pawsxx: unknown task 'pawsxx'. Did you mean 'pawsx'"),
    'unknown language':                ("target: [xnli]\nlangs:\n  xnli: [de, klingon]\n", "<yaml>:3: langs.xnli.1: xnli has no language 'klingon'. Its languages: ar bg"),
    'empty language list':             ("target: [pawsx]\nlangs: {pawsx: []}\n", "<yaml>:2: langs.pawsx: an empty list; leave pawsx out to evaluate all its languages"),
    'intermediate task as target':     ("target: [mnli]\n", "<yaml>:1: target.0: mnli is an intermediate task, not a target"),
    'no target':                       ("target: []\n", "<yaml>:1: target: a plan needs at least one target task"),
    'no seed':                         ("seeds: []\ntarget: [xnli]\n", "<yaml>:1: seeds: a plan needs at least one seed"),
    'entry without tasks':             (INTER + "[{name: x}]\n", "<yaml>:2: intermediate.0: a mapping entry needs 'tasks', a non-empty list of task names"),
    'target not in the plan':          ("target: [xcopa]\nintermediate: [{name: r, tasks: [siqa], targets: [xnli]}]\n",
                                        "<yaml>:2: intermediate.0.targets.0: 'xnli' is not among the plan's targets"),
    # names that become folder names
    'plan name ../../escaped':         ("name: ../../escaped\ntarget: [pawsx]\n", "<yaml>:1: name: '../../escaped' is not a safe name"),
    'plan name /abs':                  ("name: /abs\ntarget: [pawsx]\n", "<yaml>:1: name: '/abs' is not a safe name"),
    'intermediate name ../../escaped': (INTER + "[{name: ../../escaped, tasks: [mnli]}]\n", "<yaml>:2: intermediate.0.name: '../../escaped' is not a safe name"),
    'intermediate name /abs':          (INTER + "[{name: /abs, tasks: [mnli]}]\n", "<yaml>:2: intermediate.0.name: '/abs' is not a safe name"),
    'duplicate intermediate names':    (INTER + "[mnli, {name: mnli, tasks: [mnli, rte]}]\n",
                                        "<yaml>:2: intermediate.1: two intermediate settings are called 'mnli'; give one a 'name'"),
    'intermediate called like the baseline': (INTER + "[{name: none, tasks: [rte]}]\n",
                                        "<yaml>:2: intermediate.0: two intermediate settings are called 'none'; give one a 'name'"),
}

def plan_error(text:str) -> str:
    "The one-line message with which `load_plan` refuses `text`."
    with pytest.raises(ITTError) as e: load_plan(text)
    msg = str(e.value)
    assert '\n' not in msg, msg
    return msg

@pytest.mark.parametrize('case', YAML_ERRORS)
def test_yaml_errors(case):
    text, expected = YAML_ERRORS[case]
    msg = plan_error(text)
    assert msg.startswith(expected), msg

def test_yaml_exponent_numbers():
    "YAML 1.1 reads `2e-5` (no dot) as a string: every number setting still takes it as a number."
    p = load_plan("target: [xnli]\nintermediate: [{tasks: [mnli, rte], temperature: 2e0}]\ntrain: {lr: 2e-5, weight_decay: 1e-2}\n"
                  "overrides: {xnli: {lr: 3E-5}}\ndev_fraction: 5e-1\nlora: {dropout: 5e-2}\n")
    assert p.train == {'lr': 2e-5, 'weight_decay': 1e-2} and p.overrides == {'xnli': {'lr': 3e-5}}
    assert p.recipe.dev_fraction == 0.5 and p.lora.dropout == 0.05 and p.intermediate[0].sampling.temperature == 2.0
    st = {s.id.split('-')[0]: s for s in (s for c in expand(p) for s in c)}
    assert st['mnli+rte'].optim.lr == 2e-5 and st['mnli+rte.xnli'].optim.lr == 3e-5 and st['mnli+rte'].optim.weight_decay == 0.01
    assert st['mnli+rte'].sampling.temperature == 2.0
    assert make_stage(lr='2e-5').optim.lr == 2e-5 and isinstance(make_stage(lr='2e-5').optim.lr, float)

def test_translate_train_is_a_list_of_languages():
    assert load_plan("target: [pawsx]\ntrain_on_dev: [pawsx]\ntranslate_train: {pawsx: [de]}\n").recipe.translate_train == {'pawsx': ('de',)}

# --- every declared range, read from the declarations ----------------------------------------------------------------

RANGE_KEYS = {'ge', 'gt', 'le', 'lt', 'choices', 'pattern'}
UNSAFE = ('../../escaped', '/abs')

def settings_classes() -> list:
    "Every settings dataclass the package declares (the subclasses of `Settings`, found, not listed)."
    out, todo = set(), [Settings]
    while todo:
        for c in todo.pop().__subclasses__():
            if c not in out: out.add(c); todo.append(c)
    return sorted(out, key=lambda c: c.__name__)

def scalar(hint) -> tuple:
    "(scalar type, listed) of a field's hint: `int|None` -> (int, False); `tuple[int, ...]` -> (int, True)."
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return scalar(next(a for a in typing.get_args(hint) if a is not type(None)))
    if typing.get_origin(hint) is tuple: return typing.get_args(hint)[0], True
    return hint, False

def outside(meta:dict, typ) -> list:
    "Values just outside the range declared in `meta`, of type `typ`."
    step = 1 if typ is int else 1e-3
    out = [meta['ge'] - step] if 'ge' in meta else []
    out += [meta['gt']] if 'gt' in meta else []
    out += [meta['le'] + step] if 'le' in meta else []
    out += [meta['lt']] if 'lt' in meta else []
    out = [typ(v) for v in out]
    if 'choices' in meta: out.append('not-' + '-'.join(map(str, meta['choices'])))
    if 'pattern' in meta: out += list(UNSAFE)
    return out

def inside(meta:dict, typ) -> list:
    "Values at the edges of the range declared in `meta`, inside it."
    step = 1 if typ is int else 1e-3
    out = [meta[k] for k in ('ge', 'le') if k in meta] + ([meta['gt'] + step] if 'gt' in meta else []) + ([meta['lt'] - step] if 'lt' in meta else [])
    out = [typ(v) for v in out]
    return out + list(meta.get('choices', ())) + (['ok', 'A1_b.c+d-e'] if 'pattern' in meta else [])

def expected(meta:dict, path:str, bad) -> str:
    "The start of the message refusing `bad` for the field at `path`."
    return f"{path}: {bad!r} is not a safe name" if 'pattern' in meta else f"{path}: must be"

def ranged(cls) -> list:
    "(field, scalar type, listed) of each field of `cls` declared with a range."
    return [(f, *scalar(field_types(cls)[f.name])) for f in dataclasses.fields(cls) if RANGE_KEYS & set(f.metadata)]

RANGED = [(cls, f.name, bad, listed) for cls in settings_classes() for f, typ, listed in ranged(cls) for bad in outside(f.metadata, typ)]

def test_ranges_found():
    "The declarations are read: the ranges known today are among those found (new ones join without editing this list)."
    found = {f'{c.__name__}.{n}' for c, n, _, _ in RANGED}
    assert {'Optim.lr', 'Optim.warmup_ratio', 'Scope.max_train_examples', 'Scope.split', 'Recipe.dev_fraction', 'Output.report_to',
            'LoraSpec.strategy', 'LoraSpec.dropout', 'Sampling.temperature', 'MLMSpec.probability', 'Stage.name', 'Stage.seed',
            'Plan.name', 'Plan.seeds', 'Intermediate.name'} <= found
    assert {c.__name__ for c in settings_classes()} >= {'Optim', 'Scope', 'Recipe', 'Output', 'LoraSpec', 'Sampling', 'MLMSpec',
                                                       'Stage', 'TaskSettings', 'Plan', 'Intermediate'}

@pytest.mark.parametrize('cls,name,bad,listed', RANGED, ids=[f'{c.__name__}.{n}={b!r}' for c, n, b, _ in RANGED])
def test_range_refused(cls, name, bad, listed):
    "Building a settings object with a value just outside a declared range fails, naming the field and the value."
    with pytest.raises(ITTError) as e: cls(**{name: [bad] if listed else bad})
    msg, meta = str(e.value), dict(cls.__dataclass_fields__[name].metadata)
    assert '\n' not in msg and msg.startswith(expected(meta, name, bad)) and repr(bad) in msg, msg

@pytest.mark.parametrize('cls', settings_classes(), ids=lambda c: c.__name__)
def test_range_edges_accepted(cls):
    "The values at the edges of each declared range (and every choice) are accepted."
    for f, typ, listed in ranged(cls):
        for v in inside(f.metadata, typ):
            assert getattr(cls(**{f.name: [v] if listed else v}), f.name) == ((v,) if listed else v), (f.name, v)

# A plan YAML reaches the settings of its own fields, of `train:` and `overrides:` (TaskSettings: its fields are typed as
# plain mappings), of nested settings (`lora:`, `mlm:`) and of list entries (`intermediate:`).
ENTRIES = {Intermediate: {'tasks': ['mnli', 'rte']}}          # what a list entry needs besides the setting tried
MAPPINGS = {'train': (TaskSettings, lambda d: {'train': d}, 'train.'),
            'overrides': (TaskSettings, lambda d: {'overrides': {'xnli': d}}, 'overrides.xnli.')}

def nested(hint) -> tuple:
    "(settings class, listed) held by a field's hint: `LoraSpec|None` -> (LoraSpec, False); `tuple[Intermediate, ...]` -> (Intermediate, True)."
    for a in (hint, *typing.get_args(hint)):
        if dataclasses.is_dataclass(a): return a, False
        if typing.get_origin(a) is tuple and dataclasses.is_dataclass(typing.get_args(a)[0]): return typing.get_args(a)[0], True
    return None, False

def _under(wrap, key, listed, entry):
    return lambda d: wrap({key: [{**entry, **d}] if listed else d})

def yaml_leaves(cls=Plan, wrap=lambda d: d, path='') -> list:
    "(YAML path, owning class, field, make) of every setting a plan YAML reaches; `make(v)` is the plan mapping setting it to `v`."
    out = []
    for key, (owner, f) in settings_fields(cls).items():
        sub, listed = nested(field_types(owner)[key])
        if cls is Plan and key in MAPPINGS:
            sub, w, p = MAPPINGS[key]; out += yaml_leaves(sub, lambda d, w=w: wrap(w(d)), path + p)
        elif sub is not None:
            out += yaml_leaves(sub, _under(wrap, key, listed, ENTRIES.get(sub, {})), f'{path}{key}.0.' if listed else f'{path}{key}.')
        else: out.append((path + key, owner, f, lambda v, key=key: wrap({key: v})))
    return out

LEAVES = yaml_leaves()
YAML_RANGED = [(path, f, bad, listed, make) for path, owner, f, make in LEAVES if RANGE_KEYS & set(f.metadata)
               for typ, listed in [scalar(field_types(owner)[f.name])] for bad in outside(f.metadata, typ)]

def test_yaml_reaches_every_group():
    "The walk over the plan's declarations reaches the groups a plan sets, at the paths a user writes."
    paths = {p for p, *_ in LEAVES}
    assert {'seeds', 'split', 'dev_fraction', 'report_to', 'train.lr', 'train.split', 'overrides.xnli.max_eval_examples', 'lora.strategy',
            'intermediate.0.name', 'intermediate.0.cap', 'intermediate.0.mlm.probability'} <= paths
    assert {o for _, o, _, _ in LEAVES} >= {Plan, Intermediate, Optim, Scope, settings_fields(Plan)['dev_fraction'][0],
                                           settings_fields(Plan)['report_to'][0], nested(field_types(Plan)['lora'])[0]}
    assert 'heldout_tasks' not in paths and 'run' not in paths        # set by the plan itself, not by its YAML

@pytest.mark.parametrize('path,f,bad,listed,make', YAML_RANGED, ids=[f'{p}={b!r}' for p, _, b, _, _ in YAML_RANGED])
def test_yaml_range_refused(path, f, bad, listed, make):
    "A value just outside a declared range, written in a plan at any level, is refused on one line naming the key and its line."
    msg = plan_error(yaml.safe_dump({'target': ['xnli'], **make([bad] if listed else bad)}, sort_keys=False))
    assert re.match(r'<yaml>:\d+: ', msg) and expected(f.metadata, path, bad) in msg and repr(bad) in msg, msg

# --- every Optim / Scope setting in `train:` and `overrides:` -------------------------------------------------------

def other_value(cls, f):
    "A valid value of field `f` of `cls` that differs from its default."
    default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
    typ, _ = scalar(field_types(cls)[f.name])
    if 'choices' in f.metadata: candidates = list(f.metadata['choices'])
    elif typ is bool: candidates = [not default]
    elif typ is int: candidates = [(default or 0) + 1, f.metadata.get('ge', 1), 1, 2]
    else: candidates = [2 * (default or 0), (default or 0) + 0.5, ((default or 0) + f.metadata.get('lt', 1)) / 2, 0.5]
    for v in candidates:
        if v == default: continue
        try: cls(**{f.name: v}); return v
        except ITTError: pass
    raise AssertionError(f'no valid value other than the default for {cls.__name__}.{f.name}')

TASK_FIELDS = [(cls, f) for cls in (Optim, Scope) for f in dataclasses.fields(cls)]

def group_of(name:str) -> str:
    "The `Stage` group holding setting `name` (e.g. 'optim' for 'lr')."
    owner = settings_fields(Stage)[name][0]
    return next(f.name for f in dataclasses.fields(Stage) if field_types(Stage)[f.name] is owner)

def test_task_settings_are_optim_and_scope():
    assert set(settings_fields(TaskSettings)) == {f.name for _, f in TASK_FIELDS}

@pytest.mark.parametrize('cls,f', TASK_FIELDS, ids=[f'{c.__name__}.{f.name}' for c, f in TASK_FIELDS])
def test_task_setting_in_train_and_overrides(cls, f):
    "Each setting of `Optim` and `Scope` is accepted in `train:` (every stage) and in `overrides:` (the stages of that task)."
    v, g = other_value(cls, f), group_of(f.name)
    text = yaml.safe_dump({'target': ['xnli'], 'intermediate': ['mnli'], 'train': {f.name: v}})
    stages = [s for c in expand(load_plan(text)) for s in c]
    assert len(stages) == 3 and all(getattr(getattr(s, g), f.name) == v for s in stages), f.name
    text = yaml.safe_dump({'target': ['xnli'], 'intermediate': ['mnli'], 'overrides': {'xnli': {f.name: v}}})
    got = [(s.target, getattr(getattr(s, g), f.name)) for c in expand(load_plan(text)) for s in c]
    assert sorted(t or '' for t, _ in got) == ['', 'xnli', 'xnli'], got
    assert all((x == v) == (t == 'xnli') for t, x in got), (f.name, got)   # the target stages, not the intermediate stage
