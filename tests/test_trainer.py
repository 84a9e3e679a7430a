"""The Trainer layer: the private transformers hook `StageTrainer` overrides is still there and still called; its gradient
clipping is bit-identical to torch's; `no_nan_fill` always restores torch's flag."""
import inspect
import pytest
import torch
import transformers
from transformers import Trainer, TrainingArguments
from itt_xling.trainer import StageTrainer, no_nan_fill

def test_clip_hook_still_in_transformers():
    "`StageTrainer` overrides `Trainer._clip_grad_norm(self, model)`: an upgrade that renames it or stops calling it fails here."
    assert hasattr(Trainer, '_clip_grad_norm'), f'transformers {transformers.__version__}: Trainer._clip_grad_norm is gone'
    assert list(inspect.signature(Trainer._clip_grad_norm).parameters) == ['self', 'model'], inspect.signature(Trainer._clip_grad_norm)
    assert 'self._clip_grad_norm(' in inspect.getsource(Trainer), f'transformers {transformers.__version__}: the training loop no longer calls it'
    assert '_clip_grad_norm' in StageTrainer.__dict__                  # ... and this is what StageTrainer overrides

def tiny_model():
    "A small network with one frozen layer (its parameters have no gradient)."
    torch.manual_seed(0)
    m = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.Tanh(), torch.nn.Linear(16, 16), torch.nn.Tanh(), torch.nn.Linear(16, 3))
    m[2].requires_grad_(False)
    return m

def with_grads(inf:bool=False):
    "The tiny model after one backward pass (with `inf`, one gradient entry is infinite: the norm is not finite)."
    m = tiny_model()
    x, y = torch.randn(8, 6, generator=torch.Generator().manual_seed(1)), torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    torch.nn.functional.cross_entropy(m(x), y).backward()
    if inf: m[0].weight.grad[0, 0] = float('inf')
    return m

def grads(m) -> list: return [None if p.grad is None else p.grad.clone() for p in m.parameters()]

def bits(t): return t.view(torch.int32) if t.dtype == torch.float32 else t

def same_bits(a:list, b:list) -> bool:
    "Gradients equal bit for bit (NaN included), and missing in the same places."
    return len(a) == len(b) and all((x is None and y is None) or (x is not None and y is not None and torch.equal(bits(x), bits(y)))
                                    for x, y in zip(a, b))

NORM = torch.nn.utils.get_total_norm([p.grad for p in with_grads().parameters() if p.grad is not None]).item()

@pytest.mark.parametrize('case,max_norm,inf', [('above max_grad_norm', NORM / 10, False), ('below max_grad_norm', NORM * 10, False),
                                               ('at max_grad_norm', NORM, False), ('non-finite', 1.0, True)])
def test_clipping_bit_identical_to_torch(tmp_path, case, max_norm, inf):
    "One step's gradients after `StageTrainer`'s clipping equal torch's `clip_grad_norm_` and the stock Trainer's, bit for bit."
    m, ref, stock = with_grads(inf), with_grads(inf), with_grads(inf)   # three copies of the same step
    assert grads(ref)[2] is None and same_bits(grads(ref), grads(m)) and same_bits(grads(stock), grads(m))
    before = grads(m)
    args = TrainingArguments(output_dir=str(tmp_path), use_cpu=True, max_grad_norm=max_norm, report_to='none')
    trainer = StageTrainer(model=m, args=args)
    norm = trainer._clip_grad_norm(m)
    ref_norm = torch.nn.utils.clip_grad_norm_(ref.parameters(), max_norm)
    assert same_bits(grads(m), grads(ref)), case
    assert same_bits([norm], [ref_norm]), (norm, ref_norm)
    Trainer._clip_grad_norm(Trainer(model=stock, args=args), stock)  # what the package would do without the override
    assert same_bits(grads(m), grads(stock)), case
    if case != 'at max_grad_norm':                                   # the cases are what they say: clipped or left alone
        assert (not same_bits(grads(m), before)) == (case in ('above max_grad_norm', 'non-finite')), case

def test_no_nan_fill_restores_the_flag():
    "Within the block torch does not fill new tensors with NaN; after it, the flag is back, also when the block raised."
    import torch.utils.deterministic as tdet
    saved = tdet.fill_uninitialized_memory
    try:
        for start in (True, False):
            tdet.fill_uninitialized_memory = start
            with no_nan_fill(): assert tdet.fill_uninitialized_memory is False
            assert tdet.fill_uninitialized_memory is start
            with pytest.raises(KeyboardInterrupt):
                with no_nan_fill():
                    assert tdet.fill_uninitialized_memory is False
                    raise KeyboardInterrupt('a crash in training')
            assert tdet.fill_uninitialized_memory is start
    finally: tdet.fill_uninitialized_memory = saved
