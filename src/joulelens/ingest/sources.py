"""Reading JSON documents from a local directory or the same layout at a base URL."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Protocol

from joulelens.errors import InputError


class JsonSource(Protocol):
    """A tree of JSON files addressed by relative path ("tasks/gpqa.json")."""

    def describe(self, rel: str) -> str: ...

    def exists(self, rel: str) -> bool: ...

    def read(self, rel: str) -> Any: ...


class DirectorySource:
    def __init__(self, root: Path):
        if not root.is_dir():
            raise InputError("not a directory", source=root)
        self.root = root

    def describe(self, rel: str) -> str:
        return str(self.root / rel)

    def exists(self, rel: str) -> bool:
        return (self.root / rel).is_file()

    def read(self, rel: str) -> Any:
        path = self.root / rel
        try:
            return json.loads(path.read_bytes())
        except FileNotFoundError as exc:
            raise InputError("file not found", source=path) from exc
        except json.JSONDecodeError as exc:
            raise InputError(f"invalid JSON ({exc})", source=path) from exc


class UrlSource:
    """The same files served over HTTP(S) under ``base``; one client for all requests."""

    def __init__(self, base: str, timeout_s: float = 30.0):
        import httpx

        self.base = base.rstrip("/")
        self._client = httpx.Client(timeout=timeout_s, follow_redirects=True)
        self._cache: dict[str, Any] = {}

    def describe(self, rel: str) -> str:
        return f"{self.base}/{rel}"

    def _get(self, rel: str) -> Any:
        import httpx

        if rel in self._cache:
            return self._cache[rel]
        url = self.describe(rel)
        try:
            response = self._client.get(url)
        except httpx.HTTPError as exc:
            raise InputError(f"cannot fetch ({exc})", source=url) from exc
        if response.status_code == 404:
            self._cache[rel] = None
            return None
        if response.status_code != 200:
            raise InputError(f"HTTP {response.status_code}", source=url)
        try:
            self._cache[rel] = response.json()
        except json.JSONDecodeError as exc:
            raise InputError(f"invalid JSON ({exc})", source=url) from exc
        return self._cache[rel]

    def exists(self, rel: str) -> bool:
        return self._get(rel) is not None

    def read(self, rel: str) -> Any:
        doc = self._get(rel)
        if doc is None:
            raise InputError("not found (HTTP 404)", source=self.describe(rel))
        return doc


def open_source(path_or_url: str | Path) -> JsonSource:
    text = str(path_or_url)
    if text.startswith(("http://", "https://")):
        return UrlSource(text)
    return DirectorySource(Path(text).expanduser())
