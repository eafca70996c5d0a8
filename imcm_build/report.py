"""Per-step accounting: in/out counts and every drop with its reason."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

MAX_EXAMPLES_PER_REASON = 20


@dataclass
class StepReport:
    """What one step did. Every document a step removes must be passed to `drop`."""

    name: str
    n_in: int = 0
    n_out: int = 0
    dropped: Counter = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)
    notes: dict[str, Any] = field(default_factory=dict)  # step-specific figures (merges, coverage, ...)
    seconds: float = 0.0

    def drop(self, reason: str, where: str, detail: str = "") -> None:
        """Count one dropped document/record; `where` is its id or file:line, `detail` what exactly was
        wrong with it (kept with the example as "where: detail")."""
        self.dropped[reason] += 1
        examples = self.examples.setdefault(reason, [])
        if len(examples) < MAX_EXAMPLES_PER_REASON:
            examples.append(f"{where}: {detail}" if detail else where)

    @property
    def n_dropped(self) -> int:
        return sum(self.dropped.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "step": self.name,
            "in": self.n_in,
            "out": self.n_out,
            "dropped": dict(sorted(self.dropped.items())),
            "drop_examples": self.examples,
            "notes": self.notes,
            "seconds": round(self.seconds, 3),
        }


class BuildError(RuntimeError):
    """A build that cannot produce a release (for example, every document was dropped)."""
