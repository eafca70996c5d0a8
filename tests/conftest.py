"""Shared fixtures. Tests that need ../shared/data skip on a fresh clone, but FAIL when
IMCM_SHARED_DATA is set (as .ci/run does) and the data is missing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def shared_path(relative: str) -> Path:
    """Path to a file or folder under the shared real data, or skip/fail as the policy says."""
    root = os.environ.get("IMCM_SHARED_DATA")
    if not root:
        pytest.skip("IMCM_SHARED_DATA is not set: real-data test skipped")
    path = Path(root) / relative
    if not path.exists():
        pytest.fail(f"IMCM_SHARED_DATA={root} is set but {path} is missing")
    return path


@pytest.fixture
def shared() -> callable:
    return shared_path
