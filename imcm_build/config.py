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
        """The options of the TOML file at `path` (a [build] table or top-level keys; relative paths are
        taken from the file's folder); `overrides` that are not None win. Raise ValueError naming the file and the option for bad TOML, unknown options and
        values of the wrong type."""
        data = read_toml_table(path, "build")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"{path}: unknown build option(s): {', '.join(unknown)}")
        data = {name: _checked_option(name, value, path) for name, value in data.items()}
        # paths written in the file are relative to the file, wherever the command runs
        folder = Path(path).parent
        if "records" in data:
            data["records"] = [str(folder / record) for record in data["records"]]
        if "out" in data:
            data["out"] = str(folder / data["out"])
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


def read_toml_table(path: str | Path, table: str) -> dict[str, Any]:
    """The `[table]` of a TOML file, or its top level when it has no such table; ValueError naming the file
    when it is not valid TOML or `table` is not a table."""
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"{path}: not valid TOML: {error}") from None
    options = data.get(table, data)
    if not isinstance(options, dict):
        raise ValueError(f"{path}: [{table}] must be a table of {table} options")
    return dict(options)


_OPTION_KINDS: dict[str, str] = {
    "records": "a list of file paths",
    "out": "a string",
    "name": "a string",
    "to_simplified": "true or false",
    "near_dedup": "true or false",
    "strict": "true or false",
    "figures": "true or false",
    "minhash_threshold": "a number",
    "minhash_num_perm": "an integer",
    "min_words": "an integer",
    "workers": "an integer",
    "num_labels": "an integer",
    "min_label_freq": "an integer",
    "seed": "an integer",
    "split_ratios": "a list of three numbers",
}


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _checked_option(name: str, value: Any, path: str | Path) -> Any:
    """`value` as the option `name` holds it (an integer where a number is expected becomes a float);
    ValueError naming the file and the option when it has the wrong type."""
    kind = _OPTION_KINDS[name]
    if kind == "a string":
        valid = isinstance(value, str)
    elif kind == "true or false":
        valid = isinstance(value, bool)
    elif kind == "an integer":
        valid = isinstance(value, int) and not isinstance(value, bool)
    elif kind == "a number":
        valid = _is_number(value)
        value = float(value) if valid else value
    elif kind == "a list of file paths":
        valid = isinstance(value, list) and all(isinstance(item, str) for item in value)
    else:
        valid = isinstance(value, list) and len(value) == 3 and all(_is_number(item) for item in value)
        value = [float(item) for item in value] if valid else value
    if not valid:
        raise ValueError(f"{path}: option {name!r} must be {kind}, got {value!r}")
    return value
