"""Models on the tiny encoder and real rows: every kind trains and predicts, encoders move between stages, LoRA strategies."""
import numpy as np, pytest, torch, datasets
from peft import PeftModel
from itt_xling.core import ITTError
from itt_xling.load import load_split
from itt_xling.features import featurize, data_collator, postprocess
from itt_xling.settings import LoraSpec
from itt_xling.models import (load_tokenizer, build_model, head_modules, transfer_encoder, encoder_state, lora_config, apply_lora,
                              lora_state, adapter_weights, merge_lora, save_model, load_model, train_steps, mean_loss, predict)

datasets.disable_progress_bars()

@pytest.fixture(scope='module')
def tok(): return load_tokenizer('tiny-xlmr')

@pytest.fixture(scope='module')
def bert_dir(tmp_path_factory, tok):
    "A tiny BERT-like encoder (the layout of me5-small) with XLM-R's tokenizer."
    from transformers import BertConfig, BertModel
    d = tmp_path_factory.mktemp('tiny-bert')
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                         pad_token_id=tok.pad_token_id)).save_pretrained(d)
    tok.save_pretrained(d)
    return d

def data(data_dir, tok, task, lang, n=32):
    ds = load_split(task, 'validation', lang, data_dir=data_dir).select(range(n))
    return ds, featurize(task, ds, tok, cache=False), data_collator(task, tok)

KINDS = [('xnli', 'de', int, 32), ('udpos', 'en', list, 32), ('xquad', 'en', str, 16), ('xcopa', 'it', int, 32)]

@pytest.mark.parametrize('task,lang,typ,n', KINDS)
def test_every_kind_trains_and_predicts(data_dir, tok, task, lang, typ, n):
    ds, feats, coll = data(data_dir, tok, task, lang, n)
    model = build_model('tiny-xlmr', task)
    before = mean_loss(model, feats, coll)
    losses = train_steps(model, feats, coll, steps=30, lr=2e-3, batch_size=32)
    assert len(losses) == 30 and mean_loss(model, feats, coll) < 0.8 * before
    assert np.mean(losses[-5:]) < np.mean(losses[:5])
    preds = postprocess(task, ds, feats, predict(model, feats, coll))
    assert len(preds) == len(ds) and all(isinstance(p, typ) for p in preds)
    if task == 'udpos': assert [len(p) for p in preds] == [len(t) for t in ds['tokens']]
    if task == 'xquad': assert all(p in c for p, c in zip(preds, ds['context']))
    if task == 'xcopa': assert set(preds) <= {0, 1}

def test_labels_in_config():
    m = build_model('tiny-xlmr', 'udpos')
    assert m.config.num_labels == 17 and m.config.id2label[0] == 'ADJ' and m.config.label2id['X'] == 16
    assert type(build_model('tiny-xlmr', 'tatoeba')).__name__ == 'XLMRobertaModel'
    assert head_modules(build_model('tiny-xlmr', 'xcopa')) == ['classifier']
    assert head_modules(build_model('tiny-xlmr', 'tatoeba')) == []

def test_transfer_into_bare_encoder(data_dir, tok):
    "A retrieval stage gets the trained encoder as it is: nothing is re-initialised."
    _, feats, coll = data(data_dir, tok, 'xnli', 'de', 8)
    cls = build_model('tiny-xlmr', 'xnli')
    train_steps(cls, feats, coll, steps=2)
    enc = build_model('tiny-xlmr', 'tatoeba')
    rep = transfer_encoder(cls, enc)
    a, b = cls.base_model.state_dict(), enc.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a) and rep['head'] == []

def test_bad_encoder(monkeypatch):
    with pytest.raises(ITTError, match='does not exist'): build_model('./no/such/dir', 'xnli')
    monkeypatch.setenv('HF_HUB_OFFLINE', '1')
    with pytest.raises(ITTError, match='offline'): load_tokenizer('FacebookAI/xlm-roberta-base')
    with pytest.raises(ITTError, match='offline'): build_model('FacebookAI/xlm-roberta-base', 'xnli')

@pytest.mark.parametrize('task', ['xnli', 'udpos', 'xquad', 'xcopa', 'tatoeba'])
def test_bert_like_encoder_builds_every_kind(bert_dir, task):
    m = build_model(bert_dir, task)
    assert type(m).__name__.startswith('Bert')
    ref = build_model(bert_dir, 'tatoeba')
    a, b = ref.state_dict(), m.base_model.state_dict()
    shared = [k for k in b if k in a]
    assert shared and all(torch.equal(a[k], b[k]) for k in shared)      # pretrained weights loaded

