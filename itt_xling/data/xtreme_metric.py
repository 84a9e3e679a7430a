"""XTREME / XTREME-R per-file metrics as a Hugging Face `evaluate` module: the numbers of `itt_xling.metrics.compute_metrics`.

Load it with `evaluate.load(itt_xling.metrics.metric_script(), '<task>')`, where the configuration is a task name
(xnli, pawsx, xcopa, udpos, panx, xquad, mlqa, tydiqa, tatoeba, bucc2018, lareqa, mewslix, ...)."""
import datasets
import evaluate
from itt_xling.metrics import compute_metrics, metric_name

_KWARGS = """
Args:
    predictions: one per example, in the task's gold label space: class indices or names (classification, multiple
        choice, Tatoeba), tag lists (tagging), answer texts or None (QA), 'src<TAB>trg' pairs (BUCC), ranked candidate
        ids (LAReQA, Mewsli-X).
    references: one gold per example: the label, the tag list, the list of gold answer texts, the gold pair, the
        relevant candidate ids.
    lang: the answer language (required for mlqa).
Returns: the task's metrics on a 0-100 scale, the primary one first.
"""

def _features(task):
    "The input columns of `task`'s metric."
    m, s, seq = metric_name(task), datasets.Value('string'), datasets.Sequence(datasets.Value('string'))
    if m in ('seqeval', 'token_accuracy', 'map@20'): return datasets.Features(predictions=seq, references=seq)
    if m in ('squad', 'mlqa'): return datasets.Features(predictions=s, references=seq)
    if m == 'bucc_f1': return datasets.Features(predictions=s, references=s)
    i = datasets.Value('int64')
    return [datasets.Features(predictions=i, references=i), datasets.Features(predictions=s, references=s)]   # indices or names


@evaluate.utils.file_utils.add_start_docstrings(__doc__, _KWARGS)
class XtremeMetric(evaluate.Metric):
    def _info(self):
        if self.config_name in (None, 'default'): raise ValueError("pass a task name as the configuration, e.g. evaluate.load(path, 'xnli')")
        return evaluate.MetricInfo(description=__doc__, citation='', inputs_description=_KWARGS, features=_features(self.config_name))

    def _compute(self, predictions, references, lang=None):
        return compute_metrics(self.config_name, predictions, references, lang=lang)
