"""The Train page's mitigation widgets are one table (``core.mitigate.fields``): every preset goes
to widget values and comes back unchanged, every ``Mitigations`` field has exactly one widget, and
a field that is not drawn reads as the table says."""

from __future__ import annotations

import dataclasses

import pytest

from core.mitigate.fields import FIELDS, TAB_OF, TABS, TARGETS, context, from_widgets, section_fields, shown, tabs_for, widget_values
from core.mitigate.presets import PRESETS, preset, presets_for
from core.mitigate.settings import SECTIONS, Decision, LossSettings, Mitigations, Resampling, TokenAugmentation

KINDS = [("image", "full"), ("image", "linear_probe"), ("text", "full"), ("text", "last_n"), ("tabular", "full"), ("tokens", "full"), ("tokens", "last_n")]  # fmt: skip


@pytest.mark.parametrize(("modality", "finetune"), KINDS)
@pytest.mark.parametrize("name", list(PRESETS))
def test_every_preset_round_trips_through_the_widget_values(name, modality, finetune):
    if name not in presets_for(modality):
        with pytest.raises(ValueError, match="not for"):
            preset(name, modality=modality, finetune=finetune)
        return
    m = preset(name, modality=modality, finetune=finetune)
    values = widget_values(m)
    assert from_widgets(values, modality=modality, finetune=finetune) == m


def test_the_table_names_every_field_once_and_nothing_else():
    plan_only = {"clean.plan_drop", "clean.plan_relabel"}  # the Diagnose page's plan, not a widget
    every = {f"{s}.{f.name}" for s, kind in SECTIONS.items() for f in dataclasses.fields(kind)}
    paths = [f.path for f in FIELDS]
    assert len(paths) == len(set(paths)) and set(paths) == every - plan_only
    assert len({f.key for f in FIELDS}) == len(FIELDS) and all(f.key.startswith("tr_") for f in FIELDS)
    assert list(TABS) == [s for s in SECTIONS if s not in TAB_OF] and [f for s in TABS for f in section_fields(s)] == list(FIELDS)
    assert widget_values(Mitigations())["tr_loss_name"] == "cross_entropy" and widget_values(Mitigations())[TARGETS] == {}


def test_widget_values_are_copies():
    m = Mitigations(resample=Resampling(method="random_over", targets={"a": 3}))
    values = widget_values(m)
    values[TARGETS]["a"] = 99
    values["tr_aug_image"].append("flip")
    assert m.resample.targets == {"a": 3} and m.augment.image == []


def test_hidden_fields_read_as_the_table_says():
    values = widget_values(Mitigations())
    values.update({
        "tr_loss_name": "focal", "tr_loss_gamma": 1.5, "tr_loss_drw": 0.5, "tr_aug_image": ["flip"], "tr_aug_text": ["swap"],
        TARGETS: {"a": 5}, "tr_semi_rounds": 3, "tr_rs_k": 9,
    })  # fmt: skip
    m = from_widgets(values, modality="image", finetune="full")
    # no class weights: no deferred re-weighting; image augmentations only; no targets without an over- or under-sampler
    assert m.loss == LossSettings(name="focal", gamma=1.5)
    assert (m.augment.image, m.augment.text, m.resample.targets) == (["flip"], [], {})
    assert (m.semi.rounds, m.resample.k_neighbors) == (3, 9)  # hidden, but kept as set
    assert from_widgets(values, modality="image", finetune="linear_probe").augment.image == []
    assert from_widgets(values, modality="text", finetune="full").augment.text == ["swap"]
    values.update({"tr_loss_weights": "inverse", "tr_rs_method": "random_under"})
    m = from_widgets(values, modality="tabular", finetune="full")
    assert (m.loss.reweight_from, m.resample.targets, m.augment.image, m.augment.text) == (0.5, {"a": 5}, [], [])


def test_widget_values_are_cast_to_the_fields_types():
    values = {**widget_values(Mitigations()), "tr_rs_k": 7.0, "tr_aug_multiplier": 2.0, "tr_loss_smoothing": 0, "tr_dec_tm": 1}
    m = from_widgets(values, modality="image", finetune="full")
    assert (m.resample.k_neighbors, m.augment.multiplier, m.loss.label_smoothing, m.decision.threshold_moving) == (7, 2, 0.0, True)
    assert type(m.resample.k_neighbors) is int and type(m.loss.label_smoothing) is float and m.validate() is m


