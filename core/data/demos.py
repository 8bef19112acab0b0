"""The built-in demo datasets, built from the verified assets (see ``core.data.assets``).

python -m core.data.demos import   # put every available demo into the store (idempotent)
"""

from __future__ import annotations

import argparse
import gzip
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from core.data import assets
from core.data.dataset import Dataset, LoadResult
from core.data.idx import dataset_from_idx
from core.data.splits import stratified_split
from core.errors import DataError
from core.store import Store
from core.tokens.conll import load_conll, load_conll_files

FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
VADER_DOMAINS = {
    "tweets": "tweets",
    "movieReviewSnippets": "movie reviews",
    "amazonReviewSnippets": "product reviews",
    "nytEditorialSnippets": "NYT editorials",
}


def load_fashion_mnist() -> LoadResult:
    f = lambda name: assets.asset_path("fashion-mnist", f"fashion-mnist/{name}")
    return dataset_from_idx(
        f("train-images-idx3-ubyte.gz"),
        f("train-labels-idx1-ubyte.gz"),
        f("t10k-images-idx3-ubyte.gz"),
        f("t10k-labels-idx1-ubyte.gz"),
        name="Fashion-MNIST",
        class_names=FASHION_CLASSES,
    )


def load_mnist_5k() -> LoadResult:
    path = assets.asset_path("mnist-5k", "mnist-5k/mnist_5k.csv.gz")
    with gzip.open(path, "rt") as fh:
        table = pd.read_csv(fh, header=None, dtype=np.uint8).to_numpy()
    images, labels = table[:, :-1].reshape(-1, 28, 28), table[:, -1].astype(np.int64)  # label is the last column
    ds = Dataset(
        name="MNIST-5k",
        modality="image",
        items=np.ascontiguousarray(images),
        labels=labels,
        class_names=[str(i) for i in range(10)],
        split=stratified_split(labels),
    )
    return LoadResult(ds)


def load_digits_8x8() -> LoadResult:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    # 4-bit intensities 0..16 → 0..255 so they display and train like any other grayscale image
    images = np.round(bunch.images * (255 / 16)).astype(np.uint8)
    labels = bunch.target.astype(np.int64)
    ds = Dataset(
        name="Digits 8×8",
        modality="image",
        items=images,
        labels=labels,
        class_names=[str(i) for i in range(10)],
        split=stratified_split(labels),
    )
    return LoadResult(ds)


def load_vader() -> LoadResult:
    """VADER's four human-rated corpora: one row per text, every rater's score kept.

    label = sign of the mean rating (negative < 0 = neutral < positive); meta: ``domain``,
    ``mean_rating`` and ``rating_std`` (−4…4), ``n_raters``, ``agreement`` (share of raters whose
    sign matches the label — real annotator disagreement, i.e. real label noise) and ``ratings``.
    """
    frames = []
    for stem, domain in VADER_DOMAINS.items():
        texts = _read_vader_file(assets.asset_path("vader", f"vader/{stem}_GroundTruth.txt"), ["id", "gt_mean", "text"])
        ratings = _read_vader_file(
            assets.asset_path("vader", f"vader/{stem}_anonDataRatings.txt"), ["id", "mean_rating", "rating_std", "ratings"]
        )
        merged = texts.merge(ratings, on="id", how="inner", validate="one_to_one")
        if len(merged) != len(texts):
            raise DataError(
                f"VADER {stem}: {len(texts) - len(merged)} texts have no ratings; the cached files are damaged — run `python -m core.data.assets fetch`."
            )
        merged.insert(0, "domain", domain)
        frames.append(merged)
    df = pd.concat(frames, ignore_index=True)
    # "[0, -1, 2]" → int8 array; a plain split is ~10× faster than literal_eval on 23.7k rows
    scores = df["ratings"].map(lambda s: np.array(s.strip().strip("[]").split(","), dtype=np.int8))
    mean = df["mean_rating"].astype(float).to_numpy()
    labels = np.where(mean < 0, 0, np.where(mean > 0, 2, 1)).astype(np.int64)
    label_sign = labels - 1
    agreement = np.array([np.mean(np.sign(s) == sign) for s, sign in zip(scores, label_sign)])
    meta = pd.DataFrame(
        {
            "domain": df["domain"].astype("string"),
            "mean_rating": mean,
            "rating_std": df["rating_std"].astype(float).to_numpy(),
            "n_raters": scores.map(len).astype(np.int16).to_numpy(),
            "agreement": agreement.round(4),
            "ratings": scores.map(lambda s: ",".join(map(str, s.tolist()))).astype("string"),
        }
    )
    # stratify by label × domain so every split has every domain in proportion
    strata = labels * 10 + pd.factorize(meta["domain"])[0]
    ds = Dataset(
        name="VADER sentiment",
        modality="text",
        items=df["text"].to_numpy(dtype=object),
        labels=labels,
        class_names=["negative", "neutral", "positive"],
        split=stratified_split(strata),
        meta=meta,
    )
    return LoadResult(ds)


