"""Rough estimates made before a run starts: its step plan and time (shown on the Train page, never
used for decisions) and the disk it needs (a run that cannot fit is refused at submit).

``step_plan`` says what the worker will do (``core.train.worker.plan``): the batch (``speed``'s
automatic one when the config says 0), the learning rate scaled with it, steps per epoch as the
worker's batches come out (a one-item last batch dropped; on the GPU fast path every short one),
steps and evaluations in all.

Throughputs are the registry's training samples per second, measured on a 2-core CPU
(``benchmarks/bench_train.py``), scaled by a fixed factor on a GPU. Evaluation passes
are counted at three times the training speed (no backward pass). Torch-free.

A token (NER) dataset trains a text encoder (``core.tokens.train``): its items are sentences, its
batch when the config says 0 is ``TOKEN_BATCH`` (no square-root scaling of the learning rate, no
fixed shapes), and an epoch draws what the sentence sampler and the token augmentation's copies
make of the train sentences (``core.mitigate.preview.token_epoch``). The rate is the text model's
registry figure (MiniLM full fine-tune 40 samples/s; CoNLL-2003's shorter sentences measured about
69 per second at batch 32 on 2 idle cores, fewer under load: the figure stays on the safe side).
"""

from __future__ import annotations

from dataclasses import dataclass

from core.data.dataset import SPLITS, Dataset
from core.models import registry
from core.train.config import RunConfig
from core.train.speed import planned_batch, scaled_lr

GPU_SPEEDUP = 25.0
TOKEN_BATCH = {False: 32, True: 64}  # sentences per batch when the config says 0, without / with a GPU (core.tokens.train)
STARTUP_S = 8.0  # process start, imports, model load
DEFAULT_SAMPLES_PER_S = 40.0  # a model the registry has no figure for


def samples_per_second(model: str, finetune: str, *, gpu: bool) -> float:
    rate = registry.spec(model).throughput(finetune) or DEFAULT_SAMPLES_PER_S
    return rate * (GPU_SPEEDUP if gpu else 1.0)