def test_cleaning_by_plan_takes_the_plans_decisions_only_when_on():
    values = {**widget_values(Mitigations()), "tr_clean_action": "drop", "tr_clean_source": "plan"}
    m = from_widgets(values, modality="image", finetune="full", plan_drop=[9, 2], plan_relabel={7: 1, 3: 0})
    assert (m.clean.plan_drop, m.clean.plan_relabel) == ([2, 9], {"3": 0, "7": 1})
    off = from_widgets({**values, "tr_clean_action": "none"}, modality="image", finetune="full", plan_drop=[9])
    assert (off.clean.plan_drop, off.clean.plan_relabel) == ([], {})


def test_what_is_drawn_follows_the_other_widgets_and_the_data():
    by_key = {f.key: f for f in FIELDS}
    values = context(widget_values(Mitigations()), modality="image", finetune="full")
    drawn = {f.key for f in FIELDS if shown(f, values)}
    assert drawn == {
        "tr_rs_method", "tr_loss_name", "tr_loss_weights", "tr_loss_smoothing", "tr_aug_image", "tr_aug_strength", "tr_aug_classes",
        "tr_aug_multiplier", "tr_clean_action", "tr_clean_source", "tr_semi_method", "tr_dec_tm", "tr_dec_abstain", "tr_adv_method", "tr_dec_la",
        "tr_loss_wd",
    }  # fmt: skip
    sampled = context({**widget_values(Mitigations()), "tr_rs_method": "class_balanced"}, modality="image", finetune="full")
    assert shown(by_key["tr_rs_from"], sampled) and shown(by_key["tr_rs_crt"], sampled)
    probe = context({**widget_values(Mitigations()), "tr_rs_method": "class_balanced"}, modality="image", finetune="linear_probe")
    assert shown(by_key["tr_rs_from"], probe) and not shown(by_key["tr_rs_crt"], probe)  # a probe is a head alone
    smote = context({**widget_values(Mitigations()), "tr_rs_method": "smote"}, modality="image", finetune="linear_probe")
    assert not shown(by_key["tr_rs_from"], smote)  # made once, before training: nothing to defer
    focal = context({**widget_values(Mitigations()), "tr_loss_name": "focal", "tr_clean_action": "drop", "tr_clean_source": "threshold"},
                    modality="text", finetune="full")  # fmt: skip
    assert shown(by_key["tr_loss_gamma"], focal) and not shown(by_key["tr_loss_tau"], focal)
    assert shown(by_key["tr_clean_threshold"], focal) and shown(by_key["tr_aug_text"], focal) and not shown(by_key["tr_aug_image"], focal)
    disabled = by_key["tr_clean_source"].disabled
    assert disabled is not None and disabled(values) and not disabled(focal)


def test_token_data_gets_resampling_loss_token_augmentation_and_the_o_offset_only():
    values = widget_values(Mitigations())
    values.update({
        "tr_clean_action": "drop", "tr_semi_method": "pseudo_label", "tr_dec_tm": True, "tr_dec_abstain": 0.5, "tr_aug_text": ["swap"],
        "tr_aug_classes": ["a"], "tr_aug_multiplier": 3, "tr_tok_mention": 0.3, "tr_tok_types": ["LOC"], "tr_rs_method": "sqrt",
        "tr_dec_ooff": True,
    })  # fmt: skip
    m = from_widgets(values, modality="tokens", finetune="full")
    assert m == Mitigations(
        resample=Resampling(method="sqrt"), token_augment=TokenAugmentation(mention=0.3, types=["LOC"]), decision=Decision(o_offset=True)
    )
    # the same widget values on other data: no token augmentation and no O offset, the rest as set
    other = from_widgets(values, modality="text", finetune="full")
    assert other.token_augment == TokenAugmentation() and other.clean.action == "drop" and other.augment.multiplier == 3
    assert other.decision == Decision(threshold_moving=True, abstain_below=0.5)
    assert tabs_for("tokens") == ["resample", "loss", "augment", "decision"] and tabs_for("image") == list(TABS)
    drawn = {f.key for f in FIELDS if shown(f, context(widget_values(Mitigations()), modality="tokens", finetune="full"))}
    assert drawn == {"tr_rs_method", "tr_loss_name", "tr_loss_weights", "tr_loss_smoothing", "tr_loss_wd", "tr_dec_ooff", *(f"tr_tok_{n}" for n in ("mention", "lwtr", "synonym", "shuffle", "copies", "types"))}  # fmt: skip
    assert "tr_dec_ooff" not in {
        f.key for f in FIELDS if shown(f, context(widget_values(Mitigations()), modality="image", finetune="full"))
    }
