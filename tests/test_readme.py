import subprocess, sys
from pathlib import Path
ROOT = Path(__file__).resolve().parent.parent

def test_readme_in_sync_with_index_notebook():
    r = subprocess.run([sys.executable, 'tools/readme.py', '--check'], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr

def test_readme_opens_with_two_commands():
    text = (ROOT/'README.md').read_text()
    blocks = [b for b in text.split('```sh')[1:]]
    assert len(blocks) == 2
    assert 'pip install torch==2.13.0' in blocks[0] and 'itt-xling' in blocks[0]
    assert '.[dev]' in blocks[1] and 'tools/test.sh' in blocks[1]
