"""Reading one run file (with migrations) and setting aside the ones that cannot be read.

A run file that is not a valid record (truncated, hand-edited, corrupt) is moved whole, with
its artifacts, to ``STORE/quarantine/<run_id>.<UTC time>/`` beside a ``reason.txt``; the
store then works without it. A file written by a newer joulelens stays where it is (it is
not broken) and is reported, as is one the store lacks permission to read or move.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from joulelens.errors import InputError, StoreError, from_validation
from joulelens.records import RunRecord
from joulelens.records.migrations import Migrations, SchemaTooNew
from joulelens.redact import Redactor

RUN_FILE = "run.json"
QUARANTINE_DIR = "quarantine"
REASON_FILE = "reason.txt"
MAX_RUN_FILE_BYTES = 64 * 1024 * 1024  # a record is kilobytes; anything this big is not one
TEXT_ARTIFACTS = (".log", ".txt", ".json", ".jsonl", ".yaml", ".yml", ".csv")


class NewerSchemaError(StoreError):
    """A run file written by a newer joulelens."""


@dataclass(frozen=True, slots=True)
class Problem:
    """A run file the store could not index: ``kind`` is "quarantined", "newer" or
    "unreadable"; ``reason`` names the file (relative to the store) and the field."""

    run_id: str
    kind: str
    reason: str


def load_run_file(path: Path, migrations: Migrations) -> tuple[RunRecord, int]:
    """(the record, the schema_version the file had); raises InputError for an invalid file,
    NewerSchemaError for a newer one and StoreError when it cannot be read at all."""
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_RUN_FILE_BYTES + 1)
    except OSError as exc:
        raise StoreError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if len(data) > MAX_RUN_FILE_BYTES:
        raise InputError(f"larger than {MAX_RUN_FILE_BYTES >> 20} MiB: not a run file", source=path)
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"not valid JSON ({exc})", source=path) from exc
    if not isinstance(doc, dict):
        raise InputError(f"expected a JSON object, got {type(doc).__name__}", source=path)
    try:
        doc, version = migrations.upgrade(doc)
    except SchemaTooNew as exc:
        raise NewerSchemaError(f"{path}: {exc}") from exc
    except ValueError as exc:
        raise InputError(str(exc), source=path, field="schema_version") from exc
    try:
        record = RunRecord.model_validate(doc)
    except ValidationError as exc:
        raise from_validation(exc, path) from exc
    if record.run_id != path.parent.name:
        raise InputError(
            f"run_id {record.run_id!r} does not match its directory {path.parent.name!r}",
            source=path,
            field="run_id",
        )
    return record, version


def quarantine(root: Path, run_dir: Path, reason: str) -> Path:
    """Move ``run_dir`` aside with ``reason``; returns where it went (raises OSError)."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    target = root / QUARANTINE_DIR / f"{run_dir.name}.{stamp}"
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(run_dir, target)
    (target / REASON_FILE).write_text(reason + "\n")
    return target


def quarantined(root: Path) -> list[tuple[str, str]]:
    """(folder name, reason) of everything set aside so far, oldest first."""
    folder = root / QUARANTINE_DIR
    if not folder.is_dir():
        return []
    out = []
    for entry in sorted(folder.iterdir(), key=lambda p: p.name.rsplit(".", 2)[-2:]):
        try:
            reason = (entry / REASON_FILE).read_text(errors="replace").strip()
        except OSError:
            reason = "no reason recorded"
        out.append((entry.name, reason))
    return out


def relative_reason(root: Path, exc: Exception) -> str:
    """The error's message with the store's own path shortened (messages are shown/served)."""
    return str(exc).replace(str(root) + os.sep, "").replace(str(root), "STORE")


def redact_artifacts(staging: Path, redactor: Redactor) -> None:
    """Remove secrets from the text and Parquet files a run brings (logs, request errors)."""
    for entry in staging.iterdir():
        if not entry.is_file():
            continue
        if entry.suffix in TEXT_ARTIFACTS:
            raw = entry.read_bytes()
            text = raw.decode("utf-8", "surrogateescape")
            clean = redactor.text(text)
            if clean != text:
                entry.write_bytes(clean.encode("utf-8", "surrogateescape"))
        elif entry.suffix == ".parquet":
            _redact_parquet(entry, redactor)


def _redact_parquet(path: Path, redactor: Redactor) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError):
        return  # not a Parquet file we can read: nothing in it is shown either
    changed = False
    columns: list[Any] = []
    for name in table.column_names:
        column = table.column(name)
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            values = column.to_pylist()
            clean = [redactor.text(v) if isinstance(v, str) else v for v in values]
            if clean != values:
                column = pa.chunked_array([pa.array(clean, type=column.type)])
                changed = True
        columns.append(column)
    if changed:
        pq.write_table(pa.table(columns, names=table.column_names), path)
