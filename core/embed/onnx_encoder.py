"""A text encoder run by ONNX Runtime on the CPU: the same fp32 numbers as torch, in less time.

``int8=True`` also quantises the graph's matrix products (ONNX Runtime's dynamic quantisation, int8
weights per output channel): the ``"onnx-int8"`` text method, other vectors, faster still.

On a 2-core CPU, torch's eager BERT spends much of its time between kernels; ONNX Runtime runs the
same graph with its operators fused (attention, layer norm, GELU) and without Python between
them. ``benchmarks/RESULTS.md`` (*Text embedding speed*) measures it against torch and
sentence-transformers on the same texts.

``session(source)`` exports the encoder of a local transformers folder once — torch's ONNX
exporter (``dynamo=False``) with eager attention, so the graph takes any batch and length —
and keeps it (``cache_dir``), keyed by the folder's weights (name, size and
modification time of each file) and the versions of torch, onnx and ONNX Runtime. Before the file is used it
is checked on a few texts against torch: every vector must agree to ``AGREEMENT`` (cosine);
a model that does not export, or disagrees, is remembered as such (a ``.failed`` note beside
it) and embedded by torch instead; one that agrees gets a ``.json`` note (vector size, longest
input), so later processes skip the check and never load the torch model. Nothing here downloads
anything.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from core import paths
from core.atomic import atomic_write_json

VERSION = 1  # bump when the export changes
AGREEMENT = 0.9999  # least cosine between torch's and ONNX Runtime's vector for the same text
# the int8 graph's check only catches a broken export: how close its vectors are is measured in
# benchmarks/RESULTS.md (mean cosine 0.991 on 800 VADER texts)
INT8_AGREEMENT = 0.95
PROBES = (
    "a short text",
    "The weather was fine, but the film itself was slow, drab and far too long for its story.",
    "!!!",
    "Ünïcödé and numbers 1234 in one line, with punctuation; and more words after it.",
)
_LOCK = threading.Lock()


def available() -> bool:
    """ONNX Runtime and the exporter's ``onnx`` package are installed."""
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def cache_dir(source: str | None = None) -> Path:
    """Where the export of ``source`` is kept: beside the verified weights it is made from
    (``GAPSCOPE_ASSETS/onnx``: one export serves every home) when ``source`` is one of the project's
    assets and that folder can be written; else under ``GAPSCOPE_HOME/cache/onnx`` (a user's own
    model folder, or read-only assets)."""
    assets = paths.assets_dir()
    shared = assets / "onnx"
    ours = source is None or Path(source).resolve().is_relative_to(assets.resolve())
    if ours and os.access(shared if shared.exists() else assets, os.W_OK):
        return shared
    return paths.home() / "cache" / "onnx"


def _folder_id(source: str) -> str:
    return hashlib.sha256(str(Path(source).resolve()).encode()).hexdigest()[:10]


def _fingerprint(source: str) -> str:
    """``<folder>-<contents>``: the folder, then what the exported graph depends on (the folder's
    files by name, size and time; the versions of torch, onnx and ONNX Runtime)."""
    import onnx
    import onnxruntime
    import torch

    folder = Path(source)
    files = sorted(p for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else []
    stats = [(str(p.relative_to(folder)), p.stat().st_size, int(p.stat().st_mtime)) for p in files]
    versions = [torch.__version__, onnx.__version__, onnxruntime.__version__]
    blob = json.dumps([VERSION, str(folder.resolve()), stats, versions], sort_keys=True)
    return f"{_folder_id(source)}-{hashlib.sha256(blob.encode()).hexdigest()[:16]}"


def model_path(source: str) -> Path:
    return cache_dir(source) / f"{_fingerprint(source)}.onnx"


def _drop_older(path: Path, source: str) -> None:
    """Remove the exports of ``source`` that an earlier version of its weights or of the libraries
    made (they would never be read again)."""
    for old in path.parent.glob(f"{_folder_id(source)}-*"):
        if not old.name.startswith(path.stem.split(".")[0]):
            old.unlink(missing_ok=True)


def _wrapper(model: Any, with_types: bool) -> Any:
    """``forward(input_ids, attention_mask[, token_type_ids]) → last_hidden_state``, for the exporter."""
    import torch

    class Encoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any = None) -> Any:
            extra = {"token_type_ids": token_type_ids} if with_types else {}
            return self.model(input_ids=input_ids, attention_mask=attention_mask, **extra).last_hidden_state

    return Encoder().eval()


def _inputs(model: Any) -> list[str]:
    names = ["input_ids", "attention_mask"]
    if int(getattr(model.config, "type_vocab_size", 0) or 0) > 0:
        names.append("token_type_ids")
    return names


