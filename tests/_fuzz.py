"""What the three fuzz test files share: the settings, the check each call must pass, and the runner."""

import numpy as np
from hypothesis import HealthCheck, given, settings

from aif.errors import AifError


def fuzz_settings(max_examples):
    """Derandomised, without a database: the same examples in every run, within CI's budget."""
    return settings(max_examples=max_examples, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


def leaves(out):
    """Every array in a result (NumPy arrays, numbers, tensors; inside lists, tuples, dicts and dataclasses)."""
    if isinstance(out, dict):
        out = list(out.values())
    if isinstance(out, (list, tuple)):
        for x in out:
            yield from leaves(x)
    elif hasattr(out, "detach"):  # a torch tensor
        yield out.detach().cpu().numpy()
    elif isinstance(out, (np.ndarray, float, np.floating)):
        yield np.asarray(out)
    elif hasattr(out, "__dataclass_fields__"):
        yield from leaves([getattr(out, k) for k in out.__dataclass_fields__])


def check(call, allowed=()):
    """``call()`` returns finite numbers, or raises the library's error (or one of ``allowed``)."""
    allowed = allowed if isinstance(allowed, tuple) else (allowed,)
    try:
        out = call()
    except (AifError, *allowed):
        return None
    for x in leaves(out):
        if x.dtype.kind in "fc":
            assert np.isfinite(x).all(), f"a non-finite result: {x}"
    return out


def run(strategy, call, max_examples):
    """``check(call(value))`` for ``max_examples`` values drawn from ``strategy``."""
    @fuzz_settings(max_examples)
    @given(strategy)
    def case(value):
        check(lambda: call(value))

    case()