def test_bert_like_lora_trains_pooler_and_head(data_dir, tok, bert_dir):
    ds, feats, coll = data(data_dir, tok, 'xnli', 'de', 16)
    m = build_model(bert_dir, 'xnli', lora=LoraSpec(r=4))
    names = [n for n, p in m.named_parameters() if p.requires_grad]
    assert any('pooler' in n for n in names) and any('classifier' in n for n in names)
    before = mean_loss(m, feats, coll)
    train_steps(m, feats, coll, steps=10, lr=5e-3)
    assert mean_loss(m, feats, coll) < before

def test_transfer_encoder_across_kinds(data_dir, tok):
    _, feats, coll = data(data_dir, tok, 'xquad', 'en', 8)
    qa = build_model('tiny-xlmr', 'xquad')
    train_steps(qa, feats, coll, steps=2)
    cls = build_model('tiny-xlmr', 'xnli')
    head0 = {k: v.clone() for k, v in cls.classifier.state_dict().items()}
    enc0 = {k: v.clone() for k, v in cls.base_model.state_dict().items()}
    rep = transfer_encoder(qa, cls)
    a, b = qa.base_model.state_dict(), cls.base_model.state_dict()
    assert set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(enc0[k], b[k]) for k in b)                  # it did change the encoder
    assert all(not torch.equal(head0[k], v) for k, v in cls.classifier.state_dict().items() if v.ndim == 2)  # fresh head
    assert rep['tensors'] == len(a) and rep['params'] == sum(v.numel() for v in a.values())
    assert rep['head'] == ['classifier'] and rep['head_reinitialised'] and rep['only_in_dst'] == [] and rep['shape_mismatch'] == []
    # and the other way round, classification -> tagging, with the head left alone on request
    tag = build_model('tiny-xlmr', 'udpos')
    h = {k: v.clone() for k, v in tag.classifier.state_dict().items()}
    transfer_encoder(cls, tag, reinit_head=False)
    assert all(torch.equal(h[k], v) for k, v in tag.classifier.state_dict().items())

def test_transfer_between_encoder_layouts_reports_skips(bert_dir):
    qa, cls = build_model(bert_dir, 'xquad'), build_model(bert_dir, 'xnli')
    rep = transfer_encoder(qa, cls)
    assert rep['only_in_dst'] == ['pooler.dense.bias', 'pooler.dense.weight']     # BERT QA models have no pooler

def test_transfer_from_lora_merges_adapters(data_dir, tok):
    _, feats, coll = data(data_dir, tok, 'xnli', 'de', 16)
    s1 = build_model('tiny-xlmr', 'xnli', lora=LoraSpec(r=4))
    train_steps(s1, feats, coll, steps=5, lr=5e-3)
    dst = build_model('tiny-xlmr', 'xcopa')
    rep = transfer_encoder(s1, dst)
    assert rep['merged_lora'] and all(k.endswith(('query.weight', 'value.weight')) for k in rep['merged_lora'])
    merged = merge_lora(s1).base_model.state_dict()
    got = dst.base_model.state_dict()
    assert all(torch.allclose(merged[k], got[k], atol=1e-6) for k in merged)
    assert rep['only_in_dst'] == ['pooler.dense.bias', 'pooler.dense.weight']   # XLM-R's multiple-choice head reads the pooler

@pytest.fixture(scope='module')
def stage1(data_dir, tok):
    _, feats, coll = data(data_dir, tok, 'xnli', 'de', 16)
    s1 = build_model('tiny-xlmr', 'xnli', lora=LoraSpec(r=4, alpha=8))
    train_steps(s1, feats, coll, steps=5, lr=5e-3)
    return s1

def test_lora_only_adapter_and_head_train(stage1):
    assert isinstance(stage1, PeftModel)
    train = [n for n, p in stage1.named_parameters() if p.requires_grad]
    assert train and all('lora_' in n or 'modules_to_save' in n for n in train)
    assert any('classifier' in n for n in train)

