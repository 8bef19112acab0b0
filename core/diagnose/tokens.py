"""The diagnosis of a token (NER) dataset version: which sentences hold wrong tags, where, and what
they should be — from word vectors to suspects in one call, cached, and in the background.

``diagnose_tokens(ds)`` judges **every split** (a wrong tag in test misleads a score as much as one
in train misleads the model, as the classification diagnosis judges every item) in three stages:

1. word vectors from the frozen MiniLM encoder (``core.tokens.embed.word_embeddings``, cached by
   the sentences' tokens, so a relabelled version embeds nothing again);
2. out-of-fold tag probabilities from the probe, folds by sentence
   (``core.tokens.detect.token_features`` and ``out_of_fold_token_probs``);
3. scores, flags, suspect tokens and suggested tags (``core.tokens.detect.detect_token_issues``).

The result is cached in ``GAPSCOPE_HOME/cache/diagnosis/tokens-<key>.npz`` (arrays, and the flagged
sentences as JSON; no pickle), the key a sha256 over ``TOKEN_DIAGNOSIS_VERSION``, the settings, the
word vectors' key (encoder and every sentence's tokens), the tags and the split: a second look at
the same version, in any process, loads it. ``TokenDiagnosisJob`` runs it in a thread of the app;
pages poll ``status``. Importing this module imports neither torch nor streamlit.
"""

from __future__ import annotations

import hashlib
import json
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core import paths
from core.atomic import atomic_write
from core.data.dataset import Dataset
from core.diagnose.progressive import eta_words
from core.errors import DataError
from core.tokens import detect, embed
from core.tokens.detect import SentenceIssue, TokenIssues
from core.tokens.spans import entity_types, tag_names

TOKEN_DIAGNOSIS_VERSION = 2  # bump when what the diagnosis computes changes
Progress = Callable[[str, float], None]  # (stage description, overall fraction 0..1)
# rough seconds on a 2-core machine (a 200-sentence CoNLL-2003 slice, 3.7k words: 5.5 s embedding
# with the encoder's load, 2.4 s probe); the page says them in words, as estimates
STARTUP_S = 4.0  # loading the tokenizer and the encoder
EMBED_PER_WORD_S = 6e-4
PROBE_S = 1.0
PROBE_PER_WORD_S = 4e-4
# the share of the progress bar each stage fills
EMBED_SHARE, PROBE_SHARE = 0.6, 0.35


@dataclass(frozen=True)
class TokenDiagnoseConfig:
    n_folds: int = detect.N_FOLDS  # folds of the out-of-fold probe, by sentence
    seed: int = 0
    backbone: str = "minilm"

    def __post_init__(self) -> None:
        if self.n_folds < 2:
            raise ValueError("n_folds must be at least 2; 5 is the usual choice.")


@dataclass
class TokenDiagnosis:
    """What the Diagnose page shows of a token dataset: the detector's result over every sentence."""

    issues: TokenIssues
    seconds: dict[str, float] = field(default_factory=dict)  # wall time per stage

    @property
    def tag_names(self) -> list[str]:
        return list(self.issues.tag_names)

    @property
    def n_sentences(self) -> int:
        return len(self.issues.sentence_score)

    def issue_of(self) -> dict[int, SentenceIssue]:
        """The flagged sentences by their row."""
        return {i.sentence: i for i in self.issues.issues}

    def suspected_kinds(self) -> list[list[str]]:
        """Per sentence, what the detector's suggestion changes ([] where it is not flagged)."""
        out: list[list[str]] = [[] for _ in range(self.n_sentences)]
        for i in self.issues.issues:
            out[i.sentence] = list(i.kinds)
        return out


def _sentences(ds: Dataset) -> tuple[list[list[str]], list[list[str]]]:
    if ds.modality != "tokens" or ds.tags is None:
        raise DataError(f"{ds.name} is a {ds.modality} dataset: the token diagnosis needs sentences with tags.")
    return [list(map(str, s)) for s in ds.items], [list(map(str, t)) for t in ds.tags]


def cache_path(ds: Dataset, cfg: TokenDiagnoseConfig = TokenDiagnoseConfig()) -> Path:
    """Where the diagnosis of ``ds`` with ``cfg`` is cached (hashes every sentence: keep it)."""
    tokens, tags = _sentences(ds)
    h = hashlib.sha256()
    h.update(json.dumps({"v": TOKEN_DIAGNOSIS_VERSION, "cfg": cfg.__dict__, "split": ds.split.tolist()}).encode())
    h.update(embed.cache_key(tokens, backbone=cfg.backbone).encode())
    for t in tags:
        h.update("\x1f".join(t).encode("utf-8", "surrogatepass") + b"\x1e")
    return paths.home() / "cache" / "diagnosis" / f"tokens-{h.hexdigest()[:32]}.npz"