def _read_vader_file(path, columns: list[str]) -> pd.DataFrame:
    rows = []
    with open(path, encoding="utf-8-sig", errors="replace", newline="") as fh:
        for line in fh:
            parts = line.rstrip("\r\n").split("\t")
            if len(parts) >= len(columns):
                # texts may themselves contain tabs: keep everything after the fixed fields
                rows.append([*parts[: len(columns) - 1], "\t".join(parts[len(columns) - 1 :])])
    return pd.DataFrame(rows, columns=columns)


def load_conll2003() -> LoadResult:
    """CoNLL-2003 English NER as NeuroNER ships it: train / valid / test files ("token POS chunk
    NER", IOB2 tags), read as the given splits; ``doc`` numbers the Reuters articles across files."""
    files = [
        (f"{stem}.txt", assets.asset_path("conll2003", f"conll2003/{stem}.txt").read_bytes(), split)
        for stem, split in (("train", "train"), ("valid", "val"), ("test", "test"))
    ]
    return load_conll_files(files, name="CoNLL-2003 English")


def load_wnut16() -> LoadResult:
    """WNUT-16's train tweets (token, tab, tag; a lone tab between tweets), split here: seeded
    80 / 10 / 10, stratified by each tweet's rarest entity type."""
    path = assets.asset_path("wnut16", "wnut16/ner.txt")
    return load_conll(path.read_bytes(), "ner.txt", name="WNUT-16 tweets")


CENSUS_COLUMNS = [
    "age", "class_of_worker", "detailed_industry_recode", "detailed_occupation_recode", "education", "wage_per_hour",
    "enroll_in_edu_inst_last_wk", "marital_stat", "major_industry_code", "major_occupation_code", "race", "hispanic_origin",
    "sex", "member_of_a_labor_union", "reason_for_unemployment", "full_or_part_time_employment_stat", "capital_gains",
    "capital_losses", "dividends_from_stocks", "tax_filer_stat", "region_of_previous_residence", "state_of_previous_residence",
    "detailed_household_and_family_stat", "detailed_household_summary_in_household", "instance_weight",
    "migration_code_change_in_msa", "migration_code_change_in_reg", "migration_code_move_within_reg",
    "live_in_this_house_1_year_ago", "migration_prev_res_in_sunbelt", "num_persons_worked_for_employer",
    "family_members_under_18", "country_of_birth_father", "country_of_birth_mother", "country_of_birth_self", "citizenship",
    "own_business_or_self_employed", "fill_inc_questionnaire_for_veterans_admin", "veterans_benefits", "weeks_worked_in_year",
    "year", "income",
]  # fmt: skip
CENSUS_META = ["sex", "race", "age", "year", "instance_weight"]
CENSUS_ROWS_PER_YEAR = 20_000  # the demo's seeded draw from each survey year (of ~150k each)


