"""Model FLOPs utilisation (MFU) of training an XLM-R-Large-shaped encoder in bf16 on a GPU.

Random-init XLM-R Large shape (24 layers, hidden 1024, 16 heads, FFN 4096, 250,002-piece vocabulary) with a
classification head; batches of real XNLI lengths padded per batch (itt_xling's collator) and, for comparison, padded
to 256. MFU = model FLOPs per second / the GPU's peak dense bf16 FLOP/s, with model FLOPs per step =
6 × (non-embedding parameters) × tokens + 12 × layers × hidden × Σ seq² (attention), tokens counted with padding
(the hardware executes them) and, separately, real tokens only (what the work is worth).
On a machine without a GPU it says so and exits 0.
"""
from __future__ import annotations
import argparse, sys, time
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import header, median, table, load, encoder, task_sample, SHAPES

PEAK_BF16_TFLOPS = {'H200': 989., 'H100 SXM': 989., 'H100 NVL': 835., 'H100 PCIe': 756., 'H100': 989., 'A100': 312.,
                    'L40S': 362., 'L4': 121., 'A10G': 70., 'A10': 125., 'RTX 4090': 165., 'RTX 3090': 71., 'V100': 125.}


def peak_tflops(name: str) -> float | None:
    for k, v in PEAK_BF16_TFLOPS.items():
        if k.replace(' ', '').lower() in name.replace(' ', '').lower(): return v
    return None


def step_flops(cfg, seqs: list[int], n_nonembed: int) -> float:
    "Forward+backward FLOPs of one batch whose rows have lengths `seqs` (3 × the forward's 2 × params × tokens, plus attention)."
    tokens = sum(seqs)
    return 6 * n_nonembed * tokens + 12 * cfg.num_hidden_layers * cfg.hidden_size * sum(s * s for s in seqs)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--shape', default='large', choices=list(SHAPES))
    p.add_argument('--batch', type=int, default=32)
    p.add_argument('--steps', type=int, default=30, help='timed steps (after 5 warm-up steps)')
    p.add_argument('--task', default='xnli', help='length distribution: xnli, pawsx, udpos, xquad, tatoeba')
    p.add_argument('--peak-tflops', type=float, default=None, help="the GPU's dense bf16 peak, if not in the built-in table")
    p.add_argument('--quick', action='store_true', help='base shape, 3 steps (a wiring check)')
    a = p.parse_args(argv)
    import torch
    header(f'GPU model FLOPs utilisation, bf16, XLM-R-{a.shape}-shaped')
    if not torch.cuda.is_available():
        print('no CUDA GPU on this machine: nothing to measure (run this script on a GPU machine).')
        return 0
    if a.quick: a.shape, a.steps, a.batch = 'base', 3, 8
    from itt_xling.models import build_model, load_tokenizer
    from itt_xling.features import featurize, data_collator
    from _common import pad_length
    enc = encoder(a.shape)
    tok = load_tokenizer(enc)
    n_batches = a.steps + 5
    task, raw = task_sample(a.task, n_batches * a.batch)
    feats = featurize(task, raw, tok, max_length=pad_length(task), cache=False)
    model = build_model(enc, task).cuda().train()
    cfg = model.config
    n_embed = sum(p.numel() for n, p in model.named_parameters() if 'embeddings' in n)
    n_nonembed = sum(p.numel() for p in model.parameters()) - n_embed
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5, fused=True)
    gpu = torch.cuda.get_device_name(0)
    peak = a.peak_tflops or peak_tflops(gpu)
    from itt_xling.features import ModelInputs
    from transformers import DataCollatorWithPadding
    rows = []
    for name, coll in (('dynamic (itt_xling collator)', data_collator(task, tok, pad_to_multiple_of=8)),
                       (f'pad to {pad_length(task)}', ModelInputs(DataCollatorWithPadding(tok, padding='max_length', max_length=pad_length(task))))):
        batches = [coll([feats[i] for i in range(s, s + a.batch)]) for s in range(0, n_batches * a.batch, a.batch)]
        batches = [{k: v.cuda(non_blocking=True) for k, v in b.items()} for b in batches]
        times = []
        for i, b in enumerate(batches):
            torch.cuda.synchronize(); t = time.perf_counter()
            with torch.autocast('cuda', dtype=torch.bfloat16):
                loss = model(**b).loss
            loss.backward(); opt.step(); opt.zero_grad(set_to_none=True)
            torch.cuda.synchronize()
            if i >= 5: times.append(time.perf_counter() - t)
        timed = batches[5:]
        hw = sum(step_flops(cfg, [b['input_ids'].shape[1]] * b['input_ids'].shape[0], n_nonembed) for b in timed)
        real = sum(step_flops(cfg, b['attention_mask'].sum(1).tolist(), n_nonembed) for b in timed)
        secs = sum(times)
        real_tok = sum(int(b['attention_mask'].sum()) for b in timed)
        rows.append(dict(padding=name, batch=a.batch, steps=len(timed), **{
            'step ms (median)': 1000 * median(times), 'real tok/s': real_tok / secs, 'TFLOP/s (hw)': hw / secs / 1e12,
            'MFU hw %': 100 * hw / secs / 1e12 / peak if peak else float('nan'),
            'MFU real tokens %': 100 * real / secs / 1e12 / peak if peak else float('nan')}))
    print(f"GPU: {gpu}; peak dense bf16: {peak or 'unknown (pass --peak-tflops)'} TFLOP/s; "
          f"non-embedding parameters {n_nonembed / 1e6:.0f}M")
    print(table(rows))
    print(f"{load()} at end.")
    return 0


if __name__ == '__main__':
    sys.exit(main())
