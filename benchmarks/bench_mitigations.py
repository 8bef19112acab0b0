"""Mitigations against incomplete data: each family against the baseline, same seeds, on Fashion-MNIST.

    .venv/bin/python benchmarks/bench_mitigations.py                 # everything (~30–40 min on 2 CPU cores)
    .venv/bin/python benchmarks/bench_mitigations.py --only lt       # the long tail only (or: noise, smote)
    .venv/bin/python benchmarks/bench_mitigations.py --epochs 4      # shorter runs
    .venv/bin/python benchmarks/bench_mitigations.py --only orders --orders 5 --order-seed 0   # the long tail over 5 random class orders

Data (Fashion-MNIST from the Debian package; val and test stay as they are, balanced and clean):

- **long tail** — the train split thinned to an exponential profile with imbalance ratio 100:
  class c keeps 100^(−c/9) of its 5,500 train items (T-shirt all of them, ankle boot 55).
- **balanced, same size** — as many train items as the long tail, spread evenly: what the model
  would reach without the imbalance. The long tail "takes away" the macro-F1 between the two, and
  a mitigation's *recovered* share is (mitigated − long-tail baseline) / (balanced − long-tail
  baseline). The full 55k-item train split is reported too, for scale.
- **30 % noise** — 20,000 train items, 30 % of their labels flipped uniformly to another class.

Models, both through ``core.train.worker.train_run`` with the run's seams:

- **CNN** — ``small_cnn`` trained from scratch at 28 px (every mitigation applies);
- **probe** — a linear probe on MobileNetV2 features at 64 px (cached by ``core.embed``; the
  SMOTE family applies here).

- **random tail orders of a text task** (``--only text-orders``) — VADER's 23,703 texts labelled by
  their source (tweet, movie review, product review, NYT editorial), a MiniLM linear probe; the head
  keeps as many train texts as the smallest source has (2,970), rank r a 100^(−r/3) part of that (the
  tail 30), in ``--orders`` random orders; the balanced reference spreads the same total evenly.
- **random tail orders** (``--only orders``) — the same profile with the class order drawn at
  random (seeded by ``--order-seed`` and the order's number), so the tail is not always sneaker /
  bag / ankle boot: shirt, coat or pullover (confusable classes) can land in it. Per mitigation the
  figures over the orders: mean ± sd, the worst order, whether its hallucination rate stayed at or
  below the baseline's in every order, and in how many orders it was above the baseline run's beyond
  the paired bootstrap 95 % interval (``core.compare.intervals``), as trained and after each run's
  temperature scaling. ``--arms`` names the arms to run (``order_arms``: every mitigation above, weight
  balancing at several decays, deferred re-sampling, cRT, post-hoc decisions on balanced softmax,
  samplers, label smoothing, MixUp and shifts beside balanced softmax, the long-tail preset);
  ``--order-index`` runs some orders only; ``--run-seed`` re-seeds the runs (weights and draws).

Columns: test macro-F1, mean recall of the three rarest classes (sneaker, bag, ankle boot: 153,
92 and 55 train items), hallucination rate at τ = 0.9 and ECE, at the best checkpoint (before
temperature scaling). Every run uses seed 0 (the orders: ``--run-seed``). A run whose config was already trained in the
benchmark's home is read back instead of trained again, so a rerun only adds what is new. Also
timed: SMOTE on 60,000 × 1280 real embeddings, against the same on their 128 leading principal
components.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

RATIO = 100.0
NOISE = 0.30
NOISY_ITEMS = 20_000


def _thin(ds, keep_share, seed: int = 0):
    """``ds`` with each class's train items thinned to ``keep_share[c]``; other splits untouched."""
    from core.data import Dataset

    rng = np.random.default_rng(seed)
    keep = np.ones(len(ds), bool)
    for c in range(ds.n_classes):
        train = np.flatnonzero((ds.labels == c) & (ds.split == 0))
        n = max(1, round(len(train) * keep_share[c]))
        keep[rng.choice(train, len(train) - n, replace=False)] = False
    return Dataset(ds.name, ds.modality, np.asarray(ds.items)[keep], ds.labels[keep], ds.class_names, ds.split[keep])