def steps_per_epoch(n_items: int, batch: int, *, drop_last: bool = False) -> int:
    """How many batches an epoch of ``n_items`` draws cuts into (``core.train.inputs.make_batches``):
    a last batch of a single item is dropped (unless it is the only one), and with ``drop_last``
    (fixed shapes) every batch shorter than ``batch``, unless none is full."""
    if n_items <= 0:
        return 0
    batch = max(1, int(batch))
    k = -(-n_items // batch)
    last = n_items - (k - 1) * batch
    if k > 1 and last < 2:
        k, last = k - 1, batch
    full = k if last == batch else k - 1
    return full if drop_last and full else k


def evaluations(cfg: RunConfig, n_train: int, batch: int, *, drop_last: bool = False) -> int:
    """How many evaluations a run of ``cfg`` makes (``core.train.callbacks.Cadence``): one per
    epoch, or one every ``eval_every_steps`` steps and one at the last step."""
    if not cfg.eval_every_steps:
        return cfg.epochs
    total = steps_per_epoch(n_train, batch, drop_last=drop_last) * cfg.epochs
    return max(1, -(-total // cfg.eval_every_steps))


def runs_on_gpu(device: str, gpus: int) -> bool:
    """Whether a run asking for ``device`` trains on a GPU where ``gpus`` are visible."""
    return gpus > 0 and device in ("auto", "cuda")


@dataclass(frozen=True)
class StepPlan:
    """What a run will do, said before it starts (the Train page)."""

    n_train: int  # train items of the version
    n_used: int  # of which the run trains on (``max_train_items``)
    splits: dict[str, int]  # items per split (train, val, test)
    batch: int  # the batch it trains with
    auto_batch: bool  # chosen by ``core.train.speed`` (the config said 0)
    lr: float  # the peak learning rate (scaled with an automatic batch)
    steps_per_epoch: int
    steps: int  # in all
    evaluations: int
    epoch_items: int = 0  # items one epoch draws (0: ``n_used``); a token run's sentences and augmented copies


def model_modality(ds: Dataset) -> str:
    """The modality whose models train on ``ds``: a token dataset trains a text encoder."""
    return "text" if ds.modality == "tokens" else ds.modality


def token_epoch_items(cfg: RunConfig, ds: Dataset, n_used: int) -> int:
    """Sentences one epoch of a token run draws from ``n_used`` train sentences: the sampler's
    draws and the token augmentation's copies (expected)."""
    from core.mitigate.preview import token_epoch, token_train

    t = token_train(ds)
    n_train = max(1, len(t.labels))
    return round(token_epoch(cfg.mitigations, t).sentences * n_used / n_train)


def step_plan(cfg: RunConfig, ds: Dataset, *, gpu: bool, epoch_items: int | None = None) -> StepPlan:
    """The step plan of ``cfg`` on ``ds``: on a GPU (``gpu``) with the fast path (``fast_path``
    auto or on) the last, short batch of each epoch is dropped. ``epoch_items``: the items one
    epoch draws, when the caller knows them (a token run's sentences and copies; computed here
    when not given)."""
    splits = {name: int((ds.split == i).sum()) for i, name in enumerate(SPLITS)}
    n_train = splits[SPLITS[0]]
    n_used = min(n_train, cfg.max_train_items) if cfg.max_train_items else n_train
    if ds.modality == "tokens":
        return _token_plan(cfg, ds, splits, n_used, gpu=gpu, epoch_items=epoch_items)
    image_px = int(min(ds.items.shape[1:3])) if ds.modality == "image" else None
    batch = planned_batch(cfg.batch_size, modality=ds.modality, finetune=cfg.finetune, gpu=gpu, n_train=n_used, image_side=image_px)
    lr = cfg.learning_rate(ds.modality, image_px=image_px)
    drop_last = cfg.fast_path == "on" or (cfg.fast_path == "auto" and gpu)
    per_epoch = steps_per_epoch(n_used, batch, drop_last=drop_last)
    return StepPlan(
        n_train=n_train,
        n_used=n_used,
        splits=splits,
        batch=batch,
        auto_batch=not cfg.batch_size,
        lr=lr if cfg.batch_size else scaled_lr(lr, batch),
        steps_per_epoch=per_epoch,
        steps=per_epoch * cfg.epochs,
        evaluations=evaluations(cfg, n_used, batch, drop_last=drop_last),
    )


def _token_plan(cfg: RunConfig, ds: Dataset, splits: dict[str, int], n_used: int, *, gpu: bool, epoch_items: int | None) -> StepPlan:
    batch = cfg.batch_size or TOKEN_BATCH[gpu]
    per_epoch_items = token_epoch_items(cfg, ds, n_used) if epoch_items is None else epoch_items
    per_epoch = steps_per_epoch(per_epoch_items, batch)
    evals = cfg.epochs if not cfg.eval_every_steps else max(1, -(-per_epoch * cfg.epochs // cfg.eval_every_steps))
    return StepPlan(
        n_train=splits[SPLITS[0]],
        n_used=n_used,
        splits=splits,
        batch=batch,
        auto_batch=not cfg.batch_size,
        lr=cfg.learning_rate("tokens"),
        steps_per_epoch=per_epoch,
        steps=per_epoch * cfg.epochs,
        evaluations=evals,
        epoch_items=per_epoch_items,
    )


def estimate_seconds(cfg: RunConfig, ds: Dataset, *, gpu: bool = False, epoch_items: int | None = None) -> float:
    """Seconds for ``cfg`` on ``ds``: start-up + epochs × train items (a token run: the sentences
    an epoch draws, ``epoch_items`` when known) / rate + evaluations."""
    n_train = int((ds.split == 0).sum())
    if cfg.max_train_items:
        n_train = min(n_train, cfg.max_train_items)
    n_eval = int((ds.split != 0).sum())
    if ds.modality == "tokens":
        rate = samples_per_second(cfg.resolve_model("text"), cfg.finetune, gpu=gpu)
        plan = step_plan(cfg, ds, gpu=gpu, epoch_items=epoch_items)
        return STARTUP_S + cfg.epochs * plan.epoch_items / rate + plan.evaluations * n_eval / (3 * rate)
    image_px = int(min(ds.items.shape[1:3])) if ds.modality == "image" else None
    model = cfg.resolve_model(ds.modality, image_px=image_px)
    rate = samples_per_second(model, cfg.finetune, gpu=gpu)
    batch = planned_batch(cfg.batch_size, modality=ds.modality, finetune=cfg.finetune, gpu=gpu, n_train=n_train, image_side=image_px)
    evals = evaluations(cfg, n_train, batch)
    if cfg.finetune == "linear_probe":  # one feature pass over everything (cached afterwards), then a cheap head
        return STARTUP_S + (n_train + n_eval) / rate + cfg.epochs * n_train / 50_000
    return STARTUP_S + cfg.epochs * n_train / rate + evals * n_eval / (3 * rate)


#: What a run writes besides its checkpoints and predictions: the log, evaluation artifacts, summary (bytes).
RUN_FILES_BYTES = 4 * 2**20
#: One prediction row in SQLite (run, step, split, item, label, pred, conf) with its index share.
PREDICTION_ROW_BYTES = 64
WORDS_PER_SENTENCE = 30  # a generous mean for a token dataset's disk estimate (CoNLL-2003 has 14)


def disk_bytes(cfg: RunConfig, *, modality: str, n_train: int, n_test: int, n_classes: int) -> int:
    """About how many bytes a run of ``cfg`` needs on disk: three checkpoints (``best.pt``,
    ``last.pt`` and the temporary file an atomic write makes) and, at each evaluation (and the
    temperature-scaled and threshold-moved ones), a prediction row and the held-out probabilities
    of every test item, plus the run's other files. "auto" counts as the larger of its choices."""
    tokens = modality == "tokens"
    if tokens:
        modality = "text"
    if cfg.model == registry.AUTO:
        models = {registry.resolve_auto(modality, image_px=px) for px in (0, 28)}
    else:
        models = {cfg.model}
    weights = max(registry.weights_bytes(m) for m in models)
    if cfg.max_train_items:
        n_train = min(n_train, cfg.max_train_items)
    batch = planned_batch(cfg.batch_size, modality=modality, finetune=cfg.finetune, gpu=False, n_train=n_train, image_side=None)
    evals = evaluations(cfg, n_train, batch) + 2
    per_item = PREDICTION_ROW_BYTES + 4 * n_classes
    if tokens:  # each evaluation's word probabilities of the val and test sentences (float16, one per tag: 2 per type + O)
        per_item += 2 * WORDS_PER_SENTENCE * 2 * (2 * n_classes - 1)
    return 3 * weights + evals * n_test * per_item + RUN_FILES_BYTES
