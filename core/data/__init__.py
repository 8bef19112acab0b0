"""Datasets: the ``Dataset`` model, loaders (tables, IDX, image archives, demos), imports, the
verified offline assets, the slice rule and the profile. See ARCHITECTURE.md for the data flow."""

from core.data.dataset import MODALITIES, SPLITS, Dataset, LoadResult, content_hashes

__all__ = ["MODALITIES", "SPLITS", "Dataset", "LoadResult", "content_hashes"]
