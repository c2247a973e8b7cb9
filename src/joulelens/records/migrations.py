"""Numbered migrations of run records: a run file written at an older ``schema_version``
is upgraded step by step (n -> n+1) when the store opens, then validated as today's record.

Add a step when :data:`~joulelens.records.schema.SCHEMA_VERSION` goes up: bump the constant
and register ``STEPS[n] = Step("what changed", upgrade)`` turning a version-n document into
a version-(n+1) one. Steps work on plain JSON documents (dicts), never on today's model, so
old steps keep working however the model changes later. A file from a *newer* joulelens
cannot be downgraded: it is left alone and reported.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from joulelens.records.schema import SCHEMA_VERSION

Document = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Step:
    """Upgrade from version n (its key in the registry) to n + 1."""

    description: str
    upgrade: Callable[[Document], Document]


class SchemaTooNew(ValueError):
    """The document was written by a newer joulelens (a higher ``schema_version``)."""


@dataclass(frozen=True)
class Migrations:
    """A registry of steps up to ``current``; the store uses :data:`MIGRATIONS`."""

    current: int = SCHEMA_VERSION
    steps: Mapping[int, Step] = field(default_factory=dict)

    def __post_init__(self) -> None:
        missing = [n for n in range(1, self.current) if n not in self.steps]
        if missing:
            raise ValueError(f"no migration step from schema_version {missing[0]}")

    def upgrade(self, doc: Document) -> tuple[Document, int]:
        """(the document at :attr:`current`, the version it had); the input is not modified.

        Raises :class:`SchemaTooNew` for a newer document and ``ValueError`` for a
        ``schema_version`` that is not a positive integer.
        """
        version = doc.get("schema_version", 1)
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise ValueError(f"schema_version must be a positive integer, got {version!r}")
        if version > self.current:
            raise SchemaTooNew(
                f"schema_version {version} is newer than this joulelens reads "
                f"({self.current}); upgrade joulelens to read it"
            )
        original = version
        while version < self.current:
            doc = self.steps[version].upgrade(dict(doc))
            version += 1
            doc["schema_version"] = version
        return doc, original


# Today's records are version 1: nothing to upgrade yet.
STEPS: dict[int, Step] = {}
MIGRATIONS = Migrations(SCHEMA_VERSION, STEPS)