def datasets(store) -> dict[str, int]:
    """Version ids of the benchmark's datasets (made once, then found again by source)."""
    from core.data import Dataset
    from core.data.demos import load_fashion_mnist
    from core.diagnose.synthetic import inject_noise, make_noise_matrix

    made = {}
    full = None
    for key in ("full", "long_tail", "balanced", "noisy"):
        source = f"bench:fashion-{key}"
        found = store.find_dataset(source)
        if found is not None:
            made[key] = store.versions(found)[-1].id
            continue
        full = full or load_fashion_mnist().dataset
        k = full.n_classes
        if key == "full":
            ds = full
        elif key == "long_tail":
            ds = _thin(full, [RATIO ** (-c / (k - 1)) for c in range(k)])
        elif key == "balanced":
            n_lt = sum(round(5500 * RATIO ** (-c / (k - 1))) for c in range(k))
            ds = _thin(full, [n_lt / k / 5500] * k)
        else:
            rng = np.random.default_rng(0)
            train = np.flatnonzero(full.split == 0)
            keep = np.sort(np.r_[rng.choice(train, NOISY_ITEMS, replace=False), np.flatnonzero(full.split != 0)])
            sub = full.subset(keep)
            labels = sub.labels.copy()
            tr = sub.split == 0
            labels[tr], _ = inject_noise(labels[tr], make_noise_matrix(k, kind="symmetric", rate=NOISE), seed=0)
            ds = Dataset(sub.name, "image", np.asarray(sub.items), labels, sub.class_names, sub.split)
        made[key] = store.save_dataset(ds, source=source, note=key)
    return made


def vader_sources():
    """VADER's texts labelled by their source (tweet, movie review, product review, NYT editorial):
    a four-class text task whose classes all have thousands of train texts, so a ratio-100 tail can
    be cut in any class order. Splits as the demo's."""
    from core.data import Dataset
    from core.data.demos import load_vader

    ds = load_vader().dataset
    domain = ds.meta["domain"].astype(str).to_numpy()
    names = sorted(set(domain))
    labels = np.array([names.index(d) for d in domain], dtype=np.int64)
    return Dataset("VADER sources", "text", np.asarray(ds.items), labels, names, ds.split)


def _shares(ds, perm: list[int]) -> list[float]:
    """Each class's kept share of its train items for the class order ``perm`` (head first): the
    head keeps as many as the smallest class has, rank r a ``RATIO^(−r/(k−1))`` part of that."""
    k = ds.n_classes
    counts = np.bincount(ds.labels[ds.split == 0], minlength=k)
    top = int(counts.min())
    share = [0.0] * k
    for rank, c in enumerate(perm):
        share[c] = top * RATIO ** (-rank / (k - 1)) / counts[c]
    return share


def text_versions(store, order_seed: int, orders: int) -> tuple[int, list[tuple[int, list[int]]]]:
    """(balanced version id, [(version id, class order)]) of the VADER-sources long tails, made once."""
    ds, out = None, []
    for perm in distinct_orders(4, order_seed, orders):
        source = f"bench:vader-sources-long_tail-{'-'.join(map(str, perm))}"
        found = store.find_dataset(source)
        if found is not None:
            out.append((store.versions(found)[-1].id, perm))
            continue
        ds = ds or vader_sources()
        out.append((store.save_dataset(_thin(ds, _shares(ds, perm)), source=source, note=f"long tail, order {perm}"), perm))
    found = store.find_dataset("bench:vader-sources-balanced")
    if found is not None:
        return store.versions(found)[-1].id, out
    ds = ds or vader_sources()
    counts = np.bincount(ds.labels[ds.split == 0], minlength=4)
    total = sum(round(int(counts.min()) * RATIO ** (-r / 3)) for r in range(4))
    balanced = _thin(ds, [total / 4 / n for n in counts])
    return store.save_dataset(balanced, source="bench:vader-sources-balanced", note="balanced, the long tail's size"), out


