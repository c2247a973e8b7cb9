"""Secret redaction: the one place that decides what must never be stored or shown.

Everything joulelens writes or prints that could carry a secret (run.json, the catalog,
server logs, failure reasons, exports, reports, error messages) passes through here. Four
kinds of secret are removed:

* values of secret flags (``--api-key X``, ``--hf-token=X``, ``api_key='X'``), and every
  later occurrence of such a value anywhere in the same text or record;
* user info in URLs (``http://user:key@host`` -> ``http://***@host``);
* token-shaped strings (Hugging Face, OpenAI, GitHub, Slack, AWS, GitLab tokens, JWTs,
  ``Bearer``/``Basic`` credentials);
* values of environment variables whose names suggest secrets (``*TOKEN*``, ``*KEY*``,
  ``*SECRET*``, ``*PASS*``, ``*CREDENTIAL*``, ``*AUTH*``).

Redaction only ever removes text; it never raises.
"""

from __future__ import annotations

import functools
import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

REDACTED = "***"
MIN_SECRET_LEN = 6  # shorter env values ("1", "true") would redact ordinary text

SECRET_ENV_NAME = re.compile(r"TOKEN|KEY|SECRET|PASS|CREDENTIAL|AUTH|PWD", re.IGNORECASE)
# Environment values that are never secrets even under a secret-looking name.
_HARMLESS_ENV_VALUES = frozenset({"true", "false", "none", "null", "yes", "no"})

# A name whose last word is a secret word: api-key, hf_token, apikey, password ... but not
# max-tokens, tokenizer or ssl-keyfile (the word must end the name).
_WORD = r"(?:key|token|secret|password|passwd|pwd|credentials?)"
_NAME = rf"(?:[A-Za-z0-9]+[-_.])*(?:api|auth|access|secret|private|bearer)?{_WORD}"
SECRET_NAME = re.compile(rf"^{_NAME}$", re.IGNORECASE)
SECRET_FLAG = re.compile(rf"^--?{_NAME}$", re.IGNORECASE)

_FLAG_VALUE = re.compile(
    rf"(?P<lead>(?<![\w-])--?{_NAME})(?P<sep>=|[ \t]+)(?P<value>(?!--)[^\s'\",]+)",
    re.IGNORECASE,
)
_KEY_VALUE = re.compile(
    rf"(?P<lead>(?<![\w-]){_NAME}['\"]?\s*[:=]\s*\[?\s*['\"]?)(?P<value>[^\s'\",\]\}}\)]+)",
    re.IGNORECASE,
)
_URL_USERINFO = re.compile(r"(?P<lead>\b[A-Za-z][A-Za-z0-9+.-]*://)(?P<value>[^/\s@'\"]+)@")
_TOKENS = re.compile(
    r"\bhf_(?=[a-z]*[A-Z0-9])[A-Za-z0-9]{8,}"
    r"|\bsk-(?:proj-|ant-)?[A-Za-z0-9_-]{16,}"
    r"|\bgh[pousr]_[A-Za-z0-9]{20,}"
    r"|\bgithub_pat_[A-Za-z0-9_]{20,}"
    r"|\bglpat-[A-Za-z0-9_-]{20,}"
    r"|\bxox[abprs]-[A-Za-z0-9-]{10,}"
    r"|\bAKIA[0-9A-Z]{16}\b"
    r"|\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"
)
_AUTH_HEADER = re.compile(
    r"(?P<lead>\bBearer\s+|(?i:authorization)['\"]?\s*[:=]\s*['\"]?(?:(?:Bearer|Basic|Token)\s+)?)"
    r"(?P<value>(?!(?:Bearer|Basic|Token)\b)[A-Za-z0-9._~+/=-]{6,})"
)


