"""Attributions of a run's result model for one item and one class, by Captum.

Every method answers the same question — which parts of this item pushed the model towards class
*c* — in the parts a person reads: pixels of the image as stored (before resizing and
normalisation, which happen inside the differentiated function), words of the text (sub-token
attributions summed per word), columns of the table (one-hot columns summed back to their column).

- Integrated Gradients (Sundararajan et al. 2017) of the class's **logit**, from a black image, a
  text of padding between its special tokens, or the train split's mean row. Its convergence delta
  (how far the attributions' sum is from logit(x) − logit(baseline)) is kept.
- Occlusion (images) and feature ablation (tables): how much the class's **probability** falls
  when a patch is blacked out or a column set to the train mean.
- Plain gradients (saliency): |∂ logit / ∂ input|, per pixel or column; for text the norm of the
  gradient at each token's embedding. The baseline the other methods must beat on deletion curves.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from core.errors import DataError
from core.explain.kinds import METHODS, Attribution, without_words

if TYPE_CHECKING:
    from core.train.apply import RunModel

IG_STEPS = 32
IG_DELTA_SHARE = 0.05  # the convergence delta allowed, as a share of the attributions' sum (at least of 1)
IG_MAX_STEPS = 512


# ---------------------------------------------------------------- methods on any differentiable function


def integrated_gradients(
    forward: Callable[..., torch.Tensor],
    x: torch.Tensor,
    baseline: torch.Tensor,
    target: int,
    *,
    n_steps: int = IG_STEPS,
    extra: tuple = (),
) -> tuple[np.ndarray, float]:
    """Integrated Gradients of ``forward``'s output ``target`` at ``x`` (batch of one) from
    ``baseline``; (attributions shaped like ``x[0]``, |convergence delta|). When the delta is over
    ``IG_DELTA_SHARE`` of the attributions' sum (or of 1, when the sum is smaller), the integral is
    taken again with 4× the steps, up to ``IG_MAX_STEPS``: a sharp bend of a ReLU network along the
    path can leave ``n_steps`` points short of the logit change."""
    from captum.attr import IntegratedGradients

    ig = IntegratedGradients(forward)
    while True:
        attr, delta = ig.attribute(
            x, baselines=baseline, target=target, n_steps=n_steps, additional_forward_args=extra or None, return_convergence_delta=True
        )
        values, gap = attr[0].detach().cpu().numpy(), float(delta.abs().max())
        if gap <= IG_DELTA_SHARE * max(1.0, abs(float(values.sum()))) or n_steps >= IG_MAX_STEPS:
            return values, gap
        n_steps = min(4 * n_steps, IG_MAX_STEPS)


def gradients(forward: Callable[..., torch.Tensor], x: torch.Tensor, target: int) -> np.ndarray:
    """|∂ forward(x)[target] / ∂ x| (captum's Saliency), shaped like ``x[0]``."""
    from captum.attr import Saliency

    x = x.detach().clone().requires_grad_(True)
    return Saliency(forward).attribute(x, target=target, abs=True)[0].detach().cpu().numpy()


def occlusion(prob: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, target: int, *, window: int, stride: int) -> np.ndarray:
    """Fall in ``prob(x)[target]`` when a ``window``² patch (all channels) is set to 0, averaged
    over the patches covering each pixel (captum's Occlusion); shaped like ``x[0]``."""
    from captum.attr import Occlusion

    c = int(x.shape[1])
    with torch.no_grad():
        out = Occlusion(prob).attribute(
            x, sliding_window_shapes=(c, window, window), strides=(c, stride, stride), baselines=0.0, target=target
        )
    return out[0].cpu().numpy()


def ablation(
    prob: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, baseline: torch.Tensor, mask: torch.Tensor, target: int
) -> np.ndarray:
    """Fall in ``prob(x)[target]`` when each group of ``mask`` is set to ``baseline`` (captum's
    FeatureAblation), one value per input column."""
    from captum.attr import FeatureAblation

    with torch.no_grad():
        out = FeatureAblation(prob).attribute(x, baselines=baseline, target=target, feature_mask=mask)
    return out[0].cpu().numpy()


# ---------------------------------------------------------------- a run's model


class Explainer:
    """Attributions and probabilities of one run's result model (``core.train.apply.RunModel``)."""

    def __init__(self, model: RunModel) -> None:
        if model.probe:
            raise DataError(
                "this run is a linear probe on frozen backbone features: its attributions would explain the head, not the "
                "item. Explain a run that fine-tunes the whole model (finetune full or last_n)."
            )
        self.model = model
        self.modality = model.ds.modality
        self.net = model.built.net.eval()
        for p in self.net.parameters():
            p.requires_grad_(False)  # gradients flow to the inputs only
        self.classes = [int(c) for c in model.classes]
        self._baseline_row: torch.Tensor | None = None

    # -- classes
    def position(self, cls: int) -> int | None:
        """The model's output for dataset class ``cls``; None when the run never learnt it."""
        return self.classes.index(int(cls)) if int(cls) in self.classes else None

    # -- forward functions
    def _logits(self, x: Any) -> torch.Tensor:
        if self.modality == "image":
            return self.net(self.model.built.image.prepare_float(x))
        return self.net(x)

    def _probs(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self._logits(x).float(), dim=1)

    def image(self, i: int) -> torch.Tensor:
        from core.models.preprocess import to_nchw

        return to_nchw(np.asarray(self.model.ds.items[i : i + 1], dtype=np.uint8)).float().div_(255.0).to(self.model.device)

    def row(self, i: int) -> torch.Tensor:
        return torch.from_numpy(self.model.encoder.transform(self.model.ds.items.iloc[[i]])).to(self.model.device)

    def baseline_row(self) -> torch.Tensor:
        """The train split's mean encoded row: a column "set to typical"."""
        if self._baseline_row is None:
            train = self.model.ds.items.iloc[np.flatnonzero(self.model.ds.split == 0)]
            enc = self.model.encoder.transform(train)
            self._baseline_row = torch.from_numpy(enc.mean(axis=0, keepdims=True).astype(np.float32)).to(self.model.device)
        return self._baseline_row

    def column_mask(self) -> tuple[torch.Tensor, list[str]]:
        """Each encoded column's source column (a (1, d) group index) and the source columns' names."""
        enc = self.model.encoder
        groups: list[int] = []
        names: list[str] = []
        for c, *_ in enc.numeric:
            groups.append(len(names))
            names.append(c)
        for c, cats, has_missing in enc.categorical:
            groups += [len(names)] * (len(cats) + int(has_missing))
            names.append(c)
        return torch.tensor([groups], dtype=torch.long, device=self.model.device), names

    def probabilities(self, i: int) -> np.ndarray:
        """The model's class probabilities (K,) on item ``i`` of the run's dataset."""
        if self.modality == "text":
            return self.text_probs([str(self.model.ds.items[i])])[0]
        x = self.image(i) if self.modality == "image" else self.row(i)
        with torch.no_grad():
            return self._probs(x)[0].cpu().numpy()

    def image_probs(self, x: torch.Tensor, *, batch: int = 128) -> np.ndarray:
        with torch.no_grad():
            return torch.cat([self._probs(x[s : s + batch]) for s in range(0, len(x), batch)]).cpu().numpy()

    def row_probs(self, x: torch.Tensor) -> np.ndarray:
        with torch.no_grad():
            return self._probs(x).cpu().numpy()

    def text_probs(self, texts: list[str], *, batch: int = 32) -> np.ndarray:
        from core.models.preprocess import tokenise

        out = []
        tok = tokenise(texts, self.model.built.tokenizer, self.model.cfg.max_length)
        with torch.no_grad():
            for s in range(0, len(texts), batch):
                rows = np.arange(s, min(s + batch, len(texts)))
                out.append(torch.softmax(self.net(tok.batch(rows, self.model.device)).float(), dim=1))
        return torch.cat(out).cpu().numpy()

    # -- text
    def encode(self, text: str) -> tuple[dict[str, torch.Tensor], list[int | None], list[tuple[int, int]]]:
        """The text's model inputs as the run makes them, each token's word, and each word's span."""
        tokenizer = self.model.built.tokenizer
        enc = tokenizer(text, truncation=True, max_length=self.model.cfg.max_length, return_offsets_mapping=True)
        ids = torch.tensor([enc["input_ids"]], device=self.model.device)
        batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
        if "token_type_ids" in getattr(tokenizer, "model_input_names", ()):
            batch["token_type_ids"] = torch.zeros_like(ids)
        word_ids = enc.word_ids()
        spans: dict[int, tuple[int, int]] = {}
        for w, (a, b) in zip(word_ids, enc["offset_mapping"]):
            if w is not None:
                lo, hi = spans.get(w, (a, b))
                spans[w] = (min(lo, a), max(hi, b))
        return batch, word_ids, [spans[w] for w in sorted(spans)]

    def _text_attribution(self, text: str, pos: int, method: str) -> tuple[np.ndarray, list[tuple[int, int]], float | None]:
        from captum.attr import LayerGradientXActivation, LayerIntegratedGradients

        batch, word_ids, spans = self.encode(text)
        layer = self.net.model.get_input_embeddings()
        ids, rest = batch["input_ids"], tuple(v for k, v in batch.items() if k != "input_ids")
        names = [k for k in batch if k != "input_ids"]

        def forward(input_ids: torch.Tensor, *args: torch.Tensor) -> torch.Tensor:
            return self.net({"input_ids": input_ids, **dict(zip(names, args))})

        delta: float | None = None
        if method == "integrated_gradients":
            special = torch.tensor([w is None for w in word_ids], device=ids.device)
            pad = self.model.built.tokenizer.pad_token_id or 0
            base = torch.where(special[None, :], ids, torch.full_like(ids, pad))
            attr, d = LayerIntegratedGradients(forward, layer).attribute(
                ids, baselines=base, target=pos, additional_forward_args=rest, n_steps=IG_STEPS, internal_batch_size=IG_STEPS,
                return_convergence_delta=True,
            )  # fmt: skip
            per_token = attr[0].sum(dim=-1).detach().cpu().numpy()
            delta = float(d.abs().max())
        else:
            grad = LayerGradientXActivation(forward, layer, multiply_by_inputs=False).attribute(
                ids, target=pos, additional_forward_args=rest
            )
            per_token = grad[0].norm(dim=-1).detach().cpu().numpy()
        values = np.zeros(len(spans), np.float64)
        for t, w in enumerate(word_ids):
            if w is not None:
                values[w] += per_token[t]
        return values, spans, delta

    # -- one item
    def attribute(self, i: int, cls: int, method: str) -> Attribution:
        """Item ``i``'s attribution for dataset class ``cls`` by ``method`` (``METHODS``)."""
        if method not in METHODS[self.modality]:
            raise DataError(f"{method!r} does not explain {self.modality} items; pick one of {', '.join(METHODS[self.modality])}.")
        pos = self.position(cls)
        if pos is None:
            raise DataError(
                f"the model never learnt class {self.model.ds.class_names[cls]!r} (no train items): nothing to attribute to it."
            )
        t0 = time.perf_counter()
        probs = self.probabilities(i)
        parts: list[str] = []
        spans: list[tuple[int, int]] = []
        delta: float | None = None
        if self.modality == "text":
            text = str(self.model.ds.items[i])
            values, spans, delta = self._text_attribution(text, pos, method)
            parts = [text[a:b] for a, b in spans]
        elif self.modality == "image":
            x = self.image(i)
            if method == "integrated_gradients":
                raw, delta = integrated_gradients(self._logits, x, torch.zeros_like(x), pos)
            elif method == "occlusion":
                window = max(2, round(min(x.shape[-2:]) / 7))
                raw = occlusion(self._probs, x, pos, window=window, stride=max(1, window // 2))
            else:
                raw = gradients(self._logits, x, pos)
            values = raw.sum(axis=0)
        else:
            x = self.row(i)
            mask, parts = self.column_mask()
            if method == "feature_ablation":
                raw = ablation(self._probs, x, self.baseline_row(), mask, pos)
                first = [int(np.flatnonzero(mask[0].cpu().numpy() == g)[0]) for g in range(len(parts))]
                values = raw[first]  # the same value on every encoded column of a group
            else:
                if method == "integrated_gradients":
                    raw, delta = integrated_gradients(self._logits, x, self.baseline_row(), pos)
                else:
                    raw = gradients(self._logits, x, pos)
                values = np.bincount(mask[0].cpu().numpy(), weights=raw, minlength=len(parts))
        return Attribution(
            i, int(cls), method, np.asarray(values, np.float64), parts, float(probs[pos]), delta, time.perf_counter() - t0, spans
        )

    # -- faithfulness
    def deletion(self, attr: Attribution, order: np.ndarray) -> np.ndarray:
        """``attr``'s class probability as the parts in ``order`` are removed first
        (``core.explain.faithfulness``): pixels blacked out, words deleted, columns set to the
        train mean."""
        from core.explain.faithfulness import deletion_curve

        pos = self.position(attr.target)
        assert pos is not None
        i = attr.item

        def score(removed: list[np.ndarray]) -> np.ndarray:
            if self.modality == "text":
                text = str(self.model.ds.items[i])
                return self.text_probs([without_words(text, attr.spans, r) for r in removed])[:, pos]
            if self.modality == "image":
                x = self.image(i)
                xs = x.repeat(len(removed), 1, 1, 1).flatten(2)
                for j, r in enumerate(removed):
                    xs[j, :, torch.from_numpy(r)] = 0.0
                return self.image_probs(xs.view(len(removed), *x.shape[1:]))[:, pos]
            x, base = self.row(i), self.baseline_row()
            groups = self.column_mask()[0][0].cpu().numpy()
            xs = x.repeat(len(removed), 1)
            for j, r in enumerate(removed):
                cols = torch.from_numpy(np.flatnonzero(np.isin(groups, r)))
                xs[j, cols] = base[0, cols]
            return self.row_probs(xs)[:, pos]

        return deletion_curve(score, order)
