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


@pytest.fixture(scope="module")
def compiled_kernel():
    """``aif.fast``'s kernel for a module's agents (numba loads it from its cache after the first run on a
    machine); afterwards ``aif.fast`` is left as it was, so that agents of later test files in this process keep
    the NumPy path. Use it with ``pytestmark = pytest.mark.usefixtures("compiled_kernel")``."""
    pytest.importorskip("numba")
    from aif import fast

    saved = (fast._kernels, dict(fast._state))
    assert fast.compile(), fast.status()
    yield fast
    fast._kernels = saved[0]
    fast._state.update(saved[1])


@pytest.fixture(scope="session")
def load_script():
    """Import a script of the repository (an example or a benchmark, which are not packages) by its path from the
    repository's root: ``load_script("benchmarks/minigrid_shortest.py")``; registered in ``sys.modules`` (as
    dataclasses look their module up) as ``<folder>_<stem>``, which shadows no package (examples/minigrid.py is
    ``examples_minigrid``, not ``minigrid``)."""
    import importlib.util
    import sys

    def load(relative: str):
        path = REPO / relative
        spec = importlib.util.spec_from_file_location(f"{path.parent.name}_{path.stem}", path)
        mod = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = mod
        spec.loader.exec_module(mod)
        return mod

    return load