def is_cached(ds: Dataset, cfg: TokenDiagnoseConfig = TokenDiagnoseConfig(), *, path: Path | None = None) -> bool:
    return (path if path is not None else cache_path(ds, cfg)).exists()


def estimate_seconds(ds: Dataset, cfg: TokenDiagnoseConfig = TokenDiagnoseConfig()) -> tuple[float, float]:
    """(embedding, probe and scoring) seconds the diagnosis of ``ds`` should take here; embedding is
    0 when the sentences' word vectors are cached."""
    tokens, _ = _sentences(ds)
    n_words = sum(len(s) for s in tokens)
    cached = embed.is_cached(tokens, backbone=cfg.backbone)
    return (0.0 if cached else STARTUP_S + n_words * EMBED_PER_WORD_S), PROBE_S + n_words * PROBE_PER_WORD_S


def diagnose_tokens(
    ds: Dataset,
    cfg: TokenDiagnoseConfig = TokenDiagnoseConfig(),
    *,
    progress: Progress | None = None,
    embed_progress: Callable[[int, int], None] | None = None,
    cache: bool = True,
    path: Path | None = None,
) -> TokenDiagnosis:
    """Diagnose every sentence of token dataset ``ds`` (see the module's docstring).

    ``progress(stage, fraction)`` after each step and embedding batch; ``embed_progress(done,
    total)`` in sentences, for callers that time the embedding. ``path``: ``cache_path(ds, cfg)``
    when the caller has it. ``DataError`` when the version holds no entity or fewer sentences than
    folds."""
    report = progress or (lambda stage, frac: None)
    tokens, tags = _sentences(ds)
    if cache:
        path = path if path is not None else cache_path(ds, cfg)
        if path.exists():
            report("loaded from cache", 1.0)
            return load(path)
    names = tag_names(entity_types(tags))
    if len(names) < 2:
        raise DataError(f"{ds.name} holds no entity: every tag is O, so there is no tag to judge.")
    if len(tokens) < cfg.n_folds:
        raise DataError(f"{len(tokens)} sentences cannot be split into {cfg.n_folds} folds: lower the folds.")
    seconds: dict[str, float] = {}
    t = time.perf_counter()
    report("embedding words", 0.0)

    def on_batch(done: int, total: int) -> None:
        report(f"embedding words ({done:,} of {total:,} sentences)", EMBED_SHARE * done / max(total, 1))
        if embed_progress is not None:
            embed_progress(done, total)

    vectors = embed.word_embeddings(tokens, backbone=cfg.backbone, progress=on_batch).vectors
    seconds["embedding words"] = time.perf_counter() - t
    t = time.perf_counter()
    report("out-of-fold probe", EMBED_SHARE)
    features = detect.token_features(tokens, vectors, seed=cfg.seed)
    y, offsets = detect.encode_tags(tags, names)
    probs = detect.out_of_fold_token_probs(features, y, offsets, len(names), n_folds=cfg.n_folds, seed=cfg.seed)
    seconds["out-of-fold probe"] = time.perf_counter() - t
    t = time.perf_counter()
    report("scoring", EMBED_SHARE + PROBE_SHARE)
    issues = detect.detect_token_issues(tokens, tags, probs, names, seed=cfg.seed)
    seconds["scoring"] = time.perf_counter() - t
    result = TokenDiagnosis(issues, seconds)
    if cache and path is not None:
        try:  # a cache: a full disk costs the next look its speed, never this result
            save(path, result)
        except OSError as err:
            print(f"gapscope: token diagnosis not cached ({err})", file=sys.stderr)
    report("done", 1.0)
    return result


# ---------------------------------------------------------------------- cache (npz + json; no pickle)

_ARRAYS = ("token_score", "sentence_score", "offsets", "is_issue", "suspect", "suggested", "probs", "thresholds")


def save(path: Path, d: TokenDiagnosis) -> None:
    iss = d.issues
    meta = {
        "tag_names": iss.tag_names,
        "n_confident": iss.n_confident,
        "seconds": {**d.seconds, **{f"detector {k}": v for k, v in iss.seconds.items()}},
        "issues": [
            {"sentence": i.sentence, "score": i.score, "positions": i.positions, "suggested": i.suggested, "kinds": i.kinds}
            for i in iss.issues
        ],
    }
    arrays = {name: np.asarray(getattr(iss, name)) for name in _ARRAYS}
    arrays["probs"] = arrays["probs"].astype(np.float32)
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    atomic_write(path, lambda fh: np.savez(fh, **arrays))  # type: ignore[arg-type]  # numpy's stub: **kwds typed as the allow_pickle flag