def distinct_orders(k: int, order_seed: int, n: int) -> list[list[int]]:
    """``n`` different class orders of ``k`` classes: the seeded draws ``[order_seed, j]`` for j = 0,
    1, …, a repeat skipped (four classes have 24 orders, and five draws may repeat one)."""
    import math

    if n > math.factorial(k):
        raise SystemExit(f"{k} classes have only {math.factorial(k)} orders; ask for fewer than {n}.")
    out: list[list[int]] = []
    j = 0
    while len(out) < n:
        perm = np.random.default_rng([order_seed, j]).permutation(k).tolist()
        if perm not in out:
            out.append(perm)
        j += 1
    return out


def order_profile(k: int, order_seed: int, order: int) -> tuple[list[float], list[int]]:
    """Each class's kept share under a random class order (seeded), and that order (head first)."""
    perm = np.random.default_rng([order_seed, order]).permutation(k)
    share = [0.0] * k
    for rank, c in enumerate(perm.tolist()):
        share[c] = RATIO ** (-rank / (k - 1))
    return share, perm.tolist()


def order_versions(store, order_seed: int, orders: int) -> list[tuple[int, list[int]]]:
    """(version id, class order) of each random-order long tail, made once then found by source."""
    from core.data.demos import load_fashion_mnist

    full, out = None, []
    for i in range(orders):
        source = f"bench:fashion-long_tail-order-{order_seed}-{i}"
        found = store.find_dataset(source)
        full = full if found is not None else (full or load_fashion_mnist().dataset)
        share, perm = order_profile(10, order_seed, i)
        if found is not None:
            out.append((store.versions(found)[-1].id, perm))
            continue
        out.append((store.save_dataset(_thin(full, share), source=source, note=f"long tail, order {perm}"), perm))
    return out


ORDER_MITIGATIONS = ("baseline (cross-entropy)", "class-balanced sampler", "logit-adjusted loss τ=1", "balanced softmax", "LDAM-DRW",
                     "post-hoc logit adjustment (τ on val)", "long-tail preset")  # fmt: skip


