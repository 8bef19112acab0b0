"""Simulated versions in the store: made from a parent version, the recipe kept with them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.simulate.corrupt import simulate
from core.simulate.recipe import Recipe

if TYPE_CHECKING:
    from core.data.dataset import Dataset
    from core.store.database import Store


def save_simulated(store: Store, version_id: int, recipe: Recipe, *, dataset: Dataset | None = None) -> int:
    """Apply ``recipe`` to version ``version_id`` and store the result as its child (kind
    ``simulate``, the recipe in ``params``, the truth in the ``sim_*`` meta columns); return its id."""
    info = store.version(version_id)
    ds = dataset if dataset is not None else store.load_dataset(version_id)
    out = simulate(ds, recipe)
    return store.save_dataset(
        out,
        source=info.source,
        dataset_id=info.dataset_id,
        parent_id=version_id,
        kind="simulate",
        note=recipe.summary(),
        params={"recipe": recipe.to_dict()},
    )


def recipe_of(store: Store, version_id: int) -> Recipe | None:
    """The recipe a simulated version was made with, or None for any other version."""
    info = store.version(version_id)
    return Recipe.from_dict(info.params["recipe"]) if info.kind == "simulate" and "recipe" in info.params else None


def recipe_source(store: Store, version_id: int) -> tuple[int, Recipe | None]:
    """(the version recipes start from, the recipe ``version_id`` was made with): a simulated
    version's clean parent and its recipe, else ``version_id`` itself and None."""
    truth = recipe_of(store, version_id)
    parent = store.version(version_id).parent_id
    return (int(parent) if truth is not None and parent is not None else version_id), truth
