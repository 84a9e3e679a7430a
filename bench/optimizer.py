"""One AdamW step over all parameters of a model: torch's default implementation (what the Trainer's `adamw_torch`
builds), `foreach=True`, and `fused=True` (the Trainer's `adamw_torch_fused`).

With XLM-R's 250,002-piece vocabulary most parameters are the word embeddings (96M of me5-small's 118M), so on short
sentences the optimizer step is a large share of a training step; this measures that share's floor per implementation.
"""
from __future__ import annotations
import argparse, sys, time
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import header, median, table, load, encoder, MODEL_HELP

IMPLS = {'default (adamw_torch)': {}, 'foreach': dict(foreach=True), 'fused (adamw_torch_fused)': dict(fused=True)}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--models', default='me5-small', help=f'comma-separated: {MODEL_HELP}')
    p.add_argument('--steps', type=int, default=3, help='timed steps per implementation and repetition')
    p.add_argument('--reps', type=int, default=2)
    p.add_argument('--quick', action='store_true', help='tiny model, 1 step, 1 rep')
    a = p.parse_args(argv)
    if a.quick: a.models, a.steps, a.reps = 'tiny-xlmr', 1, 1
    import torch
    from itt_xling.models import build_model
    header('AdamW step time: default vs foreach vs fused (CPU seconds of this process)')
    rows = []
    for m in a.models.split(','):
        model = build_model(encoder(m), 'xnli')
        ps = list(model.parameters())
        for q in ps: q.grad = torch.randn_like(q) * 1e-3
        res = {}
        for _ in range(a.reps):
            for name, kw in IMPLS.items():
                opt = torch.optim.AdamW(ps, lr=1e-5, **kw)
                opt.step()  # allocate the moments
                t = time.process_time()
                for _ in range(a.steps): opt.step()
                res.setdefault(name, []).append((time.process_time() - t) / a.steps)
                del opt
        row = dict(model=m, parameters=f'{sum(q.numel() for q in ps) / 1e6:.0f}M')
        for name in IMPLS: row[f'{name} s'] = median(res[name])
        row['default/fused'] = median([d / f for d, f in zip(res['default (adamw_torch)'], res['fused (adamw_torch_fused)'])])
        rows.append(row)
        print(f"  {m}: {load()}", flush=True)
    print(table(rows))
    print(f"{load()} at end.")
    return 0


if __name__ == '__main__':
    sys.exit(main())
