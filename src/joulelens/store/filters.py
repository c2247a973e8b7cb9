"""Which runs a query selects: the filters every listing command shares."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class RunFilter:
    """Filters for :meth:`Store.query`; ``None`` means no constraint."""

    task: str | None = None
    model: str | None = None  # case-insensitive substring of model_id or nickname
    gpu_model: str | None = None
    num_gpus: int | None = None
    batch_min: int | None = None
    batch_max: int | None = None
    precision: str | None = None  # substring of weight_precision, e.g. "fp8"
    stable_only: bool = False
    kind: str | None = None
    source: str | None = None
    include_failed: bool = False

    def to_sql(self) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        if self.task:
            clauses.append("task = ?")
            params.append(self.task)
        if self.model:
            clauses.append("(lower(model_id) LIKE ? OR lower(coalesce(nickname, '')) LIKE ?)")
            params += [f"%{self.model.lower()}%"] * 2
        if self.gpu_model:
            clauses.append("lower(gpu_model) = ?")
            params.append(self.gpu_model.lower())
        if self.num_gpus is not None:
            clauses.append("num_gpus = ?")
            params.append(self.num_gpus)
        if self.batch_min is not None:
            clauses.append("batch >= ?")
            params.append(self.batch_min)
        if self.batch_max is not None:
            clauses.append("batch <= ?")
            params.append(self.batch_max)
        if self.precision:
            clauses.append("lower(coalesce(weight_precision, '')) LIKE ?")
            params.append(f"%{self.precision.lower()}%")
        if self.stable_only:
            clauses.append("stable IS TRUE")
        if self.kind:
            clauses.append("kind = ?")
            params.append(self.kind)
        if self.source:
            clauses.append("source = ?")
            params.append(self.source)
        if not self.include_failed:
            clauses.append("status = 'completed'")
        return (" AND ".join(clauses) or "TRUE"), params
