"""The one redaction module: what counts as a secret, and what must stay readable."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from joulelens.errors import EngineError
from joulelens.redact import REDACTED, Redactor, redact, redact_argv, strip_userinfo

ENV = {"MY_DB_PASS": "hunter2-swordfish", "TOKENIZERS_PARALLELISM": "false", "HOME": "/root"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "vllm serve m --api-key s3cret-value --port 8000",
            "vllm serve m --api-key *** --port 8000",
        ),
        ("--hf-token=abc123def", "--hf-token=***"),
        ("GET http://bob:pa55@host:8000/v1", "GET http://***@host:8000/v1"),
        ("Authorization: Bearer abc.def-ghi", "Authorization: Bearer ***"),
        (
            "args: {'api_key': ['plain-secret'], 'max_tokens': 256}",
            "args: {'api_key': ['***'], 'max_tokens': 256}",
        ),
        ("HF_TOKEN=hf_AbCdEfGh12345678", "HF_TOKEN=***"),
        ("key sk-proj-ABCDEFGHIJKLMNOPQRSTUV here", "key *** here"),
        ("db pass is hunter2-swordfish, really", "db pass is ***, really"),  # env value
        # An --api-key value that reappears elsewhere is removed there too.
        (
            "--api-key zq9-plain started; client zq9-plain connected",
            "--api-key *** started; client *** connected",
        ),
        # Not secrets.
        (
            "--max-num-batched-tokens 8192 --tokenizer t",
            "--max-num-batched-tokens 8192 --tokenizer t",
        ),
        ("energy_per_token_joules=0.2 max_tokens=5", "energy_per_token_joules=0.2 max_tokens=5"),
        ("HF_HUB_ENABLE_hf_transfer=1", "HF_HUB_ENABLE_hf_transfer=1"),
        ("TOKENIZERS_PARALLELISM is false", "TOKENIZERS_PARALLELISM is false"),
    ],
)
def test_redact(text: str, expected: str) -> None:
    assert redact(text, ENV) == expected


def test_argv_and_records() -> None:
    argv = ["vllm", "serve", "m", "--api-key", "abcdef", "--hf-token=xyz123", "--port", "1"]
    assert redact_argv(argv, {}) == [*argv[:4], REDACTED, "--hf-token=***", "--port", "1"]
    doc = {
        "config": {"run": {"vllm_args": ["--api-key", "v4lue-1"], "api_key_env": "OPENAI_API_KEY"}},
        "failure_reason": "server printed v4lue-1",
        "extra": {"api_key": "v4lue-2", "n": 3},
    }
    clean = Redactor({}).value(doc)
    assert "v4lue" not in json.dumps(clean)
    assert clean["config"]["run"]["api_key_env"] == "OPENAI_API_KEY"  # a name, not a secret
    untouched = {"a": [1.0, 2.0], "b": "plain text"}
    assert Redactor({}).value(untouched) is untouched


def test_error_messages_are_redacted() -> None:
    assert "pa55" not in str(EngineError("cannot reach http://bob:pa55@host/v1"))


def test_strip_userinfo() -> None:
    assert strip_userinfo("http://u:p%40ss@[::1]:8000/v1") == ("http://[::1]:8000/v1", "u", "p@ss")
    assert strip_userinfo("https://host/v1") == ("https://host/v1", None, None)


pieces = st.sampled_from(
    [
        "--api-key ", "--api-key=", "api_key: ", "hf_", "AbCdEfGh1234", "http://", "u:p@",
        "host", "Bearer ", "energy_per_token_joules", "max_tokens=", "hunter2-swordfish",
        " ", '"', ",", "=", "sk-", "ABCDEFGHIJKLMNOPQRSTUV", "token", "key", "secret",
    ]
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(parts=st.lists(pieces, max_size=8), extra=st.text(max_size=20))
def test_the_screen_never_misses_what_redaction_would_remove(parts: list[str], extra: str) -> None:
    """``suspects`` lets the store skip the slow path; it must hold whenever redaction acts."""
    redactor = Redactor(ENV)
    doc = {"note": "".join(parts) + extra, "args": parts}
    text = json.dumps(doc, indent=1)
    if redactor.value(doc) != doc:
        assert redactor.suspects(text)
