"""Where the real data sets are: $FAIRSEQ_VANILLA_DATA (default ../shared/data beside the checkout).

Under CI (CI=true) a missing data set fails the test; elsewhere it is skipped with the reason shown (-rs)."""

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def data_dir(name: str) -> Path:
    base = Path(os.environ.get("FAIRSEQ_VANILLA_DATA", ROOT.parent / "shared" / "data"))
    path = base / name
    if not path.exists():
        message = f"data set {path} not found (set FAIRSEQ_VANILLA_DATA)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path