def order_arms(model: str) -> dict[str, tuple[object, dict, str]]:
    """Every arm the orders part can run: name → (Mitigations, RunConfig changes, evaluation variant
    read: "" for the plain one, "la" for post-hoc logit adjustment's answers)."""
    from core.mitigate.presets import preset
    from core.mitigate.settings import Augmentation, Decision, LossSettings, Mitigations, Resampling

    finetune = "linear_probe" if model == "probe" else "full"
    bs = LossSettings(name="balanced_softmax")
    arms: dict[str, tuple[object, dict, str]] = {name: (m, {}, "") for name, m in mitigations_for(model)}
    arms["post-hoc logit adjustment (τ on val)"] = (Mitigations(decision=Decision(logit_adjustment=True)), {}, "la")
    arms["balanced softmax + post-hoc logit adjustment (τ on val)"] = (
        Mitigations(loss=bs, decision=Decision(logit_adjustment=True)), {}, "la"
    )  # fmt: skip
    for wd in (0.1, 0.3, 1.0, 3.0, 10.0):
        arms[f"balanced softmax, weight decay {wd:g}"] = (Mitigations(loss=bs), {"weight_decay": wd}, "")
        arms[f"cross-entropy, weight decay {wd:g}"] = (Mitigations(), {"weight_decay": wd}, "")
    arms["balanced softmax, weight decay 1 + post-hoc logit adjustment (τ on val)"] = (
        Mitigations(loss=LossSettings(name="balanced_softmax", weight_decay=1.0), decision=Decision(logit_adjustment=True)), {}, "la"
    )  # fmt: skip
    decide = Decision(threshold_moving=True, logit_adjustment=True)  # one run, both post-hoc answers
    arms["balanced softmax + threshold moving (offsets on val)"] = (Mitigations(loss=bs, decision=decide), {}, "tm")
    arms["balanced softmax + post-hoc logit adjustment, same run (τ on val)"] = (Mitigations(loss=bs, decision=decide), {}, "la")
    arms["class-balanced sampler from 50 % of the epochs (deferred re-sampling)"] = (
        Mitigations(resample=Resampling("class_balanced", resample_from=0.5)), {}, ""
    )  # fmt: skip
    arms["cRT: class-balanced classifier re-training from 50 % of the epochs"] = (
        Mitigations(resample=Resampling("class_balanced", resample_from=0.5, retrain_head=True)), {}, ""
    )  # fmt: skip
    arms["balanced softmax + translate (strength 0.5)"] = (
        Mitigations(loss=bs, augment=Augmentation(image=["translate"], strength=0.5)),
        {},
        "",
    )
    arms["balanced softmax + MixUp (α 0.2)"] = (Mitigations(loss=bs, augment=Augmentation(image=["mixup"], strength=0.2)), {}, "")
    arms["balanced softmax, class-balanced sampler from 50 % of the epochs"] = (
        Mitigations(loss=bs, resample=Resampling("class_balanced", resample_from=0.5)), {}, ""
    )  # fmt: skip
    arms["balanced softmax, class-balanced sampler from 75 % of the epochs"] = (
        Mitigations(loss=bs, resample=Resampling("class_balanced", resample_from=0.75)), {}, ""
    )  # fmt: skip
    sqrt = Resampling("sqrt")
    arms["balanced softmax, square-root sampler"] = (Mitigations(loss=bs, resample=sqrt), {}, "")
    for eps in (0.1, 0.2):
        arms[f"balanced softmax, square-root sampler, label smoothing {eps:g}"] = (
            Mitigations(loss=LossSettings(name="balanced_softmax", label_smoothing=eps), resample=sqrt), {}, ""
        )  # fmt: skip
    arms["balanced softmax, label smoothing 0.1"] = (Mitigations(loss=LossSettings(name="balanced_softmax", label_smoothing=0.1)), {}, "")
    for wd in (1.0, 3.0):
        arms[f"balanced softmax, square-root sampler, weight decay {wd:g}"] = (
            Mitigations(loss=bs, resample=sqrt),
            {"weight_decay": wd},
            "",
        )
    arms["long-tail preset"] = (preset("long_tail", modality="image", finetune=finetune), {}, "")
    return arms


def _beyond(name: str, baseline: str, per_order: list[dict[str, dict]], key: str = "hallucination_verdict") -> str:
    """In how many orders the arm's hallucination rate was above the baseline's beyond the interval."""
    if name == baseline:
        return "—"
    verdicts = [o[name].get(key) for o in per_order]
    if None in verdicts:
        return "post-hoc answers: not computed"
    return f"{sum(v == 'worse' for v in verdicts)} of {len(verdicts)} (below it in {sum(v == 'better' for v in verdicts)})"