def export(source: str, target: Path) -> None:
    """Write the encoder of ``source`` as an ONNX graph to ``target`` (atomically)."""
    import copy
    import warnings

    import torch

    from core.models.text import load_encoder

    tokenizer, cached = load_encoder(source)
    model: Any = copy.deepcopy(cached)  # the cached encoder keeps its own attention setting
    if hasattr(model, "set_attn_implementation"):
        model.set_attn_implementation("eager")  # SDPA's traced mask handling fixes shapes at export time
    names = _inputs(model)
    enc = tokenizer(list(PROBES[:2]), padding=True, return_tensors="pt")
    args = tuple(enc[n] if n in enc else torch.zeros_like(enc["input_ids"]) for n in names)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(f".{os.getpid()}.tmp")
    axes = {n: {0: "batch", 1: "tokens"} for n in [*names, "last_hidden_state"]}
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer notices
        torch.onnx.export(
            _wrapper(model, "token_type_ids" in names), args, str(tmp), dynamo=False, input_names=names,
            output_names=["last_hidden_state"], dynamic_axes=axes, opset_version=17,
        )  # fmt: skip
    os.replace(tmp, target)


@dataclass(frozen=True)
class Encoder:
    """An exported encoder: its ONNX Runtime session, vector size and longest input (0: unknown)."""

    session: Any
    dim: int
    max_positions: int

    def hidden(self, inputs: dict[str, Any]) -> np.ndarray:
        return hidden(self.session, inputs)


def _new_session(path: Path) -> Any:
    import onnxruntime as ort
    import torch

    options = ort.SessionOptions()
    options.intra_op_num_threads = max(1, torch.get_num_threads())  # the cores torch would use
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # errors only
    # no busy-waiting between operators: on a shared machine spinning threads take cores from
    # everyone, this pass included (torch runs with OMP_WAIT_POLICY=PASSIVE for the same reason)
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def hidden(sess: Any, inputs: dict[str, Any]) -> np.ndarray:
    """The last hidden state (batch, tokens, d) for ``inputs`` (torch tensors or arrays, int64)."""
    feed = {}
    for i in sess.get_inputs():
        value = inputs.get(i.name)
        if value is None:  # a model with token types, given none: all zeros, as torch does
            value = np.zeros_like(np.asarray(inputs["input_ids"]))
        feed[i.name] = np.asarray(value, dtype=np.int64)
    return np.asarray(sess.run(None, feed)[0], dtype=np.float32)


def _agrees(sess: Any, source: str, least: float = AGREEMENT) -> bool:
    """The ONNX vectors of ``PROBES`` agree with torch's fp32 ones to ``least`` (mean-pooled, cosine)."""
    import torch

    from core.models.text import load_encoder

    tokenizer, model = load_encoder(source)
    enc = tokenizer(list(PROBES), padding=True, return_tensors="pt")
    with torch.inference_mode():
        ref = model(**enc).last_hidden_state.float().numpy()
    got = hidden(sess, {k: v.numpy() for k, v in enc.items()})
    mask = enc["attention_mask"].numpy()[..., None].astype(np.float32)
    a, b = (ref * mask).sum(1), (got * mask).sum(1)
    cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    return bool(np.all(cos >= least))


def quantise(fp32: Path, target: Path) -> None:
    """ONNX Runtime's dynamic quantisation of ``fp32``'s matrix products: int8 weights per output
    channel, activations quantised per batch; written atomically to ``target``."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    tmp = target.with_name(f"{target.stem}.{os.getpid()}.tmp.onnx")
    quantize_dynamic(str(fp32), str(tmp), op_types_to_quantize=["MatMul"], per_channel=True, weight_type=QuantType.QInt8)
    os.replace(tmp, target)


@lru_cache(maxsize=4)
def _session_for(path_str: str, source: str, int8: bool = False) -> Encoder | None:
    fp32 = Path(path_str)
    path = fp32.with_suffix(".int8.onnx") if int8 else fp32
    failed, facts = path.with_suffix(".failed"), path.with_suffix(".json")
    if failed.exists():
        return None
    try:
        if not fp32.exists():
            export(source, fp32)
            _drop_older(fp32, source)
        if int8 and not path.exists():
            quantise(fp32, path)
        sess = _new_session(path)
        if facts.exists():  # checked against torch when it was written
            return Encoder(sess, **json.loads(facts.read_text()))
        if _agrees(sess, source, INT8_AGREEMENT if int8 else AGREEMENT):
            from core.models.text import load_encoder

            config: Any = load_encoder(source)[1].config
            known = {"dim": int(config.hidden_size), "max_positions": int(getattr(config, "max_position_embeddings", 0) or 0)}
            atomic_write_json(facts, known)
            return Encoder(sess, **known)
        reason = f"vectors differ from torch's (cosine below {INT8_AGREEMENT if int8 else AGREEMENT})"
    except Exception as err:  # an architecture the exporter or the runtime does not take
        reason = f"{type(err).__name__}: {str(err).splitlines()[0][:300] if str(err) else ''}"
    failed.parent.mkdir(parents=True, exist_ok=True)
    failed.write_text(reason + "\n")
    return None


def session(source: str, *, int8: bool = False) -> Encoder | None:
    """The encoder of ``source`` run by ONNX Runtime (``int8``: its matrix products quantised), or
    None when ONNX Runtime is not installed or this model does not export faithfully."""
    if not available():
        return None
    with _LOCK:
        return _session_for(str(model_path(source)), source, int8)
