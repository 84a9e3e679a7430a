"""Metrics against hand-computed cases, MLQA normalisation per language, and the XTREME aggregation rules."""
import math
import pytest
from itt_xling.core import ITTError
from itt_xling.metrics import (accuracy, seqeval_f1, token_accuracy, squad_normalize, squad_em_f1, mlqa_normalize,
                               mlqa_em_f1, bucc_f1, average_precision_at_k, map_at_k, compute_metrics, metric_name, aggregate)
from itt_xling.tasks import BENCHMARKS, TASKS, TaskSpec


def test_accuracy_compares_stripped_strings():
    assert accuracy([0, 1, 2, 2], [0, 1, 1, 2]) == {'accuracy': 75.0}
    assert accuracy(['1 ', 0], [1, '0']) == {'accuracy': 100.0}
    with pytest.raises(ITTError, match='2 predictions for 3 gold'): accuracy([0, 1], [0, 1, 2])
    with pytest.raises(ITTError, match='no examples'): accuracy([], [])


def test_seqeval_ner_hand_computed():
    gold = [['B-PER', 'I-PER', 'O', 'B-LOC', 'I-LOC'], ['B-ORG', 'O', 'B-PER']]
    pred = [['B-PER', 'I-PER', 'O', 'B-LOC', 'O'], ['B-ORG', 'O', 'O']]
    # gold: PER, LOC, ORG, PER (4); pred: PER, LOC(wrong span), ORG (3); correct: PER, ORG
    s = seqeval_f1(pred, gold)
    assert math.isclose(s['precision'], 200 / 3) and math.isclose(s['recall'], 50.0)
    assert math.isclose(s['f1'], 100 * 2 * (2 / 3 * 0.5) / (2 / 3 + 0.5))


def test_seqeval_on_pos_tags_follows_seqeval_chunking():
    # NOUN NOUN merge into one chunk (prefix N, type OUN); ADJ/ADP are different types
    gold, pred = [['NOUN', 'NOUN', 'ADJ', 'ADP']], [['NOUN', 'NOUN', 'ADJ', 'ADJ']]
    assert math.isclose(seqeval_f1(pred, gold)['f1'], 40.0)
    assert token_accuracy(pred, gold) == {'token_accuracy': 75.0}
    m = compute_metrics('udpos', pred, gold)
    assert list(m) == ['f1', 'precision', 'recall', 'token_accuracy']
    assert 'token_accuracy' not in compute_metrics('panx', [['B-PER']], [['B-PER']])


def test_seqeval_length_mismatch_is_a_user_error():
    with pytest.raises(ITTError, match='example 0: 1 predicted tags for 2 gold'): seqeval_f1([['O']], [['O', 'O']])


def test_squad_em_f1_hand_computed():
    assert squad_normalize('The Big, Apple!') == 'big apple'
    s = squad_em_f1(['The Big Apple', 'big red apple', None, 'nothing'], [['big apple'], ['Apple', 'the big apple'], ['x'], ['y']])
    # q1 EM 1; q2 best F1 vs 'big apple': p=2/3 r=1 -> 0.8; q3 unanswered 0; q4 0
    assert math.isclose(s['exact_match'], 25.0)
    assert math.isclose(s['f1'], 100 * (1 + 0.8) / 4)
    assert list(compute_metrics('xquad', ['a'], [['a']])) == ['f1', 'exact_match']


@pytest.mark.parametrize('lang,text,expected', [
    ('en', 'The "quick", brown fox.', 'quick brown fox'),
    ('en', 'an apple — ¿the pear?', 'apple pear'),                      # Unicode punctuation (Pd, Po) removed
    ('de', 'Die Katze und der Hund des Nachbarn', 'katze und hund nachbarn'),
    ('de', 'Einer von dem Team', 'von team'),
    ('ar', 'ذهب الولد إلى المدرسة.', 'ذهب ولد إلى مدرسة'),                # ال removed, full stop removed
    ('ar', 'بالقلم، «الأحمر»', 'ب قلم أحمر'),                            # ال inside a word; Arabic comma and guillemets
    ('zh', '北京大学', '北 京 大 学'),                                      # mixed segmentation: one CJK char per token
    ('zh', '《红楼梦》作者 Cao Xueqin', '红 楼 梦 作 者 cao xueqin'),      # punctuation dropped, Latin kept whole
    ('es', 'La casa de los espíritus', 'casa de espíritus'),
    ('hi', 'भारत की राजधानी।', 'भारत की राजधानी'),                       # no articles; danda (Po) removed
])
def test_mlqa_normalisation(lang, text, expected):
    assert mlqa_normalize(text, lang) == expected