def summarise_orders(per_order: list[dict[str, dict]], balanced: float, tails: list[list[int]]) -> str:
    """Mean ± sd and the worst order of every mitigation over the orders, as a markdown table."""
    lines = ["| mitigation | macro-F1 mean ± sd (worst) | tail recall mean (worst) | hallucination@0.9 mean (worst) | ECE mean | recovered mean (worst) | halluc. ≤ baseline in every order | halluc. above baseline beyond its 95 % interval | the same after temperature scaling |",
             "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    names = list(per_order[0])
    for name in names:
        f1 = np.array([o[name]["macro_f1"] for o in per_order])
        tail = np.array([np.mean([o[name]["recall"].get(c, 0.0) for c in t]) for o, t in zip(per_order, tails)])
        hal = np.array([o[name]["hallucination_rate"] for o in per_order])
        ece = np.array([o[name]["ece"] for o in per_order])
        base = np.array([o[names[0]]["macro_f1"] for o in per_order])
        rec = 100 * (f1 - base) / np.maximum(balanced - base, 1e-9)
        base_hal = np.array([o[names[0]]["hallucination_rate"] for o in per_order])
        lines.append(
            f"| {name} | {f1.mean():.3f} ± {f1.std(ddof=1) if len(f1) > 1 else 0:.3f} ({f1.min():.3f}) | {tail.mean():.3f} ({tail.min():.3f}) | "
            f"{hal.mean():.3f} ({hal.max():.3f}) | {ece.mean():.3f} | "
            + ("— |" if name == names[0] else f"{rec.mean():.0f}% ({rec.min():.0f}%) |")
            + f" {'—' if name == names[0] else 'yes' if (hal <= base_hal + 1e-12).all() else f'no ({int((hal > base_hal + 1e-12).sum())} of {len(hal)})'} |"
            + f" {_beyond(name, names[0], per_order)} |"
            + f" {_beyond(name, names[0], per_order, 'hallucination_verdict_ts')} |"
        )
    return "\n".join(lines)


def part_orders(
    store, vids, epochs: int, models: list[str], order_seed: int, orders: int, names: list[str], text: bool = False,
    only: list[int] | None = None, seed: int = 0,
) -> None:  # fmt: skip
    from core.mitigate.settings import Mitigations

    if text:  # VADER's texts by source: the MiniLM probe only
        balanced_vid, versions = text_versions(store, order_seed, orders)
        models = ["text probe"]
    else:
        balanced_vid, versions = vids["balanced"], order_versions(store, order_seed, orders)
    if only:  # a look at some orders (by number), not a table to report
        versions = [v for i, v in enumerate(versions) if i in only]
    what = "VADER sources" if text else "Fashion-MNIST"
    print(f"\n## {what}: long tail (ratio {RATIO:.0f}) over {orders} random class orders (seed {order_seed})", flush=True)
    for model in models:
        arms = order_arms("probe" if text else model)
        unknown = [n for n in names if n not in arms]
        if unknown:
            raise SystemExit(f"unknown arms {unknown}; known: {list(arms)}")
        balanced = run(store, balanced_vid, model, Mitigations(), epochs=epochs, seed=seed)["macro_f1"]
        per_order, tails = [], []
        for vid, perm in versions:
            tails.append(sorted(perm[-max(1, 3 * len(perm) // 10) :]))  # the rarest three of ten, the rarest one of four
            got = {}
            for name in names:
                m, over, variant = arms[name]
                got[name] = run(store, vid, model, m, epochs=epochs, seed=seed, **over)
                if variant:  # post-hoc decisions: the run's figures from that evaluation
                    got[name] = _variant(store, got[name], variant)
                else:  # the change in hallucination rate against the baseline's run, with its paired interval
                    got[name]["hallucination_verdict"] = _hallucination_verdict(store, got[names[0]]["run_id"], got[name]["run_id"])
                    got[name]["hallucination_verdict_ts"] = _hallucination_verdict(
                        store, got[names[0]]["run_id"], got[name]["run_id"], scaled=True
                    )
                print(f"  {model} · order {perm} · {name}: macro-F1 {got[name]['macro_f1']:.3f}", flush=True)
            per_order.append(got)
        print(
            f"\n### {model} (balanced train of the same size: macro-F1 {balanced:.3f})\n" + summarise_orders(per_order, balanced, tails),
            flush=True,
        )


def _hallucination_verdict(store, base_run: int, run_id: int, *, scaled: bool = False) -> str:
    """ "worse" when the run's test hallucination rate @0.9 is above the baseline run's beyond the
    paired bootstrap 95 % interval (``core.compare.intervals``), "better" below it, else "no clear
    difference"; the same run: "—". ``scaled``: both runs' answers after their own temperature
    scaling (the stored probabilities raised to 1/T and renormalised: softmax of logits / T)."""
    import dataclasses

    from core.compare.intervals import answers, compare_to_reference, paired_bootstrap
    from core.metrics.results import RunResults

    if run_id == base_run:
        return "—"
    results = [RunResults(store, base_run), RunResults(store, run_id)]
    datasets = [store.load_dataset(store.run(r).version_id) for r in (base_run, run_id)]
    if not scaled:
        iv = compare_to_reference(results, datasets)[run_id].intervals.get("hallucination_rate")
        return iv.verdict if iv is not None else "no interval"
    got = []
    for res, ds in zip(results, datasets):
        a = answers(res, ds)
        if a is None:
            return "no interval"
        t = float((res.summary() or {}).get("temperature", 1.0) or 1.0)
        p = a.probs ** (1.0 / t)
        got.append(dataclasses.replace(a, probs=p / p.sum(axis=1, keepdims=True)))
    return paired_bootstrap(got[0], got[1], tau=results[0].tau)["hallucination_rate"].verdict


def _variant(store, values: dict, variant: str) -> dict:
    """A run's figures read from its ``variant`` evaluation (post-hoc decisions) instead of the plain one."""
    from core.metrics.results import RunResults

    res = RunResults(store, values["run_id"])
    split = f"test_{variant}"
    out = dict(values)
    for n in ("macro_f1", "hallucination_rate", "ece", "accuracy"):
        out[n] = res.latest(n, split)
    out["recall"] = res.per_class("recall", split=split)
    return out


def mitigations_for(model: str):
    """(name, Mitigations) of the long-tail table for ``model`` ("cnn" or "probe")."""
    from core.mitigate.presets import preset
    from core.mitigate.settings import Augmentation, LossSettings, Mitigations, Resampling

    common = [
        ("baseline (cross-entropy)", Mitigations()),
        ("class-balanced sampler", Mitigations(resample=Resampling("class_balanced"))),
        ("square-root sampler", Mitigations(resample=Resampling("sqrt"))),
        ("class weights 1/n", Mitigations(loss=LossSettings(class_weights="inverse"))),
        ("class weights, effective number β=0.999", Mitigations(loss=LossSettings(class_weights="effective_number", beta=0.999))),
        ("focal loss γ=2", Mitigations(loss=LossSettings(name="focal", gamma=2.0))),
        ("logit-adjusted loss τ=1", Mitigations(loss=LossSettings(name="logit_adjusted", tau=1.0))),
        ("balanced softmax", Mitigations(loss=LossSettings(name="balanced_softmax"))),
        (
            "LDAM-DRW",
            Mitigations(
                loss=LossSettings(name="ldam", max_margin=0.5, scale=1.0, class_weights="effective_number", beta=0.999, reweight_from=0.75)
            ),
        ),
    ]
    if model == "probe":
        return [*common, ("SMOTE (k=5)", Mitigations(resample=Resampling("smote", k_neighbors=5)))]
    tail_aug = Augmentation(image=["flip", "resized_crop"], strength=0.5, classes=[], multiplier=1)
    return [
        *common,
        ("random over-sampler (imblearn)", Mitigations(resample=Resampling("random_over"))),
        ("flips + crops", Mitigations(augment=tail_aug)),
        ("flips", Mitigations(augment=Augmentation(image=["flip"], strength=0.5))),
        ("long-tail preset (balanced softmax)", preset("long_tail", modality="image")),
    ]


def run(store, vid: int, model: str, m, *, epochs: int, seed: int = 0, **over) -> dict[str, float]:
    """Train (or find trained) ``model`` on ``vid`` with mitigations ``m`` and RunConfig changes
    ``over``; its figures at the best checkpoint."""
    from core.train.config import RunConfig
    from core.train.worker import train_run

    if model == "cnn":
        cfg = RunConfig(version_id=vid, model="small_cnn", epochs=epochs, batch_size=128, lr=3e-3, seed=seed, device="cpu", mitigations=m)
    elif model == "text probe":
        cfg = RunConfig(
            version_id=vid, model="minilm", finetune="linear_probe", epochs=max(epochs, 10), batch_size=256, seed=seed, device="cpu",
            mitigations=m,
        )  # fmt: skip
    else:
        cfg = RunConfig(
            version_id=vid,
            model="mobilenet_v2",
            finetune="linear_probe",
            image_size=64,
            epochs=max(epochs, 10),
            batch_size=256,
            seed=seed,
            device="cpu",
            mitigations=m,
        )
    if over:
        import dataclasses

        cfg = dataclasses.replace(cfg, **over)
    # the same settings, whatever later versions added with their defaults
    done = [r for r in store.runs(status=("finished",)) if RunConfig.from_dict(r.config).to_dict() == cfg.to_dict()]
    if done:
        run_id = done[-1].id
        seconds = float(done[-1].finished_at - done[-1].started_at)
    else:
        run_id = store.create_run(vid, cfg.to_dict(), name=f"bench {model}")
        t = time.perf_counter()
        status = train_run(store, run_id)
        seconds = time.perf_counter() - t
        if status != "finished":
            raise RuntimeError(f"run {run_id} {status}: {store.run(run_id).message}")
    from core.metrics.results import RunResults

    res = RunResults(store, run_id)
    best = res.best_step
    values = {n: res.at(n, best) for n in ("macro_f1", "hallucination_rate", "ece", "accuracy")}
    values["recall"] = res.per_class("recall", step=best)
    values["seconds"] = seconds
    values["run_id"] = run_id
    return values


def tail_classes(store, vid: int, n: int = 3) -> list[int]:
    """The ``n`` classes with the fewest train items."""
    ds = store.load_dataset(vid)
    counts = np.bincount(ds.labels[ds.split == 0], minlength=ds.n_classes)
    return sorted(int(c) for c in np.argsort(counts, kind="stable")[:n])


def table(rows: list[tuple[str, dict]], tail: list[int], reference: tuple[float, float] | None) -> str:
    lines = ["| mitigation | macro-F1 | tail recall | hallucination@0.9 | ECE | recovered | s |", "|---|---|---|---|---|---|---|"]
    base = rows[0][1]["macro_f1"]
    for name, v in rows:
        tail_recall = np.mean([v["recall"].get(c, 0.0) for c in tail]) if tail else float("nan")
        recovered = "—"
        if reference is not None and name != rows[0][0]:
            balanced, _ = reference
            recovered = f"{100 * (v['macro_f1'] - base) / max(balanced - base, 1e-9):.1f}%"
        lines.append(
            f"| {name} | {v['macro_f1']:.3f} | {tail_recall:.3f} | {v['hallucination_rate']:.3f} | {v['ece']:.3f} | {recovered} | {v['seconds']:.0f} |"
        )
    return "\n".join(lines)


def part_long_tail(store, vids, epochs: int, models: list[str]) -> None:
    from core.mitigate.settings import Mitigations

    tail = tail_classes(store, vids["long_tail"])
    print(f"\n## Long tail (imbalance ratio {RATIO:.0f}); tail classes {tail}", flush=True)
    for model in models:
        balanced = run(store, vids["balanced"], model, Mitigations(), epochs=epochs)
        full = run(store, vids["full"], model, Mitigations(), epochs=epochs) if model == "probe" else None
        print(
            f"\n### {model}: balanced train of the same size: macro-F1 {balanced['macro_f1']:.3f}"
            + (f"; full 55k train: {full['macro_f1']:.3f}" if full else ""),
            flush=True,
        )
        rows = []
        for name, m in mitigations_for(model):
            rows.append((name, run(store, vids["long_tail"], model, m, epochs=epochs)))
            print(f"  {name}: macro-F1 {rows[-1][1]['macro_f1']:.3f} ({rows[-1][1]['seconds']:.0f} s)", flush=True)
        print(table(rows, tail, (balanced["macro_f1"], 0.0)), flush=True)
        best = max(rows[1:], key=lambda r: r[1]["macro_f1"])
        lost = balanced["macro_f1"] - rows[0][1]["macro_f1"]
        print(
            f"\nbest: {best[0]} recovers {100 * (best[1]['macro_f1'] - rows[0][1]['macro_f1']) / max(lost, 1e-9):.0f}% "
            f"of the {lost:.3f} macro-F1 the long tail took away (goal ≥ 60%)",
            flush=True,
        )


def part_noise(store, vids, epochs: int, models: list[str]) -> None:
    from core.mitigate.presets import preset
    from core.mitigate.settings import LossSettings, Mitigations

    print(f"\n## {NOISE:.0%} symmetric label noise ({NOISY_ITEMS:,} train items)", flush=True)
    for model in models:
        rows = [
            ("baseline (cross-entropy)", Mitigations()),
            ("label smoothing 0.1", Mitigations(loss=LossSettings(label_smoothing=0.1))),
            ("label smoothing 0.3", Mitigations(loss=LossSettings(label_smoothing=0.3))),
            ("focal loss γ=2", Mitigations(loss=LossSettings(name="focal", gamma=2.0))),
            ("noisy-label preset", preset("noisy_labels", modality="image", finetune="linear_probe" if model == "probe" else "full")),
        ]
        results = []
        for name, m in rows:
            results.append((name, run(store, vids["noisy"], model, m, epochs=epochs)))
            print(f"  {model} · {name}: macro-F1 {results[-1][1]['macro_f1']:.3f}", flush=True)
        print(f"\n### {model}\n" + table(results, [], None), flush=True)


def part_smote(store, vids) -> None:
    from core.diagnose.probe import pca_reduce
    from core.embed import embeddings
    from core.mitigate.resample import resample_features

    ds = store.load_dataset(vids["full"])
    keep = np.flatnonzero(ds.split != 2)[:60_000]
    X = np.asarray(embeddings.embed(ds, backbone="mobilenet_v2", image_size=64), dtype=np.float32)[keep]
    y = ds.labels[keep]
    counts = np.bincount(y)
    targets = {c: int(counts[c] * 1.5) for c in range(5, 10)}  # raise five classes by half
    print(f"\n## SMOTE on {len(X):,} × {X.shape[1]} MobileNetV2 embeddings (classes 5–9 raised by 50 %, k = 5)", flush=True)
    for name, Z in (("all 1280 dimensions", X), ("128 leading principal components", pca_reduce(X, 128))):
        t = time.perf_counter()
        _, _, origin = resample_features(Z, y, "smote", k_neighbors=5, targets=targets, seed=0)
        print(f"  {name}: {time.perf_counter() - t:.1f} s → {int((origin < 0).sum()):,} new points", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="lt,noise,smote", help="comma-separated: lt, orders, text-orders, noise, smote")
    parser.add_argument("--models", default="cnn,probe")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--orders", type=int, default=5, help="orders: random class orders of the long tail")
    parser.add_argument("--order-seed", type=int, default=0)
    parser.add_argument("--order-index", type=int, nargs="*", default=[], help="orders: run only these orders (by number, from 0)")
    parser.add_argument("--run-seed", type=int, default=0, help="orders: the runs' seed (weights, draws); the orders stay")
    parser.add_argument(
        "--arms", nargs="*", default=[], help="orders: the arms to run, by name (default: ORDER_MITIGATIONS); the first is the baseline"
    )
    parser.add_argument("--home", default=os.environ.get("GAPSCOPE_BENCH_HOME", str(Path.home() / ".cache" / "gapscope" / "bench-home")))
    args = parser.parse_args()
    from benchmarks.common import share_features

    share_features(Path(args.home))  # embeddings of the usual home are reused, and kept there
    os.environ["GAPSCOPE_HOME"] = args.home
    import torch

    from core.data import assets
    from core.store import Store

    if not assets.is_ready("fashion-mnist"):
        print("Fashion-MNIST is not fetched (it comes from the Debian package dataset-fashion-mnist); nothing to do.")
        return 0
    torch.set_num_threads(min(2, torch.get_num_threads()))
    store = Store(args.home)
    t0 = time.perf_counter()
    vids = datasets(store)
    only = set(args.only.split(","))
    models = args.models.split(",")
    print(f"Mitigation benchmark · CPU · {torch.get_num_threads()} threads · epochs {args.epochs} · home {args.home}")
    if "lt" in only:
        part_long_tail(store, vids, args.epochs, models)
    for part, text in (("orders", False), ("text-orders", True)):  # --order-index picks orders of either
        if part in only:
            arms = args.arms or list(ORDER_MITIGATIONS)
            part_orders(
                store, vids, args.epochs, models, args.order_seed, args.orders, arms, text=text, only=args.order_index, seed=args.run_seed
            )
    if "noise" in only:
        part_noise(store, vids, args.epochs, models)
    if "smote" in only:
        part_smote(store, vids)
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
