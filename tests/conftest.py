"""Shared test fixtures: the SPM reference folder and seeded generators."""

from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SPM_DIR = REPO.parent / "shared" / "reference" / "spm"


@pytest.fixture
def spm_file():
    """Load an SPM reference file by stem (``spm_file('mmp_a')``); skip when ../shared is absent."""
    from scipy.io import loadmat

    def load(stem):
        path = SPM_DIR / f"{stem}.mat"
        if not path.exists():
            pytest.skip(f"SPM reference {path} is absent (tests read ../shared/reference/spm beside the repo)")
        return loadmat(str(path))

    return load


@pytest.fixture
def rng():
    return np.random.default_rng(0)
