"""Write README.md from nbs/index.ipynb (what nbdev_readme does, without Quarto).

Markdown cells are copied as they are; code cells not marked `#| hide` are shown as Python blocks
followed by their text output; directive lines (`#| ...`) are dropped.
Usage: python tools/readme.py [--check]   (--check exits 1 when README.md is stale)"""
import json, re, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

def render(nb_path=ROOT/'nbs'/'index.ipynb') -> str:
    nb = json.loads(Path(nb_path).read_text(encoding='utf-8'))
    parts = []
    for cell in nb['cells']:
        src = ''.join(cell['source'])
        if cell['cell_type'] == 'markdown':   # images are relative to nbs/, the README sits one level up
            parts.append(re.sub(r'(!\[[^\]]*\]\()(?!https?://|/)', r'\1nbs/', src.strip())); continue
        lines = src.splitlines()
        if any(l.strip() in ('#| hide', '#|hide') or l.startswith('#| default_exp') for l in lines): continue
        code = '\n'.join(l for l in lines if not l.startswith('#|')).strip()
        if code: parts.append(f'```python\n{code}\n```')
        for out in cell.get('outputs', []):
            text = out.get('text') or out.get('data', {}).get('text/markdown') or out.get('data', {}).get('text/plain')
            if text: parts.append('```\n' + ''.join(text).rstrip() + '\n```')
    return '<!-- generated from nbs/index.ipynb by tools/readme.py: edit the notebook, not this file -->\n\n' + '\n\n'.join(p for p in parts if p) + '\n'

if __name__ == '__main__':
    text, readme = render(), ROOT/'README.md'
    if '--check' in sys.argv:
        ok = readme.exists() and readme.read_text(encoding='utf-8') == text
        print('README.md is in sync with nbs/index.ipynb' if ok else 'README.md is stale: run python tools/readme.py')
        sys.exit(0 if ok else 1)
    readme.write_text(text, encoding='utf-8')
    print(f'wrote {readme.name}')