# A secret flag as one JSON string of an argv list: ["--api-key", "X"].
_JSON_FLAG = re.compile(rf'"--?{_NAME}"\s*,', re.IGNORECASE)
# Anything any pattern below needs, in lower case: when none is present, nothing matches.
_PRESCREEN = re.compile(
    r"(?:key|token|secret|passwd|password|pwd|credential|credentials)(?![a-z_])|://|bearer"
    r"|authorization|hf_|sk-|gh[pousr]_|github_pat_|glpat-|xox[abprs]-|akia|eyj"
)
_SCREENS = (_FLAG_VALUE, _KEY_VALUE, _URL_USERINFO, _AUTH_HEADER, _TOKENS, _JSON_FLAG)


def _env_secrets(env: Mapping[str, str]) -> list[str]:
    return [
        value
        for name, value in env.items()
        if len(value) >= MIN_SECRET_LEN
        and value.lower() not in _HARMLESS_ENV_VALUES
        and SECRET_ENV_NAME.search(name)
    ]


@functools.lru_cache(maxsize=65536)
def _secret_values(text: str) -> tuple[str, ...]:
    found: list[str] = []
    for pattern in (_FLAG_VALUE, _KEY_VALUE, _AUTH_HEADER):
        found += [m["value"] for m in pattern.finditer(text)]
    for match in _URL_USERINFO.finditer(text):
        userinfo = match["value"]
        found.append(userinfo)
        found += [part for part in userinfo.split(":", 1) if part]
    return tuple(v for v in found if len(v) >= 3 and v != REDACTED)


def secret_values(text: str) -> list[str]:
    """Secret values that ``text`` itself reveals (flag values, URL user info, headers)."""
    return list(_secret_values(text))


def argv_secrets(argv: Sequence[str]) -> list[str]:
    """Values of secret flags in an argv list (``["--api-key", "X"]`` or ``--api-key=X``)."""
    found: list[str] = []
    for i, arg in enumerate(argv):
        if SECRET_FLAG.match(arg) and i + 1 < len(argv):
            found.append(argv[i + 1])
        found += secret_values(arg)
    return [v for v in found if v and v != REDACTED]


