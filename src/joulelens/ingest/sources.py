"""Reading JSON documents from a local directory or the same layout at a base URL."""

from __future__ import annotations

import json
import posixpath
from pathlib import Path
from typing import Any, Protocol

from joulelens.errors import InputError

# The largest published leaderboard file is ~0.1 MB; anything near this limit is not one.
MAX_DOCUMENT_BYTES = 64 * 1024 * 1024
_SNIFF_BYTES = 4096


def confined(rel: str, where: str) -> str:
    """``rel`` normalised; an absolute path or one climbing out of the tree is refused."""
    norm = posixpath.normpath(rel.replace("\\", "/"))
    if rel.startswith("/") or norm == ".." or norm.startswith("../") or "\x00" in rel:
        raise InputError(f"path {rel!r} leaves the source tree", source=where)
    return norm


def parse_json_bytes(data: bytes, where: str | Path) -> Any:
    """JSON from bytes; binary, undecodable or malformed input is an InputError."""
    try:
        return json.loads(data)
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 text (binary file?): {exc.reason}", source=where) from exc
    except json.JSONDecodeError as exc:
        raise InputError(f"invalid JSON ({exc})", source=where) from exc
    except RecursionError as exc:
        raise InputError("invalid JSON (nested too deeply)", source=where) from exc


def read_json_file(path: Path, max_bytes: int = MAX_DOCUMENT_BYTES) -> Any:
    """A JSON document from a file, in bounded memory: the size is checked before reading,
    and a file whose first bytes cannot start a JSON document is refused unread."""
    try:
        with open(path, "rb") as fh:
            size = fh.seek(0, 2)
            if size > max_bytes:
                raise InputError(
                    f"{size / 2**20:.0f} MiB is larger than the {max_bytes >> 20} MiB an input "
                    "document may have: not an ML.ENERGY file",
                    source=path,
                )
            fh.seek(0)
            head = fh.read(_SNIFF_BYTES)
            start = head.lstrip(b" \t\r\n\xef\xbb\xbf")[:1]
            if head and start not in (b"{", b"["):
                raise InputError("not a JSON document (binary or text file?)", source=path)
            data = head + fh.read()
    except FileNotFoundError as exc:
        raise InputError("file not found", source=path) from exc
    except IsADirectoryError as exc:
        raise InputError("is a directory, expected a JSON file", source=path) from exc
    except OSError as exc:
        raise InputError(f"cannot read ({exc.strerror or exc})", source=path) from exc
    return parse_json_bytes(data, path)


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
        return (self.root / confined(rel, str(self.root))).is_file()

    def read(self, rel: str) -> Any:
        return read_json_file(self.root / confined(rel, str(self.root)))


class UrlSource:
    """The same files served over HTTP(S) under ``base``; one client for all requests."""

    def __init__(self, base: str, timeout_s: float = 30.0, auth: tuple[str, str] | None = None):
        import httpx

        self.base = base.rstrip("/")  # without user info: it is shown and stored
        self._client = httpx.Client(timeout=timeout_s, follow_redirects=True, auth=auth)
        self._cache: dict[str, Any] = {}

    def describe(self, rel: str) -> str:
        return f"{self.base}/{rel}"

    def _get(self, rel: str) -> Any:
        import httpx

        rel = confined(rel, self.base)
        if rel in self._cache:
            return self._cache[rel]
        url = self.describe(rel)
        try:
            with self._client.stream("GET", url) as response:
                if response.status_code == 404:
                    self._cache[rel] = None
                    return None
                if response.status_code != 200:
                    raise InputError(f"HTTP {response.status_code}", source=url)
                body = bytearray()
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) > MAX_DOCUMENT_BYTES:
                        raise InputError(
                            f"response larger than {MAX_DOCUMENT_BYTES >> 20} MiB", source=url
                        )
        except httpx.HTTPError as exc:
            raise InputError(f"cannot fetch ({exc})", source=url) from exc
        self._cache[rel] = parse_json_bytes(bytes(body), url)
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
        from joulelens.redact import strip_userinfo

        clean, user, password = strip_userinfo(text)
        return UrlSource(clean, auth=(user or "", password or "") if user or password else None)
    return DirectorySource(Path(text).expanduser())
