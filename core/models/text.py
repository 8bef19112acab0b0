"""Text models: any local transformers folder (MiniLM comes packaged), as a classifier or an encoder.

Nothing is downloaded: folders are loaded with ``local_files_only=True``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from core.data import assets
from core.hardware import limit_torch_threads
from core.models.build import Built, freeze

if TYPE_CHECKING:
    from core.train.config import RunConfig


def text_source(model: str) -> str:
    """The local folder a text model loads from ("minilm" → the packaged weights)."""
    if model in ("auto", "minilm"):
        return str(assets.asset_path("minilm"))
    return str(Path(model).expanduser())


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    """Silence transformers' "newly initialised weights" notice and its progress bars (they would
    land in the app's log); restore both afterwards."""
    from transformers.utils import logging as hf_logging

    verbosity, bar = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bar:
            hf_logging.enable_progress_bar()


def _load_error(source: str, err: OSError) -> ValueError:
    return ValueError(f"could not load a transformers model from {source}: {str(err).splitlines()[0][:300]}")


def load_tokenizer(source: str) -> Any:
    from transformers import AutoTokenizer

    with _quiet_transformers():
        try:
            return AutoTokenizer.from_pretrained(source, local_files_only=True)
        except OSError as err:
            raise _load_error(source, err) from err


@lru_cache(maxsize=2)
def load_encoder(source: str) -> tuple[Any, nn.Module]:
    """(tokenizer, encoder in eval mode) from a local folder; cached, for embeddings."""
    limit_torch_threads()
    from transformers import AutoModel

    with _quiet_transformers():
        try:
            model = AutoModel.from_pretrained(source, local_files_only=True)
        except OSError as err:
            raise _load_error(source, err) from err
    return load_tokenizer(source), model.eval()


@lru_cache(maxsize=1)
def quantised_encoder(source: str) -> nn.Module:
    """The encoder of ``source`` with every Linear layer dynamically quantised to int8 (weights per
    output channel, activations per batch; ``torch.ao.quantization.quantize_dynamic``): CPU
    inference only. A copy: the fp32 encoder ``load_encoder`` keeps is left as it is."""
    import copy
    import warnings

    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    _, model = load_encoder(source)
    with warnings.catch_warnings():  # the eager-mode API's notice that it is moving to torchao
        warnings.simplefilter("ignore")
        quantised = quantize_dynamic(copy.deepcopy(model), {nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8)
    return quantised.eval()


def existing_head(source: str) -> int | None:
    """The number of outputs of the classification head a local folder was saved with; None when
    it holds a bare encoder (no ``*ForSequenceClassification`` architecture)."""
    from transformers import AutoConfig

    with _quiet_transformers():
        try:
            config = AutoConfig.from_pretrained(source, local_files_only=True)
        except (OSError, ValueError):
            return None
    if not any(str(a).endswith("ForSequenceClassification") for a in (getattr(config, "architectures", None) or [])):
        return None
    return int(config.num_labels)


class TextClassifier(nn.Module):
    """A transformers ``AutoModelForSequenceClassification`` called with a dict of token tensors."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.model(**batch).logits


def layer_list(model: nn.Module) -> nn.ModuleList:
    """The transformer's list of layers: the ModuleList holding the most parameters."""
    best, best_n = None, -1
    for _, m in model.named_modules():
        if isinstance(m, nn.ModuleList) and len(m) > 0:
            n = sum(p.numel() for p in m.parameters())
            if n > best_n:
                best, best_n = m, n
    if best is None:
        raise ValueError("could not find the layers of this transformers model to freeze; use finetune='full'.")
    return best


def build_text(cfg: RunConfig, *, n_classes: int, **_: Any) -> Built:
    """MiniLM or a local transformers folder with a new K-class head (finetune full or last_n)."""
    from transformers import AutoModelForSequenceClassification

    source = text_source(cfg.model)
    tokenizer = load_tokenizer(source)
    head = existing_head(source)
    if head is not None and head != n_classes:
        print(
            f"{source} has a classification head with {head} outputs and this dataset has {n_classes} classes: "
            f"loaded its backbone and started a new {n_classes}-class head",
            flush=True,
        )
    elif head is not None:
        print(f"{source} has a {head}-class head; it is kept (its label order may differ from the dataset's)", flush=True)
    with _quiet_transformers():  # "newly initialised classifier weights" is the point here
        kwargs = {"num_labels": n_classes, "local_files_only": True, "ignore_mismatched_sizes": head is not None and head != n_classes}
        try:
            try:  # PyTorch's fused attention (scaled_dot_product_attention) where the architecture has it
                model = AutoModelForSequenceClassification.from_pretrained(source, attn_implementation="sdpa", **kwargs)
            except ValueError as err:
                if "sdpa" not in str(err).lower() and "attention" not in str(err).lower():
                    raise
                model = AutoModelForSequenceClassification.from_pretrained(source, **kwargs)
        except OSError as err:
            raise _load_error(source, err) from err
    frozen: list[nn.Module] = []
    if cfg.finetune == "last_n":
        layers = layer_list(model)
        n = min(cfg.last_n_blocks, len(layers))
        embeddings = getattr(model.base_model, "embeddings", None)
        frozen = freeze(([embeddings] if embeddings is not None else []) + list(layers[: len(layers) - n]))
    return Built(TextClassifier(model), feed="tokens", arch="transformer", frozen=frozen, tokenizer=tokenizer)
