"""What a kind's CRD says besides its schema: names, printer columns, description."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class PrinterColumn:
    name: str
    type: str
    json_path: str
    description: str = ""
    priority: int = 0
    format: str | None = None


def standard_columns(*, progress: bool = False) -> tuple[PrinterColumn, ...]:
    """Phase, external ID, (progress,) Ready and Age: the columns every kind shows."""
    columns = [
        PrinterColumn("Phase", "string", ".status.phase", "One-word summary"),
        PrinterColumn("External ID", "string", ".status.externalID", "Cloud identifier"),
    ]
    if progress:
        columns.append(PrinterColumn("Progress", "integer", ".status.progress", "Percent done"))
    columns += [
        PrinterColumn("Ready", "string", '.status.conditions[?(@.type=="Ready")].status'),
        PrinterColumn("Age", "date", ".metadata.creationTimestamp"),
    ]
    return tuple(columns)


@dataclass(frozen=True)
class CrdInfo:
    kind: str
    plural: str
    short_names: tuple[str, ...]
    description: str
    columns: tuple[PrinterColumn, ...] = field(default_factory=tuple)
    categories: tuple[str, ...] = ("imageops",)

    @property
    def singular(self) -> str:
        return self.kind.lower()