class Redactor:
    """Removes secrets from text and JSON-like values; build one per batch of work.

    ``known`` are secrets already known (e.g. an ``--api-key`` value from the server's
    argv); ``env`` defaults to this process's environment.
    """

    def __init__(self, env: Mapping[str, str] | None = None, known: Iterable[str] = ()):
        self._env = os.environ if env is None else env
        self._known = sorted(
            {s for s in (*_env_secrets(self._env), *known) if s and len(s) >= 3}, key=len
        )[::-1]
        self._known_re = (
            re.compile("|".join(re.escape(s) for s in self._known)) if self._known else None
        )
        self._cache: dict[str, str] = {}
        escaped = {json.dumps(k)[1:-1] for k in self._known} - set(self._known)
        forms = sorted({*self._known, *escaped}, key=len, reverse=True)
        self._json_known_re = re.compile("|".join(re.escape(f) for f in forms)) if forms else None

    def suspects(self, json_text: str) -> bool:
        """Whether a JSON document may hold a secret: a cheap screen before :meth:`value`
        (no match means :meth:`value` would change nothing)."""
        if self._json_known_re is not None and self._json_known_re.search(json_text):
            return True
        if not _PRESCREEN.search(json_text.lower()):
            return False  # no secret word, no URL, no token prefix anywhere
        return any(p.search(json_text) for p in _SCREENS)

    def collect(self, obj: Any) -> list[str]:
        """Secret values ``obj`` reveals (flag values, URL passwords, secret-named keys)."""
        found: list[str] = []
        _collect(obj, found)
        return found

    def with_known(self, more: Iterable[str]) -> Redactor:
        extra = [s for s in more if s not in self._known]
        return Redactor(self._env, [*self._known, *extra]) if extra else self

    def text(self, text: str) -> str:
        if not text:
            return text
        cached = self._cache.get(text)
        if cached is not None:
            return cached
        out = text
        if self._known_re is not None:
            out = self._known_re.sub(REDACTED, out)
        out = _FLAG_VALUE.sub(lambda m: f"{m['lead']}{m['sep']}{REDACTED}", out)
        out = _KEY_VALUE.sub(lambda m: f"{m['lead']}{REDACTED}", out)
        out = _URL_USERINFO.sub(lambda m: f"{m['lead']}{REDACTED}@", out)
        out = _AUTH_HEADER.sub(lambda m: f"{m['lead']}{REDACTED}", out)
        out = _TOKENS.sub(REDACTED, out)
        if len(self._cache) < 100_000:
            self._cache[text] = out
        return out

    def argv(self, argv: Sequence[str]) -> list[str]:
        """An argv list safe to record: secret flag values and token-shaped strings removed."""
        inner = self.with_known(argv_secrets(argv))
        out: list[str] = []
        for i, arg in enumerate(argv):
            secret_next = i > 0 and SECRET_FLAG.match(argv[i - 1]) is not None
            out.append(REDACTED if secret_next else inner.text(arg))
        return out

    def value(self, obj: Any) -> Any:
        """``obj`` (dicts, lists, strings, numbers) with every secret removed.

        Secrets revealed anywhere in ``obj`` (a flag value in an argv list, a URL password)
        are also removed wherever else they appear in it. Unchanged parts keep their
        identity, so ``redactor.value(x) is x`` says nothing needed removing.
        """
        return self.with_known(self.collect(obj))._walk(obj)

    def _walk(self, obj: Any) -> Any:
        if isinstance(obj, str):
            return self.text(obj)
        if isinstance(obj, Mapping):
            changed = False
            out: dict[Any, Any] = {}
            for key, item in obj.items():
                new_key = self.text(key) if isinstance(key, str) else key
                if isinstance(key, str) and isinstance(item, str) and _secret_key(key):
                    new_item: Any = REDACTED if item else item
                else:
                    new_item = self._walk(item)
                changed |= new_key is not key or new_item is not item
                out[new_key] = new_item
            return out if changed else obj
        if isinstance(obj, list | tuple):
            items = list(obj)
            new = [
                REDACTED
                if i > 0 and isinstance(x, str) and _is_secret_flag(items[i - 1])
                else self._walk(x)
                for i, x in enumerate(items)
            ]
            if all(a is b for a, b in zip(new, items, strict=True)):
                return obj
            return type(obj)(new) if isinstance(obj, tuple) else new
        return obj


def _secret_key(key: str) -> bool:
    return SECRET_NAME.match(key) is not None


def _is_secret_flag(item: Any) -> bool:
    return isinstance(item, str) and SECRET_FLAG.match(item) is not None


def _collect(obj: Any, found: list[str]) -> None:
    if isinstance(obj, str):
        if "=" in obj or "@" in obj or ":" in obj or " " in obj:
            found += secret_values(obj)
    elif isinstance(obj, Mapping):
        for key, item in obj.items():
            if isinstance(key, str) and isinstance(item, str) and _secret_key(key) and item:
                found.append(item)
            else:
                _collect(item, found)
    elif isinstance(obj, list | tuple):
        items = list(obj)
        for i, item in enumerate(items):
            if i > 0 and isinstance(item, str) and _is_secret_flag(items[i - 1]):
                found.append(item)
            else:
                _collect(item, found)


def redact(text: str, env: Mapping[str, str] | None = None, known: Iterable[str] = ()) -> str:
    """``text`` without secrets (see the module docstring for what counts)."""
    return Redactor(env, known).value(text) if text else text


def redact_value(obj: Any, env: Mapping[str, str] | None = None, known: Iterable[str] = ()) -> Any:
    return Redactor(env, known).value(obj)


def redact_argv(argv: Sequence[str], env: Mapping[str, str] | None = None) -> list[str]:
    return Redactor(env).argv(argv)


def strip_userinfo(url: str) -> tuple[str, str | None, str | None]:
    """(URL without user info, user, password); user and password are None when absent."""
    from urllib.parse import unquote, urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url, None, None
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host if parts.port is None else f"{host}:{parts.port}"
    clean = urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    user = unquote(parts.username) if parts.username is not None else None
    password = unquote(parts.password) if parts.password is not None else None
    return clean, user, password