def load_census_income(rows_per_year: int | None = CENSUS_ROWS_PER_YEAR) -> LoadResult:
    """Census-Income (KDD): income above $50,000 from 40 survey answers, 1994 and 1995.

    UCI's train and test files keep their split (val carved from train); ``rows_per_year`` rows
    are drawn from each survey year (seeded; None: all 299,285). Meta: ``sex``, ``race``, ``age``,
    ``year`` (1994 / 1995: a real time shift) and the survey's ``instance_weight`` — which is not a
    feature; neither is the year. Sex, race and age are features too.
    """
    from core.data.tables import TableRoles, dataset_from_table

    frames = []
    for split in ("train", "test"):
        path = assets.asset_path("census-income", f"census-income/census_income_1994_1995_{split}.csv")
        df = pd.read_csv(path, header=None, names=CENSUS_COLUMNS, skipinitialspace=True, na_values=["?"])
        if len(df.columns) != len(CENSUS_COLUMNS) or df["income"].isna().any():
            raise DataError(f"Census-Income {split}: the cached file is damaged — run `python -m core.data.assets fetch`.")
        df["split"] = split
        frames.append(df)
    df = pd.concat(frames, ignore_index=True)
    df["year"] = df["year"].map({94: 1994, 95: 1995}).astype("Int64")
    df["income"] = np.where(df["income"].astype(str).str.startswith("50000+"), "more than 50k", "50k or less")
    if rows_per_year is not None:
        rng = np.random.default_rng(0)
        keep = [
            rng.choice(rows, min(rows_per_year, len(rows)), replace=False)
            for rows in (np.flatnonzero(df["year"] == y) for y in (1994, 1995))
        ]
        df = df.iloc[np.sort(np.concatenate(keep))].reset_index(drop=True)
    features = [c for c in CENSUS_COLUMNS if c not in ("income", "year", "instance_weight")]
    roles = TableRoles(label="income", split="split", meta=CENSUS_META, features=features)
    result = dataset_from_table(df, roles, name="Census-Income (KDD)")
    return LoadResult(result.dataset, [])


@dataclass(frozen=True)
class Demo:
    key: str
    title: str
    blurb: str
    asset: str | None
    load: Callable[[], LoadResult]


DEMOS: dict[str, Demo] = {
    d.key: d
    for d in [
        Demo(
            "fashion-mnist",
            "Fashion-MNIST",
            "70,000 clothing images, 10 balanced classes — the canvas for simulating imbalance and noise.",
            "fashion-mnist",
            load_fashion_mnist,
        ),
        Demo(
            "vader",
            "VADER sentiment",
            "23.7k texts from tweets, reviews and editorials, each rated by 10–20+ people: real label disagreement.",
            "vader",
            load_vader,
        ),
        Demo("mnist-5k", "MNIST-5k", "5,000 handwritten digits, 500 per class.", "mnist-5k", load_mnist_5k),
        Demo(
            "conll2003",
            "CoNLL-2003 NER",
            "20.7k Reuters sentences tagged with people, places, organisations and other names: the named-entity benchmark.",
            "conll2003",
            load_conll2003,
        ),
        Demo(
            "wnut16",
            "WNUT-16 tweets NER",
            "2,394 tweets with 10 entity types, from 449 person mentions down to 34 TV shows: a long tail of entity types.",
            "wnut16",
            load_wnut16,
        ),
        Demo(
            "census-income",
            "Census-Income 1994 → 1995",
            "40,000 survey answers (20,000 per year): income above $50k, with sex, race, age and the year — a real time shift.",
            "census-income",
            load_census_income,
        ),
        Demo("digits", "Digits 8×8", "1,797 tiny 8×8 digits from scikit-learn: always available, loads instantly.", None, load_digits_8x8),
    ]
}


def available(key: str) -> bool:
    demo = DEMOS[key]
    return demo.asset is None or assets.is_ready(demo.asset)


def import_demo(store: Store, key: str) -> int:
    """Put demo ``key`` in the store (once) and return its newest version id."""
    demo = DEMOS[key]
    source = f"demo:{key}"
    existing = store.find_dataset(source)
    if existing is not None:
        return store.versions(existing)[-1].id
    if not available(key):
        raise DataError(
            f"{demo.title} is not on this machine: {assets.how_to_get(assets.ASSETS[str(demo.asset)])}, then run `python -m core.data.assets fetch`."
        )
    result = demo.load()
    params = {"tag_scheme": result.tag_scheme.as_dict()} if result.tag_scheme is not None else None
    return store.save_dataset(result.dataset, source=source, note="demo", params=params, warnings=result.warnings)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m core.data.demos")
    parser.add_argument("command", choices=["import"])
    parser.parse_args(argv)
    store = Store()
    for key, demo in DEMOS.items():
        if available(key):
            vid = import_demo(store, key)
            print(f"  ok       {demo.title} (version {vid})")
        else:
            print(f"  SKIPPED  {demo.title}: not fetched ({assets.how_to_get(assets.ASSETS[str(demo.asset)])})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
