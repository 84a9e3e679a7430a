"""Docs check without Quarto: nbdev_proc_nbs processes the notebooks as the docs build does, then
every processed notebook is rendered to HTML with nbconvert into _docs_html/. Fails when a notebook
does not process or render, lacks its title, or loses a figure on the way."""
import os, subprocess, sys, tempfile
from pathlib import Path
import nbformat
from nbconvert import HTMLExporter

ROOT = Path(__file__).resolve().parent.parent

def proc_nbs():
    """Run nbdev_proc_nbs. It first installs Quarto when `quarto` is not on PATH (a download, impossible offline),
    so where Quarto is absent a stand-in named `quarto` is put on PATH for this one command; nothing calls it."""
    env = dict(os.environ)
    with tempfile.TemporaryDirectory() as shim:
        if not any((Path(d)/'quarto').exists() for d in env.get('PATH', '').split(os.pathsep)):
            q = Path(shim)/'quarto'
            q.write_text('#!/bin/sh\necho "quarto is not installed here" >&2\nexit 1\n'); q.chmod(0o755)
            env['PATH'] = shim + os.pathsep + env.get('PATH', '')
        subprocess.run(['nbdev_proc_nbs'], check=True, cwd=ROOT, env=env)

def main():
    proc_nbs()
    proc, out = ROOT/'_proc', ROOT/'_docs_html'
    out.mkdir(exist_ok=True)
    nbs = sorted(p for p in proc.rglob('*.ipynb') if '.ipynb_checkpoints' not in p.parts)
    if not nbs: sys.exit('docs check: nbdev_proc_nbs produced no notebooks')
    exporter, problems = HTMLExporter(), []
    for p in nbs:
        nb = nbformat.read(p, as_version=4)
        html, _ = exporter.from_notebook_node(nb)
        n_img = sum(1 for c in nb.cells if c.cell_type == 'code' for o in c.get('outputs', [])
                    if 'image/png' in o.get('data', {}) or 'image/svg+xml' in o.get('data', {}))
        first = next((c.source for c in nb.cells if c.cell_type in ('markdown', 'raw')), '')
        if 'title:' not in first and not first.lstrip().startswith('#'): problems.append(f'{p.name}: no title')
        if html.count('<img') + html.count('<svg') < n_img: problems.append(f'{p.name}: a figure was lost')
        dest = out/p.relative_to(proc).with_suffix('.html')
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(html, encoding='utf-8')
        print(f'{p.relative_to(proc)} -> {dest.relative_to(ROOT)} ({n_img} figures)')
    if problems: sys.exit('docs check failed:\n' + '\n'.join(problems))
    print(f'docs check: {len(nbs)} notebooks rendered')

if __name__ == '__main__': main()