def test_stack_keeps_stage1_adapter_bit_identical(data_dir, tok, stage1):
    ds, feats, coll = data(data_dir, tok, 'xcopa', 'it', 16)
    w_stage1 = adapter_weights(stage1, 'xnli')
    s2 = apply_lora(build_model('tiny-xlmr', 'xcopa'), LoraSpec(r=4, strategy='stack'), 'xcopa', previous=stage1)
    assert list(s2.active_adapters) == ['xnli', 'xcopa'] and lora_state(s2)['frozen'] == ['xnli']
    w_new0 = adapter_weights(s2, 'xcopa')
    before = mean_loss(s2, feats, coll)
    train_steps(s2, feats, coll, steps=8, lr=5e-3)
    assert mean_loss(s2, feats, coll) < before
    w_after = adapter_weights(s2, 'xnli')
    assert set(w_after) == set(w_stage1) and all(torch.equal(w_after[k], w_stage1[k]) for k in w_stage1)
    assert any(not torch.equal(v, w_new0[k]) for k, v in adapter_weights(s2, 'xcopa').items())   # stage 2 did train
    # the stage-1 adapter is really active: switching it off changes the output
    x = coll([feats[i] for i in range(4)])
    with torch.no_grad():
        both = s2(**x).logits
        s2.base_model.set_adapter(['xcopa'])
        alone = s2(**x).logits
        s2.base_model.set_adapter(['xnli', 'xcopa']); s2.set_requires_grad(['xnli'], False)
    assert not torch.allclose(both, alone)

def test_merge_and_continue_strategies(stage1):
    m = apply_lora(build_model('tiny-xlmr', 'xcopa'), LoraSpec(strategy='merge'), 'xcopa', previous=stage1)
    assert list(m.peft_config) == ['xcopa']
    ref, got = encoder_state(stage1), encoder_state(m, merge_lora=False)
    assert all(torch.allclose(got[k], ref[k], atol=1e-6) for k in ref)
    c = apply_lora(build_model('tiny-xlmr', 'xcopa'), LoraSpec(strategy='continue'), 'xcopa', previous=stage1)
    w, w1 = adapter_weights(c, 'xcopa'), adapter_weights(stage1, 'xnli')
    assert set(w) == set(w1) and all(torch.equal(w[k], w1[k]) for k in w)
    assert lora_state(c)['frozen'] == [] and any(p.requires_grad for n, p in c.named_parameters() if 'lora_' in n)
    with pytest.raises(ITTError, match="without '.'"):
        apply_lora(build_model('tiny-xlmr', 'xcopa'), LoraSpec(), 'stage.2', previous=stage1)
    with pytest.raises(ITTError, match='already used'):
        apply_lora(build_model('tiny-xlmr', 'xcopa'), LoraSpec(), 'xnli', previous=stage1)

def test_lora_spec_checks():
    with pytest.raises(ITTError, match='strategy: must be one of stack, merge, continue'): LoraSpec(strategy='replace')
    with pytest.raises(ITTError, match='r: must be >= 1, not 0'): LoraSpec(r=0)
    assert lora_config(LoraSpec(target_modules=['query'])).target_modules == {'query'}

def test_merged_equals_unmerged(data_dir, tok, stage1):
    _, feats, coll = data(data_dir, tok, 'xcopa', 'it', 8)
    s2 = apply_lora(build_model('tiny-xlmr', 'xcopa'), LoraSpec(r=4), 'xcopa', previous=stage1)
    train_steps(s2, feats, coll, steps=3, lr=5e-3)
    x = coll([feats[i] for i in range(8)])
    merged = merge_lora(s2)
    assert not isinstance(merged, PeftModel) and isinstance(s2, PeftModel)
    with torch.no_grad(): a, b = s2(**x).logits, merged(**x).logits
    assert (a - b).abs().max().item() < 1e-5
    assert a.abs().max().item() > 0

def test_save_load_round_trip(data_dir, tok, stage1, tmp_path):
    _, feats, coll = data(data_dir, tok, 'xcopa', 'it', 8)
    s2 = apply_lora(build_model('tiny-xlmr', 'xcopa'), LoraSpec(r=4), 'xcopa', previous=stage1)
    train_steps(s2, feats, coll, steps=3, lr=5e-3)
    d = save_model(s2, tmp_path/'stage2', tok)
    back = load_model(d)
    sa, sb = s2.state_dict(), back.state_dict()
    assert set(sa) == set(sb) and all(torch.equal(sa[k], sb[k]) for k in sa)
    assert lora_state(back) == lora_state(s2)
    assert [n for n, p in back.named_parameters() if p.requires_grad] == [n for n, p in s2.named_parameters() if p.requires_grad]
    x = coll([feats[i] for i in range(8)])
    with torch.no_grad(): assert torch.equal(s2(**x).logits, back(**x).logits)
    # a plain model too, and a folder that is not a saved model
    plain = build_model('tiny-xlmr', 'udpos')
    back = load_model(save_model(plain, tmp_path/'plain', tok))      # a model folder holds its tokenizer
    assert all(torch.equal(v, back.state_dict()[k]) for k, v in plain.state_dict().items())
    with pytest.raises(ITTError, match='itt_model.json'): load_model(tmp_path)
