"""What the Diagnose page shows of a diagnosis: figures, queues, captions and map inputs, checked
exactly on a six-item diagnosis written by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from core.data.dataset import Dataset, item_ref
from core.diagnose import maps, review
from core.diagnose.cleaning import CleaningPlan
from core.diagnose.coverage import coverage
from core.diagnose.duplicates import DuplicateCluster
from core.diagnose.label_issues import LabelIssues
from core.diagnose.pipeline import Diagnosis, duplicate_table

LABELS = [0, 1, 0, 1, 0, 1]
SPLIT = [0, 0, 0, 1, 2, 2]  # class x has no val item: one coverage gap


def _ds(**meta) -> Dataset:
    texts = np.array(["a cat", "a dog", "one cat", "two dogs", "cat food", "dog food"], dtype=object)
    return Dataset("t", "text", texts, LABELS, ["x", "y"], SPLIT, pd.DataFrame(meta))


def _issues(**changes) -> LabelIssues:
    fields = dict(
        is_issue=np.array([False, True, False, False, True, False]),
        score=np.array([0.9, 0.1, 0.8, np.nan, 0.2, 0.7]),
        suggested=np.array([0, 0, 0, 1, 1, 1]),
        rank=np.array([1, 4]),
        noise_matrix=np.array([[0.9, 0.2], [0.1, 0.8]]),
        noise_rate_per_class=np.array([0.1, 0.2]),
        thresholds=np.array([0.5, 0.5]),
        confident_joint=np.array([[2, 1], [0, 2]]),
        joint=np.array([[0.4, 0.1], [0.05, 0.45]]),  # trace 0.85: 15% noise
        method="prune_by_noise_rate",
        knn_weight=0.5,
    )
    return LabelIssues(**{**fields, **changes})


def _diagnosis() -> Diagnosis:
    return Diagnosis(
        probs=np.full((6, 2), 0.5),
        issues=_issues(),
        duplicates=[
            DuplicateCluster(np.array([0, 2]), "exact", ("train",), False),
            DuplicateCluster(np.array([1, 3, 5]), "near", ("test", "train", "val"), True),
        ],
        outlier_score=np.array([0.1, 0.2, 0.1, 0.3, 0.5, 0.2]),
        outliers=np.array([4]),
        coverage=coverage(LABELS, SPLIT, 2, class_names=["x", "y"]),
        map2d=np.zeros((6, 2), np.float32),
        seconds={"embed": 1.26, "label_issues": 0.5},
        backbone="auto",
    )


def test_headline_counts_suspects_noise_duplicates_outliers_and_gaps():
    d = _diagnosis()
    figures = review.headline(d, d.issues, n_items=6, outlier_quantile=0.99)
    assert [tuple(f)[:3] for f in figures] == [
        ("Suspected label errors", "2", "33.3% of items"),
        ("Estimated label noise", "15.0%", "1 − trace of the estimated joint of given and true labels"),
        ("Duplicate clusters", "2", "1 cross-split leaks"),
        ("Outliers", "1", "top 1.0% by kNN distance"),
        ("Coverage gaps", "1", "classes missing from a split or unseen in train"),
    ]
    assert math.isnan(review.noise_rate(_issues(joint=np.zeros((0, 0)))))


def test_coverage_gaps_words_and_table():
    d = _diagnosis()
    gaps = review.coverage_gaps(d.coverage)
    assert gaps["name"].tolist() == ["x"]
    assert review.coverage_words(gaps, 5) == (
        True,
        "1 class(es) are missing from a split or never seen in training — the model will either never learn them or be "
        "scored on nothing: x",
    )
    assert review.coverage_words(gaps.iloc[0:0], 5) == (False, "Every class has items in every split (at least 5 flagged below otherwise).")
    assert review.coverage_table(d.coverage)["missing_in"].tolist() == ["val", ""]
    assert len(review.coverage_gaps(pd.DataFrame({"name": ["x"]}))) == 0  # a table without gap columns has none


def test_review_queue_orders_filters_and_hides_reviewed_items():
    iss, plan = _issues(), CleaningPlan()
    labels = np.array(LABELS)
    flagged, lowest = review.FLAGGED_FIRST, review.LOWEST_QUALITY_FIRST
    assert review.review_queue(iss, labels, plan, order=flagged, given=[], hide_reviewed=True).tolist() == [1, 4]
    assert review.review_queue(iss, labels, plan, order=lowest, given=[], hide_reviewed=True).tolist() == [1, 4, 5, 2, 0, 3]  # NaN last
    assert review.review_queue(iss, labels, plan, order=lowest, given=[0], hide_reviewed=True).tolist() == [4, 2, 0]
    plan.decide(1, "keep")
    assert review.review_queue(iss, labels, plan, order=flagged, given=[], hide_reviewed=True).tolist() == [4]
    assert review.review_queue(iss, labels, plan, order=flagged, given=[], hide_reviewed=False).tolist() == [1, 4]
    assert review.open_items(iss.rank, plan) == [4]


def test_plan_line_and_whether_clearing_changes_anything():
    plan = CleaningPlan()
    assert review.plan_line(3, plan, 0) == "**Cleaning plan** for v3: dropped 0, relabelled 0, 0 reviewed and kept."
    assert review.plan_is_fresh(plan, 0)
    plan.decide(1, "keep")
    plan.decide(2, "keep")
    assert review.plan_is_fresh(plan, 2)  # both inherited
    plan.decide(4, "drop")
    assert review.plan_line(3, plan, 2) == (
        "**Cleaning plan** for v3: dropped 1, relabelled 0, 2 reviewed and kept (2 reviewed in the versions v3 comes from)."
    )
    assert not review.plan_is_fresh(plan, 2)


def test_duplicate_clusters_in_words_extra_copies_and_members():
    d, ds = _diagnosis(), _ds()
    table = duplicate_table(d.duplicates, ds)
    assert review.duplicates_line(table) == (
        "**2** clusters holding **5** items; **1** span splits (a test item also seen in training inflates test scores) "
        "and **0** carry conflicting labels."
    )
    plan = CleaningPlan()
    assert review.extra_copies(table, plan) == [3, 5, 2]  # the leaking cluster first, its first item kept
    plan.decide(5, "drop")
    assert review.extra_copies(table, plan) == [3, 2]
    assert review.cluster_label(table, 1) == "cluster 1: 3 items, test, train, val"
    assert review.cluster_items(table, 1).tolist() == [1, 3, 5] and review.cluster_items(table, 1, n=2).tolist() == [1, 3]


def test_captions_name_the_item_its_label_and_what_was_found():
    ds, iss, d = _ds(), _issues(), _diagnosis()
    assert review.suspect_caption(ds, iss, 1) == "#1 · train · given **y** → suggested **x** · quality 0.10"
    assert review.outlier_caption(ds, iss, d.outlier_score, 4) == "#4 · test · x · distance 0.500 · also a suspected label error → **y**"
    assert review.outlier_caption(ds, iss, d.outlier_score, 3) == "#3 · val · y · distance 0.300"
    assert review.item_caption(ds, 3) == "#3 · val · y"
    derived = _ds(source_item=[10, 11, 12, 13, 14, 15])  # items keep the number of their import
    assert item_ref(derived, 2) == "#12 · train"


def test_outlier_cut_and_sentences_about_the_diagnosis():
    assert review.outlier_cut(np.array([0.0, 1.0, 2.0, 3.0, 4.0]), 0.75) == 3.0
    assert review.outlier_cut(np.array([]), 0.99) is None
    assert review.outliers_line(1, 0.99) == "1 items above the 99.0% quantile, most unusual first: off-domain, corrupted or rare."
    d = _diagnosis()
    assert (
        review.stage_times(d.seconds, "auto", "minilm")
        == "Stage times: embed 1.3 s, label issues 0.5 s · backbone minilm (chosen automatically)"
    )
    assert review.stage_times({}, "mobilenet_v2", "mobilenet_v2") == "Stage times:  · backbone mobilenet_v2"
    assert review.flagging_rule(d.issues) == (
        "Flagging rule: confident learning, the items least likely to be their label, as many per class as its estimated noise "
        "(`prune_by_noise_rate`), probe weight 0.50 against kNN votes. Label quality is in [0, 1]: low means the data disagrees "
        "with the given label."
    )
    assert "probe weight 0.80 against kNN votes (of which the texts' words 0.30)." in review.flagging_rule(
        _issues(knn_weight=0.8, view_weight=0.3)
    )
    # many texts: the words without neighbours, said as such rather than as a part of nothing
    assert "(`posterior`), probe and words blended (of which the texts' words 0.40)." in review.flagging_rule(
        _issues(method="posterior", knn_weight=None, view_weight=0.4)
    )
    assert review.flagging_rule(
        _issues(method="blend_posterior", knn_weight=0.6, counts={"confident_learning": 3.0, "injected": 1.6, "expected_f1": 2.0})
    ) == (
        "Flagging rule: probe and nearest-neighbour votes blended; the items most likely mislabelled under the estimated noise, "
        "as many as the median of three estimates (`blend_posterior`), probe weight 0.60 against kNN votes. 2 flagged, from the "
        "median of 3 estimates (3 by confident learning, 2 by labels injected from the estimated noise, 2 by the best expected "
        "F1). Label quality is in [0, 1]: low means the data disagrees with the given label."
    )
    # the second pass is said once, before the note on label quality
    two = review.flagging_rule(_issues(method="blend_posterior", knn_weight=0.6, passes=2))
    assert two.endswith(
        "probe weight 0.60 against kNN votes. A second pass refitted the sources with each item weighed by its first-pass "
        "label quality. Label quality is in [0, 1]: low means the data disagrees with the given label."
    )
    assert review.flagging_rule(_issues(method="odd", knn_weight=None)) == (
        "Flagging rule: odd (`odd`). Label quality is in [0, 1]: low means the data disagrees with the given label."
    )
    assert review.judged_by_run(7, 1234) == "Judging the 1,234 test items run #7 never trained on; other items are not flagged."


def test_scope_and_invitations_say_how_many_items():
    assert review.scope_words("full", 1_798, 1_798) == "all 1,798 items"
    assert review.scope_words("sample", 4_000, 70_000).startswith("a stratified sample of 4,000 of 70,000 items (seeded).")
    here = review.not_diagnosed("Digits · v1", 12.4)
    assert here.startswith("**Digits · v1** has not been diagnosed with these settings yet. It takes about 12 s on this machine")
    background = review.not_diagnosed("Big · v2", 1_234.0, sample_size=4_000, first_seconds=24.0)
    assert "about 21 min on this machine" in background and "stratified sample of 4,000 items" in background
    assert "appears here (and on the Data page) in about 25 s," in background and "seconds" not in background


def test_map_draws_all_items_or_a_seeded_sample_and_colours_them():
    assert maps.projection_labels(1_798) == {"PCA": "PCA (all 1,798 items)", "t-SNE": "t-SNE (all 1,798 items)"}
    assert maps.projection_labels(25_000) == {"PCA": "PCA (20,000 sampled)", "t-SNE": "t-SNE (2,000 sampled)"}
    assert maps.map_rows(5, "t-SNE").tolist() == [0, 1, 2, 3, 4]
    rows = maps.map_rows(2_500, "t-SNE")
    assert len(rows) == 2_000 == len(set(rows.tolist())) and np.all(np.diff(rows) > 0)
    assert np.array_equal(rows, maps.map_rows(2_500, "t-SNE")) and not np.array_equal(rows, maps.map_rows(2_500, "t-SNE", seed=1))

    ds, iss = _ds(domain=list("ababab"), note=[f"n{i}" for i in range(6)]), _issues()
    assert maps.colour_options(ds) == ["label", "label quality", "flagged", "split", "domain", "note"]
    meta = pd.DataFrame({"id": [f"i{i}" for i in range(25)], "kind": ["a", "b"] * 12 + ["a"]})
    wide = Dataset(
        "w", "text", np.array([f"t{i}" for i in range(25)], dtype=object), [i % 2 for i in range(25)], ["x", "y"], [0] * 25, meta
    )
    assert maps.colour_options(wide) == [*maps.MAP_COLOURS, "kind"]  # 25 ids are too many colours
    index = np.array([1, 3, 4])
    colour, continuous = maps.map_colours(ds, iss, index, "label")
    assert colour.tolist() == ["y", "y", "x"] and not continuous
    colour, continuous = maps.map_colours(ds, iss, index, "label quality")
    assert colour[[0, 2]].tolist() == [0.1, 0.2] and np.isnan(colour[1]) and continuous
    assert maps.map_colours(ds, iss, index, "flagged")[0].tolist() == ["suspect", "ok", "suspect"]
    assert maps.map_colours(ds, iss, index, "split")[0].tolist() == ["train", "val", "test"]
    assert maps.map_colours(ds, iss, index, "domain")[0].tolist() == ["b", "b", "a"]
    assert maps.map_hover(ds, iss, np.array([1, 4])) == ["#1 y: a dog", "#4 x: cat food"]


def test_map_hover_on_images_gives_the_label_quality():
    ds = Dataset("i", "image", np.zeros((2, 3, 3), np.uint8), [0, 1], ["x", "y"], [0, 2])
    iss = _issues(score=np.array([0.25, 0.5]))
    assert maps.map_hover(ds, iss, np.array([0, 1])) == ["#0 x (quality 0.25)", "#1 y (quality 0.50)"]


@pytest.mark.parametrize("n, expected", [(0, 1), (1, 1), (12, 1), (13, 2), (25, 3)])
def test_pages_hold_every_item(n, expected):
    from core.data.browse import n_pages, page_slice

    assert n_pages(n, 12) == expected
    assert list(range(30))[page_slice(2, 12)] == list(range(12, 24))


# ---------------------------------------------------------------------- review at click speed


def _findings() -> review.Findings:
    # suspects {1, 4}; duplicate copies {2} (of 0) and {3, 5} (of 1); outlier {4}
    return review.findings(_diagnosis(), _issues(), np.array(LABELS))


def test_findings_mark_each_kind_once_per_item():
    f = _findings()
    assert {k: np.flatnonzero(m).tolist() for k, m in f.kinds.items()} == {
        review.SUSPECT: [1, 4],
        review.DUPLICATE: [2, 3, 5],
        review.OUTLIER: [4],
    }
    assert f.by_quality.tolist() == [1, 4, 5, 2, 0, 3] and f.n == 6  # NaN last


def test_bulk_filter_counts_on_a_known_frame():
    f, plan = _findings(), CleaningPlan()
    every = (review.SUSPECT, review.DUPLICATE, review.OUTLIER)
    assert review.bulk_items(f, review.BulkFilter(), plan).tolist() == [1, 4]  # the open suspects
    assert review.bulk_items(f, review.BulkFilter(kinds=every), plan).tolist() == [1, 2, 3, 4, 5]
    assert review.bulk_items(f, review.BulkFilter(kinds=(review.OUTLIER,)), plan).tolist() == [4]
    assert review.bulk_items(f, review.BulkFilter(kinds=every, classes=(1,)), plan).tolist() == [1, 3, 5]
    assert review.bulk_items(f, review.BulkFilter(kinds=every, quality=(0.0, 0.5)), plan).tolist() == [1, 4]  # 3 is NaN
    assert review.bulk_items(f, review.BulkFilter(kinds=every, quality=(0.7, 1.0)), plan).tolist() == [2, 5]  # ends included
    assert review.bulk_items(f, review.BulkFilter(kinds=()), plan).tolist() == []
    plan.decide(4, "keep")
    assert review.bulk_items(f, review.BulkFilter(), plan).tolist() == [1]
    assert review.bulk_items(f, review.BulkFilter(open_only=False), plan).tolist() == [1, 4]
    with pytest.raises(ValueError, match="unknown findings"):
        review.BulkFilter(kinds=("typo",))
    with pytest.raises(ValueError, match="0 ≤ low ≤ high ≤ 1"):
        review.BulkFilter(quality=(0.6, 0.2))


def test_bulk_words_say_what_an_action_touches_before_it_applies():
    f, plan = _findings(), CleaningPlan()
    plan.decide(4, "keep")
    matched = np.array([1, 2, 3, 4, 5])
    # relabel only moves items whose suggestion differs from their label: 1 (y → x) and 4 (x → y)
    assert review.bulk_targets(f, matched, "relabel").tolist() == [1, 4]
    assert review.bulk_targets(f, matched, "drop").tolist() == [1, 2, 3, 4, 5]
    assert review.bulk_words(f, matched, "relabel", plan) == (
        "**Relabel 2 items** to the class the detector suggests for each (2 suspected label errors, 1 outlier). "
        "3 of the 5 matched are left alone: their suggested class is their label. "
        "1 of them had a decision already; this one replaces it."
    )
    assert review.bulk_words(f, np.array([2, 3]), "drop", CleaningPlan()) == "**Drop 2 items** (2 duplicate copies)."
    assert review.bulk_words(f, np.array([], np.int64), "keep", plan) == "**Keep 0 items** as they are."
    assert review.apply_bulk(plan, f, matched, "relabel") == 2
    assert plan.relabel == {1: 0, 4: 1} and plan.keep == set()  # the relabel replaced the keep
    assert review.apply_bulk(plan, f, np.array([2, 3]), "drop") == 2 and plan.drop == {2, 3}
    with pytest.raises(ValueError, match="unknown action"):
        review.bulk_targets(f, matched, "burn")


def test_queue_cursor_stays_on_its_item_or_takes_the_next_one_up():
    queue = np.array([7, 3, 9, 4])
    assert review.queue_position(queue, 9, 0) == 2
    assert review.queue_position(queue, 5, 1) == 1  # its item left the queue: the next one moved up
    assert review.queue_position(queue, None, 10) == 3 and review.queue_position(queue, None, -2) == 0
    assert review.queue_position(np.array([], np.int64), None, 3) == 0


def test_review_queue_uses_the_quality_order_it_is_given():
    iss, labels = _issues(), np.array(LABELS)
    by_quality = np.array([5, 4, 3, 2, 1, 0])  # any order the caller worked out once
    queue = review.review_queue(
        iss, labels, CleaningPlan(drop={3}), order=review.LOWEST_QUALITY_FIRST, given=[1], hide_reviewed=True, by_quality=by_quality
    )
    assert queue.tolist() == [5, 1]


def test_suspect_change_explains_the_new_count_on_a_known_case():
    # parent items 0..7, suspects {0, 1, 2, 3, 4, 5}; the plan drops 0, relabels 1 and 2, keeps 3
    before = _issues(is_issue=np.array([True] * 6 + [False] * 2), joint=np.array([[0.4, 0.1], [0.05, 0.45]]))
    plan = CleaningPlan(drop={0}, relabel={1: 0, 2: 1}, keep={3})
    after_ids = np.arange(1, 8)  # item 0 is gone
    # the cleaned version's diagnosis flags 2 (relabelled, still in doubt), 5 (untouched) and 7 (new)
    after = _issues(is_issue=np.isin(after_ids, [2, 5, 7]), joint=np.array([[0.45, 0.05], [0.05, 0.45]]))
    change = review.suspect_change(before, np.arange(8), after, after_ids, plan)
    assert change == review.SuspectChange(
        before=6,
        after=3,
        dropped=1,
        relabelled=1,
        kept=1,
        cleared=1,
        still=2,
        new=1,
        noise_before=pytest.approx(0.15),
        noise_after=pytest.approx(0.1),
    )
    assert change.before == change.dropped + change.relabelled + change.kept + change.cleared + change.still
    assert change.after == change.still + change.new
    assert review.suspect_change_words(change, 3) == (
        "**3 fewer suspects** than v3 (6 → 3): 1 dropped by the cleaning, 1 relabelled and no longer suspected, "
        "2 no longer flagged by this version's own diagnosis (1 of them reviewed and kept), 1 newly flagged. "
        "The detector is fitted again on the cleaned data, and it flags about as many items per class as it estimates "
        "are wrong: estimated label noise 15.0% → 10.0%."
    )
    only_drops = review.SuspectChange(3, 0, 3, 0, 0, 0, 0, 0, 0.1, 0.0)
    assert review.suspect_change_words(only_drops, 1) == "**3 fewer suspects** than v1 (3 → 0): 3 dropped by the cleaning."
    same = review.SuspectChange(2, 2, 0, 0, 0, 0, 2, 0, 0.1, 0.1)
    assert review.suspect_change_words(same, 1) == "**As many suspects** as v1 (2 → 2)."
    more = review.SuspectChange(1, 3, 0, 0, 0, 0, 1, 2, 0.1, 0.2)
    assert review.suspect_change_words(more, 2).startswith("**2 more suspects** than v2 (1 → 3): 2 newly flagged.")
