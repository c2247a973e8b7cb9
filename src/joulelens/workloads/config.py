"""What a load run sends and how: requests, arrival process, server endpoint and limits."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal
from urllib.parse import urlsplit

from joulelens.errors import InputError

ApiKind = Literal["chat", "completions"]


class UsageMode(StrEnum):
    """How much token accounting the server is asked to stream (``stream_options``).

    ``continuous`` asks for usage on every chunk (exact tokens per chunk); ``final`` only for a
    usage chunk at the end (tokens per chunk are then counted as one per non-empty delta);
    ``none`` sends no ``stream_options`` at all (servers that reject the field).
    """

    CONTINUOUS = "continuous"
    FINAL = "final"
    NONE = "none"

    def stream_options(self) -> dict[str, bool] | None:
        if self is UsageMode.CONTINUOUS:
            return {"include_usage": True, "continuous_usage_stats": True}
        if self is UsageMode.FINAL:
            return {"include_usage": True}
        return None

    def weaker(self) -> UsageMode | None:
        """The next mode to try when the server rejects this one's fields."""
        if self is UsageMode.CONTINUOUS:
            return UsageMode.FINAL
        if self is UsageMode.FINAL:
            return UsageMode.NONE
        return None


@dataclass(frozen=True, slots=True)
class LoadRequest:
    """One request: a chat (``messages``) or a completion (``prompt``) with its own extras.

    ``extra_body`` is merged over :attr:`LoadConfig.extra_body`, so per-request fields win.
    """

    api: ApiKind
    messages: Sequence[Mapping[str, Any]] | None = None
    prompt: str | Sequence[int] | None = None
    max_tokens: int | None = None
    extra_body: Mapping[str, Any] = field(default_factory=dict)
    request_id: str | None = None

    def __post_init__(self) -> None:
        if self.api == "chat" and self.messages is None:
            raise InputError("a chat request needs messages", field="messages")
        if self.api == "completions" and self.prompt is None:
            raise InputError("a completions request needs a prompt", field="prompt")
        if self.api not in ("chat", "completions"):
            raise InputError(f"unknown api {self.api!r}", field="api")

    @classmethod
    def chat(cls, content: str, **kwargs: Any) -> LoadRequest:
        """A single-turn chat request with ``content`` as the user message."""
        return cls("chat", messages=({"role": "user", "content": content},), **kwargs)

    @classmethod
    def completion(cls, prompt: str | Sequence[int], **kwargs: Any) -> LoadRequest:
        return cls("completions", prompt=prompt, **kwargs)

    def body(
        self, model: str | None, shared_extra: Mapping[str, Any], usage: UsageMode
    ) -> dict[str, Any]:
        """The JSON body; ``stream`` and ``stream_options`` are always ours to set."""
        body: dict[str, Any] = {}
        if model is not None:
            body["model"] = model
        if self.api == "chat":
            body["messages"] = list(self.messages or ())
        else:
            body["prompt"] = (
                self.prompt if isinstance(self.prompt, str) else list(self.prompt or ())
            )
        if self.max_tokens is not None:
            body["max_tokens"] = self.max_tokens
        body.update(shared_extra)
        body.update(self.extra_body)
        body["stream"] = True
        options = usage.stream_options()
        if options is None:
            body.pop("stream_options", None)
        else:
            body["stream_options"] = options
        return body


@dataclass(frozen=True, slots=True)
class ArrivalConfig:
    """When requests are sent: all at t=0 (``rate_per_s=None``, the paper's saturation mode)
    or a renewal process with mean rate ``rate_per_s``.

    Inter-arrival gaps are gamma distributed with coefficient of variation ``cv``: ``cv=1``
    is Poisson, ``cv>1`` burstier, ``cv<1`` more regular (vLLM's ``--burstiness`` is
    ``1 / cv**2``). The first request goes at t=0; ``seed`` makes the schedule reproducible.
    """

    rate_per_s: float | None = None
    cv: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.rate_per_s is not None and not (
            self.rate_per_s > 0 and math.isfinite(self.rate_per_s)
        ):
            raise InputError("must be a positive number or None", field="rate_per_s")
        if not (self.cv > 0 and math.isfinite(self.cv)):
            raise InputError("must be a positive number", field="cv")

    @property
    def saturation(self) -> bool:
        return self.rate_per_s is None


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where the OpenAI-compatible API lives, split for the raw HTTP client."""

    scheme: str
    host: str
    port: int
    api_prefix: str  # path up to and including /v1, no trailing slash

    @classmethod
    def parse(cls, base_url: str) -> Endpoint:
        """``http://host:port`` or ``http://host:port/v1`` (any path ending in /v1)."""
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InputError(f"not an http(s) URL: {base_url!r}", field="base_url")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        path = parts.path.rstrip("/")
        if not path.endswith("/v1"):
            path += "/v1"
        return cls(parts.scheme, parts.hostname, port, path)

    def path_for(self, api: ApiKind) -> str:
        return (
            f"{self.api_prefix}/chat/completions"
            if api == "chat"
            else f"{self.api_prefix}/completions"
        )

    @property
    def host_header(self) -> str:
        default = 443 if self.scheme == "https" else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == default else f"{host}:{self.port}"

    @property
    def server_url(self) -> str:
        """The server root (without the API prefix), e.g. for ``/metrics``."""
        root = self.api_prefix.removesuffix("/v1")
        return f"{self.scheme}://{self.host_header}{root}"


@dataclass(frozen=True, slots=True)
class LoadConfig:
    """How a load run talks to the server.

    Timeouts are ``None`` (off) by default because in saturation mode a queued request can
    legitimately receive nothing for a long time. ``idle_timeout_s`` fails a request that
    received no bytes for that long; ``request_timeout_s`` bounds a whole request.
    ``extra_body`` (sampling parameters, ``chat_template_kwargs``, ...) goes into every body.
    """

    base_url: str
    model: str | None = None
    arrival: ArrivalConfig = field(default_factory=ArrivalConfig)
    max_concurrency: int | None = None
    extra_body: Mapping[str, Any] = field(default_factory=dict)
    usage: UsageMode = UsageMode.CONTINUOUS
    connect_timeout_s: float = 30.0
    idle_timeout_s: float | None = None
    request_timeout_s: float | None = None
    api_key: str | None = field(default=None, repr=False)
    headers: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.max_concurrency is not None and self.max_concurrency < 1:
            raise InputError("must be at least 1 or None", field="max_concurrency")
        Endpoint.parse(self.base_url)

    @property
    def endpoint(self) -> Endpoint:
        return Endpoint.parse(self.base_url)
