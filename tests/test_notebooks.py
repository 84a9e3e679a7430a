"""Hygiene of the notebooks that are the package's source and its docs."""
import ast, json, re
from pathlib import Path
import pytest

NBS = sorted((Path(__file__).resolve().parent.parent/'nbs').rglob('*.ipynb'))

def _cells(nb_path):
    return json.loads(nb_path.read_text(encoding='utf-8'))['cells']

def _mixes_imports(src:str) -> bool:
    "What nbdev's docs build treats as 'imports and other code' (it executes such cells)."
    lines = ['' if l.lstrip().startswith(('%', '!')) else l for l in src.splitlines()]
    if any(l.startswith(('#| export', '#| exporti')) for l in lines): return False
    try: tree = ast.parse('\n'.join(lines))
    except SyntaxError: return False
    nodes = list(ast.walk(tree))
    return any(isinstance(n, (ast.Import, ast.ImportFrom)) for n in nodes) and \
           any(isinstance(n, ast.Expr) and not (isinstance(n.value, ast.Call) and 'warn' in ast.unparse(n.value.func)) or isinstance(n, ast.Assign) for n in nodes)

@pytest.mark.parametrize('nb', NBS, ids=lambda p: p.name)
def test_imports_in_their_own_cells(nb):
    bad = [i for i, c in enumerate(_cells(nb)) if c['cell_type'] == 'code' and _mixes_imports(''.join(c['source']))]
    assert not bad, f'{nb.name}: cells {bad} mix imports with other code; the docs build would execute them'

@pytest.mark.parametrize('nb', NBS, ids=lambda p: p.name)
def test_no_machine_paths(nb):
    text = nb.read_text(encoding='utf-8')
    here = re.escape(str(Path(__file__).resolve().parent.parent.parent))   # the folder this checkout sits in
    found = re.findall(rf'(?:{here}/|/root/|/home/\w+/|/Users/\w+/|site-packages)[^"\s]*', text)
    assert not found, f'{nb.name} shows machine paths: {found[:3]}'

@pytest.mark.parametrize('nb', [p for p in NBS if p.name != 'index.ipynb' and 'tutorials' not in p.parts], ids=lambda p: p.name)
def test_module_notebooks_open_with_title_summary_default_exp(nb):
    cells = _cells(nb)
    first = ''.join(cells[0]['source'])
    assert first.startswith('# ') and '\n> ' in first, f'{nb.name}: first cell must be "# Title" then "> summary"'
    exports = any(''.join(c['source']).startswith('#| export') for c in cells if c['cell_type'] == 'code')
    if exports:  # a module notebook (a page that exports nothing is documentation only)
        assert any('#| default_exp' in ''.join(c['source']) for c in cells[:3] if c['cell_type'] == 'code'), f'{nb.name}: no #| default_exp'