def test_mlqa_scores_differ_from_squad_where_the_rules_differ():
    # German articles are removed by MLQA's rules, not by SQuAD's
    assert mlqa_em_f1(['der Vertrag'], [['Vertrag']], 'de')['exact_match'] == 100.0
    assert squad_em_f1(['der Vertrag'], [['Vertrag']])['exact_match'] == 0.0
    # Chinese: character-level F1 (2 of 4 predicted, 2 of 2 gold)
    assert math.isclose(mlqa_em_f1(['北京大学'], [['北京']], 'zh')['f1'], 200 / 3)
    assert mlqa_em_f1(['北京大学'], [['北京']], 'en')['f1'] == 0.0
    # Arabic: the article does not block an exact match
    assert mlqa_em_f1(['الكتاب'], [['كتاب']], 'ar')['exact_match'] == 100.0
    with pytest.raises(ITTError, match="no rules for language 'fr'"): mlqa_normalize('x', 'fr')
    with pytest.raises(ITTError, match='needs the answer language'): compute_metrics('mlqa', ['x'], [['x']])


def test_bucc_f1_on_pair_sets():
    s = bucc_f1(['de-1\ten-1', ('de-2', 'en-5'), ('de-3', 'en-3')], [('de-1', 'en-1'), ('de-3', 'en-3'), ('de-4', 'en-4'), ('de-5', 'en-5')])
    assert math.isclose(s['precision'], 200 / 3) and s['recall'] == 50.0
    assert bucc_f1([('a', 'b')], [('c', 'd')]) == {'f1': 0.0, 'precision': 0.0, 'recall': 0.0}


def test_map_at_20():
    assert math.isclose(average_precision_at_k({'a', 'c'}, ['a', 'b', 'c']), (1 + 2 / 3) / 2)
    # repeated candidates count once; divisor is min(#relevant, k)
    assert math.isclose(average_precision_at_k({'a', 'b'}, ['x', 'a', 'a', 'b'], k=2), (1 / 2) / 2)
    assert map_at_k([['q', 'r', 's', 'Q1']], ['Q1']) == {'map@20': 25.0}
    assert map_at_k([[f'c{i}' for i in range(25)]], ['c20']) == {'map@20': 0.0}
    assert compute_metrics('mewslix', [['Q2', 'Q1']], [['Q1']]) == {'map@20': 50.0}


def test_metric_dispatch_follows_kind_and_registry():
    assert {t: metric_name(t) for t in ['xnli', 'xcopa', 'udpos', 'ccg', 'xquad', 'mlqa', 'tydiqa', 'bucc2018', 'tatoeba', 'lareqa']} == {
        'xnli': 'accuracy', 'xcopa': 'accuracy', 'udpos': 'seqeval', 'ccg': 'token_accuracy', 'xquad': 'squad', 'mlqa': 'mlqa',
        'tydiqa': 'squad', 'bucc2018': 'bucc_f1', 'tatoeba': 'accuracy', 'lareqa': 'map@20'}


@pytest.mark.parametrize('task, preds, golds, want', [
    ('xcopa', [1, 0], [1, 1], {'accuracy': 50.0}),
    ('pawsx', [1, 0], [1, 0], {'accuracy': 100.0}),
    ('bucc2018', [('de-1', 'en-1')], [('de-1', 'en-1')], {'f1': 100.0, 'precision': 100.0, 'recall': 100.0}),
    ('lareqa', [['s1', 's2']], [['s2']], {'map@20': 50.0}),
    ('tatoeba', ['3', '4'], ['3', '5'], {'accuracy': 50.0}),
    ('xquad', ['den Vertrag'], [['Vertrag']], {'f1': 2 / 3 * 100, 'exact_match': 0.0}),   # SQuAD rules keep German articles
    ('panx', [['B-PER', 'O']], [['B-PER', 'O']], {'f1': 100.0, 'precision': 100.0, 'recall': 100.0}),
])
def test_compute_metrics_per_kind(task, preds, golds, want):
    got = compute_metrics(task, preds, golds)
    assert list(got) == list(want) and all(math.isclose(got[k], v) for k, v in want.items())


def test_a_spec_scores_like_its_name():
    "compute_metrics and metric_name take a TaskSpec as well as a name (also one outside the registry)."
    assert compute_metrics(TASKS['xnli'], [0, 1], [0, 0]) == compute_metrics('xnli', [0, 1], [0, 0])
    toy = TaskSpec('toy_pos', 'tagging', 'target', 'accuracy', labels=('A', 'B'))
    assert metric_name(toy) == 'token_accuracy'
    assert compute_metrics(toy, [['A', 'B']], [['A', 'A']]) == {'accuracy': 50.0}


def _qa(task, lang, em, f1):
    return [dict(task=task, lang=lang, metric='exact_match', value=em), dict(task=task, lang=lang, metric='f1', value=f1)]


