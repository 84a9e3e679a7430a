"""Shared fixtures: the local data folder (skip cleanly where it is absent) and offline hub settings."""
import os
from pathlib import Path
import pytest

os.environ.setdefault('HF_HUB_OFFLINE', '1')
os.environ.setdefault('HF_DATASETS_OFFLINE', '1')
os.environ.setdefault('TRANSFORMERS_OFFLINE', '1')

ROOT = Path(__file__).resolve().parent.parent

def _data_dir():
    return Path(os.environ.get('ITT_XLING_DATA', ROOT.parent/'shared'/'data'))

@pytest.fixture(scope='session')
def data_dir():
    d = _data_dir()
    if not d.is_dir(): pytest.skip(f'local data folder not found ({d}); set ITT_XLING_DATA')
    return d
