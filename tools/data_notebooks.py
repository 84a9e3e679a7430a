"""Which notebooks need the local data folder, so that `nbdev_test` can skip them where there is none (a CI runner).

The rule, read from the notebooks and the package (nothing to mark by hand); a notebook needs the data folder when
one of its (non-exported) code cells
- calls `find_data_dir()` and the notebook never tests the result in an `if` (`if data is not None:`,
  `... if data else ...`): a notebook that tests it runs without the folder (`assert data is not None` is no such
  test: it fails without the folder), or
- calls a package function whose `data_dir` parameter defaults to None (then: a folder it finds, or the hub)
  without passing `data_dir`.
Command-line calls (`main(['run', ...])`) are not seen: a notebook that runs plans through the CLI passes `--data-dir`
or handles the folder's absence.

Usage: python tools/data_notebooks.py            list the notebooks that need the folder, and why
       python tools/data_notebooks.py --skip-re  print the `nbdev_test --skip_file_re` value for this machine: nbdev's
                                                  default when the data folder is found, plus those notebooks when it
                                                  is not; what is skipped and why goes to stderr"""
import ast, json, re, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NBS = ROOT/'nbs'
NBDEV_SKIP = '^[_.]'   # nbdev_test's own default: files starting with _ or .

def _code_cells(nb_path):
    cells = json.loads(Path(nb_path).read_text(encoding='utf-8'))['cells']
    for i, c in enumerate(cells):
        src = ''.join(c['source'])
        if c['cell_type'] != 'code' or src.lstrip().startswith(('#| export', '#|export')): continue
        try: yield i, ast.parse('\n'.join('' if l.lstrip().startswith(('%', '!')) else l for l in src.splitlines()))
        except SyntaxError: continue

def _calls_find_data_dir(node):
    return isinstance(node, ast.Call) and not node.args and not node.keywords and \
        (getattr(node.func, 'id', None) or getattr(node.func, 'attr', None)) == 'find_data_dir'

def implicit_data_functions(pkg=ROOT/'itt_xling') -> dict:
    "{name: position of `data_dir`} of the package's public functions whose `data_dir` defaults to None."
    out = {}
    for f in sorted(Path(pkg).glob('*.py')):
        for n in ast.parse(f.read_text(encoding='utf-8')).body:
            if not isinstance(n, ast.FunctionDef) or n.name.startswith('_'): continue
            a = n.args
            pos, kwonly = a.posonlyargs + a.args, list(zip(a.kwonlyargs, a.kw_defaults))
            pos_defaults = dict(zip(pos[len(pos) - len(a.defaults):], a.defaults))
            for i, arg in enumerate(pos):
                if arg.arg == 'data_dir' and _is_none(pos_defaults.get(arg)): out[n.name] = i
            for arg, d in kwonly:
                if arg.arg == 'data_dir' and _is_none(d): out[n.name] = None
    return out

def _is_none(node): return isinstance(node, ast.Constant) and node.value is None

def _implicit_call(node, funcs):
    "`node` calls one of `funcs` without giving its `data_dir`."
    if not isinstance(node, ast.Call): return False
    name = getattr(node.func, 'id', None) or getattr(node.func, 'attr', None)
    if name not in funcs: return False
    if any(k.arg in ('data_dir', None) for k in node.keywords): return False   # given, or maybe in **kwargs
    i = funcs[name]
    return not (i is not None and (len(node.args) > i or any(isinstance(a, ast.Starred) for a in node.args)))

def needs_data(nb_path, funcs=None) -> str|None:
    "Why the notebook at `nb_path` needs the local data folder, or None when it runs without one."
    funcs = implicit_data_functions() if funcs is None else funcs
    first, names, tested = None, set(), set()
    cells = list(_code_cells(nb_path))
    for i, tree in cells:
        for n in ast.walk(tree):
            if _implicit_call(n, funcs):
                return f'cell {i} calls {ast.unparse(n.func)}() without data_dir (its default: a folder it finds, or the hub)'
    for i, tree in cells:
        for n in ast.walk(tree):
            if _calls_find_data_dir(n) and first is None: first = i
            if isinstance(n, ast.Assign) and _calls_find_data_dir(n.value):
                names |= {t.id for t in n.targets if isinstance(t, ast.Name)}
    if first is None: return None
    for i, tree in cells:
        for n in ast.walk(tree):
            if isinstance(n, (ast.If, ast.IfExp)):
                tested |= {m.id for m in ast.walk(n.test) if isinstance(m, ast.Name)} & names
    if names and tested == names: return None
    return f'cell {first} calls find_data_dir() and uses the folder without testing that it exists'

def notebooks():
    "The notebooks nbdev_test runs: every .ipynb under nbs/ outside folders and files starting with _ or ."
    return sorted(p for p in NBS.rglob('*.ipynb')
                  if not any(re.match(NBDEV_SKIP, part) for part in p.relative_to(NBS).parts))

def data_dir():
    "The data folder the notebooks will find (they run from nbs/), or '' when there is none."
    code = 'from itt_xling.core import find_data_dir; d = find_data_dir(); print(d or "")'
    r = subprocess.run([sys.executable, '-c', code], cwd=NBS, capture_output=True, text=True)
    if r.returncode: sys.exit(f'finding the data folder failed:\n{r.stderr.strip()}')
    return r.stdout.strip()

def skip_re(log=sys.stderr) -> str:
    "The `--skip_file_re` for nbdev_test here; reports what is skipped and why on `log`."
    if d := data_dir():
        print(f'local data folder found ({Path(d).parent.name}/{Path(d).name}): every notebook runs', file=log)
        return NBDEV_SKIP
    funcs = implicit_data_functions()
    skipped = [(p, why) for p in notebooks() if (why := needs_data(p, funcs))]
    print(f'no local data folder (set ITT_XLING_DATA to use one): skipping {len(skipped)} notebook(s) that need it', file=log)
    for p, why in skipped: print(f'  skipped {p.relative_to(NBS)}: {why}', file=log)
    names = sorted({p.name for p, _ in skipped})
    return NBDEV_SKIP + (f"|^(?:{'|'.join(re.escape(n) for n in names)})$" if names else '')

if __name__ == '__main__':
    if '--skip-re' in sys.argv: print(skip_re())
    else:
        funcs = implicit_data_functions()
        for p in notebooks():
            if why := needs_data(p, funcs): print(f'{p.relative_to(NBS)}: {why}')