def test_aggregate_task_scores_qa_average_and_ignored_languages():
    rows = _qa('xquad', 'en', 60, 70) + _qa('xquad', 'de', 50, 60) + [
        dict(task='xnli', lang='de', metric='accuracy', value=80.0), dict(task='xnli', lang='fr', metric='accuracy', value=70.0),
        dict(task='xnli', lang='xx', metric='accuracy', value=0.0)]   # not an XNLI language: ignored
    agg = aggregate(rows, 'xtreme').set_index('name')
    assert agg.loc['xquad', 'value'] == pytest.approx((55 + 65) / 2)
    assert agg.loc['xnli', 'value'] == pytest.approx(75.0)
    assert agg.loc['xnli', 'n_langs'] == 2 and not agg.loc['xnli', 'complete']
    assert set(agg.level) == {'task'}


def test_groups_only_when_complete_in_both_benchmarks():
    base = [dict(task='xnli', lang='de', metric='accuracy', value=70.0), dict(task='pawsx', lang='de', metric='accuracy', value=90.0)]
    x = aggregate(base, 'xtreme')
    assert x.query("level == 'group'").set_index('name').value.to_dict() == {'classification': 80.0}
    xr = aggregate(base, 'xtreme-r')    # XTREME-R's classification group is XNLI + XCOPA; PAWS-X is not in XTREME-R
    assert xr.query("level == 'group'").empty and 'pawsx' not in set(xr.name)
    xr = aggregate(base + [dict(task='xcopa', lang='et', metric='accuracy', value=60.0)], 'xtreme-r')
    assert xr.query("level == 'group'").set_index('name').value.to_dict() == {'classification': 65.0, 'multi_choice': 60.0}
    qa = _qa('xquad', 'de', 40, 60) + _qa('mlqa', 'de', 50, 70)
    assert aggregate(qa, 'xtreme').query("level == 'group'").empty       # tydiqa missing
    g = aggregate(qa + _qa('tydiqa', 'fi', 60, 80), 'xtreme').query("level == 'group'").set_index('name').value
    assert g['qa'] == pytest.approx((50 + 60 + 70) / 3)


@pytest.mark.parametrize('bench', ['xtreme', 'xtreme-r'])
def test_overall_needs_every_task(bench):
    "XTREME: all_task, the mean of every task, only when all are present; XTREME-R: no overall score (as the official scorer)."
    b = BENCHMARKS[bench]
    rows = [dict(task=t, lang=l, metric=m, value=float(10 + i)) for i, t in enumerate(b['langs'])
            for l in b['langs'][t] for m in b['metrics'][t]]
    agg = aggregate(rows, bench)
    overall = agg.query("level == 'overall'")
    assert set(agg.query("level == 'group'").name) == set(b['groups'])
    if bench == 'xtreme-r':
        assert overall.empty and 'lareqa' in set(agg.query("level == 'task'").name)
        groups = agg.query("level == 'group'").set_index('name').value
        idx = {t: 10 + i for i, t in enumerate(b['langs'])}
        assert groups['multi_choice'] == idx['xcopa'] and groups['retrieval'] == pytest.approx((idx['tatoeba'] + idx['mewslix']) / 2)
        return
    assert len(overall) == 1 and overall.complete.item() and overall.name.item() == 'all_task'
    assert overall.value.item() == pytest.approx(sum(10 + i for i in range(len(b['langs']))) / len(b['langs']))
    last = list(b['langs'])[-1]
    assert aggregate([r for r in rows if r['task'] != last], bench).query("level == 'overall'").empty


def test_aggregate_groups_by_system_and_checks_columns():
    rows = [dict(run='r', intermediate=i, target='xnli', lang='de', metric='accuracy', value=v) for i, v in [('none', 70.0), ('mnli', 75.0)]]
    agg = aggregate(rows, 'xtreme')
    assert agg.set_index('intermediate').value.to_dict() == {'none': 70.0, 'mnli': 75.0}
    with pytest.raises(ITTError, match='lack column'): aggregate([dict(task='xnli', lang='de', value=1.0)])
    with pytest.raises(ITTError, match='unknown benchmark'): aggregate(rows, 'xtrem')


def test_hf_evaluate_module_computes_compute_metrics():
    "The shipped `evaluate` metric script, loaded offline by path with a task name, gives exactly compute_metrics."
    import evaluate
    from itt_xling.metrics import metric_script
    for task, p, g, kw in [('tatoeba', [3, 4, 7], [3, 5, 7], {}), ('mlqa', ['den Vertrag', None], [['Vertrag'], ['x']], {'lang': 'de'})]:
        assert evaluate.load(metric_script(), task).compute(predictions=p, references=g, **kw) == compute_metrics(task, p, g, **kw), task
