"""Where the shared public data sets are (``../shared/data`` beside the checkout; see its README).

Tests that read them call :func:`shared_data`: the folder is found beside this checkout, at
``$LEADSCORE_SHARED_DATA``, or at ``/work/shared/data``. It is always present in CI, so with
``CI=true`` its absence fails the test; elsewhere the test skips with the reason.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def shared_data(*parts: str) -> Path:
    """The path of ``parts`` under the shared data folder (fail in CI / skip elsewhere when absent)."""
    candidates = [Path(os.environ["LEADSCORE_SHARED_DATA"])] if os.environ.get("LEADSCORE_SHARED_DATA") else []
    candidates += [ROOT.parent / "shared" / "data", Path("/work/shared/data")]
    for folder in candidates:
        if (folder / Path(*parts)).exists():
            return folder / Path(*parts)
    reason = f"shared data {'/'.join(parts)} not found in {', '.join(str(c) for c in candidates)}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(reason)
    pytest.skip(reason)
