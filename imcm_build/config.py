"""One typed configuration per build, filled from CLI flags or a TOML file, saved into every release."""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


@dataclass
class BuildConfig:
    records: list[str] = field(default_factory=list)
    out: str = "release"
    name: str = "imcm"
    # clean
    to_simplified: bool = False
    # dedup
    near_dedup: bool = True
    minhash_threshold: float = 0.9
    minhash_num_perm: int = 128
    # tokenize / length
    min_words: int = 50
    workers: int = 0  # 0 = all cores
    # labels
    num_labels: int = 158
    min_label_freq: int = 1
    # split
    split_ratios: tuple[float, float, float] = (0.8, 0.1, 0.1)
    seed: int = 42
    strict: bool = False
    figures: bool = True

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["split_ratios"] = list(self.split_ratios)
        return data

    @classmethod
    def from_toml(cls, path: str | Path, **overrides: Any) -> BuildConfig:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
        data = data.get("build", data)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"{path}: unknown build option(s): {', '.join(unknown)}")
        data.update({k: v for k, v in overrides.items() if v is not None})
        if "split_ratios" in data:
            data["split_ratios"] = tuple(data["split_ratios"])
        return cls(**data)

    def validate(self) -> None:
        if len(self.split_ratios) != 3 or any(r <= 0 for r in self.split_ratios):
            raise ValueError(f"split_ratios must be three positive numbers, got {self.split_ratios}")
        if abs(sum(self.split_ratios) - 1.0) > 1e-6:
            raise ValueError(f"split_ratios must sum to 1, got {self.split_ratios}")
        if self.min_words < 0 or self.num_labels < 1 or self.min_label_freq < 1:
            raise ValueError("min_words >= 0, num_labels >= 1 and min_label_freq >= 1 are required")
        if not 0 < self.minhash_threshold <= 1:
            raise ValueError(f"minhash_threshold must be in (0, 1], got {self.minhash_threshold}")
