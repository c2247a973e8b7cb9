"""What a write reports, and a record made ready for writing (secrets removed)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from joulelens.records import RunRecord
from joulelens.redact import Redactor
from joulelens.store.runfiles import Problem


@dataclass(frozen=True, slots=True)
class WriteCounts:
    """What a bulk write did, counted while holding the write lock (so counts add up)."""

    new: int = 0
    updated: int = 0
    unchanged: int = 0

    @property
    def written(self) -> int:
        return self.new + self.updated

    def describe(self) -> str:
        return f"{self.new} new, {self.updated} updated, {self.unchanged} unchanged"


@dataclass(frozen=True, slots=True)
class StoreInfo:
    root: Path
    runs: int
    catalog: str  # CatalogState of the shared catalog when the store was opened
    read_only: bool
    problems: list[Problem]  # files left in runs/ that are not indexed (newer, unreadable)
    quarantined: list[tuple[str, str]]  # (folder under quarantine/, reason)


@dataclass(frozen=True, slots=True)
class Prepared:
    """A record ready to write: secrets removed, its run.json text, the secrets it held."""

    record: RunRecord
    text: str
    secrets: list[str]


def prepare(record: RunRecord, redactor: Redactor) -> Prepared:
    text = record.model_dump_json(indent=1)
    if not redactor.suspects(text):  # the common case: nothing that could be a secret
        return Prepared(record, text, [])
    doc = record.model_dump(mode="json")
    found = redactor.collect(doc)
    clean = redactor.value(doc)
    if clean is doc:
        return Prepared(record, text, found)
    cleaned = RunRecord.model_validate(clean)
    return Prepared(cleaned, cleaned.model_dump_json(indent=1), found)
