"""Shared pieces of the benchmarks: machine description, load, medians, tables, data samples and model shapes."""
from __future__ import annotations
import os, sys, time, random, platform, statistics
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path: sys.path.insert(0, str(ROOT))  # benchmark the working tree's package
for k in ('HF_HUB_OFFLINE', 'HF_DATASETS_OFFLINE', 'TRANSFORMERS_OFFLINE'): os.environ.setdefault(k, '1')
os.environ.setdefault('TOKENIZERS_PARALLELISM', 'false')

# random-init shapes of the paper's encoders (XLM-R's 250,002-piece vocabulary, me5-small's tokenizer)
SHAPES = {
    'base': dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072),
    'large': dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096),
}
MODEL_HELP = "'me5-small', 'tiny-xlmr', 'base' (XLM-R-base-shaped, random init), 'large', or a model folder"


def cpu_model() -> str:
    try:
        for line in Path('/proc/cpuinfo').read_text().splitlines():
            if line.startswith('model name'): return line.split(':', 1)[1].strip()
    except OSError: pass
    return platform.processor() or platform.machine()


def machine() -> str:
    "One line describing this machine and the software measured."
    import torch, transformers
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no GPU'
    return (f"{cpu_model()}, {os.cpu_count()} cores, {gpu}; torch {torch.__version__} ({torch.get_num_threads()} threads), "
            f"transformers {transformers.__version__}, python {platform.python_version()}")


def load() -> str:
    "The 1/5/15-minute load averages (other processes on the machine make absolute numbers noisy)."
    return 'load %.1f/%.1f/%.1f' % os.getloadavg()


def header(title: str, args=None):
    print(f"# {title}")
    print(f"machine: {machine()}")
    print(f"{load()} at start; command: python {' '.join([Path(sys.argv[0]).as_posix().split('/')[-2] + '/' + Path(sys.argv[0]).name] + sys.argv[1:])}")
    sys.stdout.flush()


def median(xs): return statistics.median(xs) if xs else float('nan')


def keep_freed_memory() -> bool:
    """Make glibc serve every allocation from its heap and never hand freed memory back to the kernel
    (`mallopt(M_MMAP_MAX, 0)`, `mallopt(M_TRIM_THRESHOLD, 2 GiB)`); False where that is not glibc.
    By default each block over 32 MB (me5-small's 384 MB word-embedding gradient, every step) is mmapped, page-faulted
    in and unmapped again; how much of that a run pays also depends on what ran before it in the process."""
    import ctypes
    try: libc = ctypes.CDLL('libc.so.6')
    except OSError: return False
    M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4
    return bool(libc.mallopt(M_MMAP_MAX, 0)) and bool(libc.mallopt(M_TRIM_THRESHOLD, 2**31 - 1))


def table(rows: list[dict], cols: list[str] | None = None, floatfmt: str = '{:.3g}') -> str:
    "A GitHub-markdown table of `rows`."
    cols = cols or list(dict.fromkeys(k for r in rows for k in r))
    fmt = lambda v: floatfmt.format(v) if isinstance(v, float) else str(v)
    cells = [[fmt(r.get(c, '')) for c in cols] for r in rows]
    w = [max(len(c), *(len(x[i]) for x in cells)) if cells else len(c) for i, c in enumerate(cols)]
    line = lambda xs: '| ' + ' | '.join(x.ljust(w[i]) for i, x in enumerate(xs)) + ' |'
    return '\n'.join([line(cols), '|' + '|'.join('-' * (x + 2) for x in w) + '|', *map(line, cells)])


class Timer:
    def __enter__(self): self.t = time.perf_counter(); return self
    def __exit__(self, *a): self.s = time.perf_counter() - self.t


def data_dir():
    from itt_xling.core import find_data_dir
    d = find_data_dir()
    if d is None: sys.exit("no local data folder found: set ITT_XLING_DATA to the shared data folder")
    return d


def shaped_model(shape: str) -> str:
    "A folder with a randomly initialised XLM-R of `shape` ('base'/'large') and XLM-R's tokenizer, built once and cached."
    import torch
    from transformers import XLMRobertaConfig, XLMRobertaModel
    from itt_xling.core import cache_dir, atomic_dir
    from itt_xling.me5 import me5_tokenizer
    out = cache_dir('bench') / f'xlmr-{shape}-random-s0'
    if (out / 'config.json').is_file() and (out / 'model.safetensors').is_file(): return str(out)
    tok = me5_tokenizer()
    cfg = XLMRobertaConfig(vocab_size=len(tok), max_position_embeddings=514, type_vocab_size=1, layer_norm_eps=1e-5,
                           pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                           **SHAPES[shape])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = XLMRobertaModel(cfg)
    with atomic_dir(out) as tmp:
        model.save_pretrained(tmp); tok.save_pretrained(tmp)
    return str(out)


def encoder(name: str) -> str:
    "A loadable model folder for a benchmark model name."
    if name in SHAPES: return shaped_model(name)
    from itt_xling.encoders import resolve_encoder
    return resolve_encoder(name)


def tatoeba_like(n: int, seed: int = 0, data=None):
    "A single-sentence classification sample whose texts are real Tatoeba sentences of every local language (labels random)."
    import dataclasses, datasets
    from itt_xling.load import load_split
    from itt_xling.tasks import get_task
    data = data or data_dir()
    rng = random.Random(seed)
    texts = []
    for lang in get_task('tatoeba').langs:
        try: ds = load_split('tatoeba', 'test', lang, data_dir=data)
        except Exception: continue
        texts += list(ds['source'])
    texts = rng.sample(texts, min(n, len(texts)))
    ds = datasets.Dataset.from_dict(dict(id=[str(i) for i in range(len(texts))], text_a=texts, text_b=[''] * len(texts),
                                         label=[rng.randrange(2) for _ in texts]))
    task = dataclasses.replace(get_task('pawsx'), name='tatoeba_like', pair=False)
    return task, ds


def task_sample(name: str, n: int, seed: int = 0, data=None):
    "(task spec, n real English examples) for a benchmark task name: xnli, pawsx, udpos, xquad or tatoeba."
    from itt_xling.load import load_split
    from itt_xling.tasks import get_task
    data = data or data_dir()
    if name == 'tatoeba': return tatoeba_like(n, seed, data)
    split = 'train' if name == 'udpos' else 'validation'
    ds = load_split(name, split, 'en', data_dir=data)
    idx = sorted(random.Random(seed).sample(range(len(ds)), min(n, len(ds))))
    return get_task(name), ds.select(idx)


# the lengths the anchor pipelines pad every batch to
PAD_TO = dict(classification=256, tagging=256, span_qa=384, multiple_choice=256, retrieval=512)


def pad_length(task) -> int:
    return 512 if task.name == 'tatoeba_like' else PAD_TO[task.kind]