def load(path: Path) -> TokenDiagnosis:
    with np.load(path, allow_pickle=False) as z:
        a = {k: z[k] for k in z.files}
    meta = json.loads(a.pop("meta").tobytes().decode())
    issues = [
        SentenceIssue(int(i["sentence"]), float(i["score"]), [int(p) for p in i["positions"]], list(i["suggested"]), list(i["kinds"]))
        for i in meta["issues"]
    ]
    seconds = {k: float(v) for k, v in meta["seconds"].items()}
    result = TokenIssues(
        token_score=a["token_score"],
        sentence_score=a["sentence_score"],
        offsets=a["offsets"],
        is_issue=a["is_issue"],
        issues=issues,
        suspect=a["suspect"],
        suggested=a["suggested"],
        probs=a["probs"],
        thresholds=a["thresholds"],
        tag_names=list(meta["tag_names"]),
        n_confident=int(meta["n_confident"]),
    )
    return TokenDiagnosis(result, {k: v for k, v in seconds.items() if not k.startswith("detector ")})


# ---------------------------------------------------------------------- in the background


class TokenDiagnosisJob(threading.Thread):
    """Diagnose a token dataset in the background. ``status()`` → (stage text, fraction 0..1,
    "full" while it runs, then "done" or "failed"); ``seconds_left()`` → the time it still needs
    (the embedding extrapolated from its own speed once a batch is done). A failure keeps its
    message in ``error``; the result is on disk (``cache_path``) and in ``result``."""

    def __init__(self, ds: Dataset, cfg: TokenDiagnoseConfig = TokenDiagnoseConfig()) -> None:
        super().__init__(daemon=True, name="gapscope-token-diagnosis")
        self.ds, self.cfg = ds, cfg
        self._lock = threading.Lock()
        self._stage, self._frac, self._scope = "starting", 0.0, "full"
        self.error: str | None = None
        self.result: TokenDiagnosis | None = None
        self._plan: tuple[float, float] | None = None  # predicted (embedding, probe and scoring) seconds
        self._start = time.monotonic()
        self._embedded: tuple[int, int, float] | None = None  # (done, total, seconds since start)
        self._probe_start: float | None = None

    def status(self) -> tuple[str, float, str]:
        with self._lock:
            return self._stage, self._frac, self._scope

    def seconds_left(self, now: float | None = None) -> float | None:
        """Seconds until the diagnosis is done, or None before the estimate is made / once done."""
        now = time.monotonic() if now is None else now
        with self._lock:
            if self._plan is None or self._scope in ("done", "failed"):
                return None
            embed_s, probe_s = self._plan
            if self._probe_start is not None:
                return max(0.0, probe_s - (now - self._probe_start))
            elapsed = now - self._start
            if self._embedded is not None and 0 < self._embedded[0] < self._embedded[1]:
                done, total, at = self._embedded
                return max(0.0, at * (total - done) / done - (elapsed - at)) + probe_s
            return max(0.0, embed_s - elapsed) + probe_s

    def _report(self, stage: str, frac: float) -> None:
        with self._lock:
            self._stage, self._frac = stage, float(frac)
            if stage == "out-of-fold probe":
                self._probe_start = time.monotonic()

    def _embedding(self, done: int, total: int) -> None:
        with self._lock:
            self._embedded = (done, total, time.monotonic() - self._start)

    def run(self) -> None:
        try:
            plan = estimate_seconds(self.ds, self.cfg)
            with self._lock:
                self._plan, self._start = plan, time.monotonic()
            self.result = diagnose_tokens(self.ds, self.cfg, progress=self._report, embed_progress=self._embedding)
            with self._lock:
                self._stage, self._frac, self._scope = "done", 1.0, "done"
        except Exception as err:  # shown on the page; the app keeps running
            traceback.print_exc()
            self.error = f"{type(err).__name__}: {err}"
            with self._lock:
                self._stage, self._frac, self._scope = "failed", 1.0, "failed"


def progress_words(stage: str, seconds_left: float | None) -> str:
    """The background token diagnosis's progress line: its stage and the time left."""
    left = "" if seconds_left is None else f" — {eta_words(seconds_left)} left"
    return f"Diagnosing every sentence: {stage}…{left}"


def eta(ds: Dataset, cfg: TokenDiagnoseConfig = TokenDiagnoseConfig()) -> str:
    """How long the diagnosis of ``ds`` should take here, in words ("about 40 s")."""
    return eta_words(sum(estimate_seconds(ds, cfg)))


def not_diagnosed(label: str, ds: Dataset, cfg: TokenDiagnoseConfig = TokenDiagnoseConfig()) -> str:
    """The invitation to diagnose token version ``label``."""
    tokens, _ = _sentences(ds)
    cached = embed.is_cached(tokens, backbone=cfg.backbone)
    return (
        f"**{label}** has not been diagnosed with these settings yet: {eta(ds, cfg)} on this machine for its "
        f"{len(ds):,} sentences (every split). It runs in the background — word vectors from MiniLM"
        + (" (already cached)" if cached else ", cached for the next look")
        + ", an out-of-fold probe, then the scores. You can leave this page meanwhile."
    )
