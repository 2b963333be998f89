"""Small numerical building blocks shared by inference, control and learning.

The references guard logarithms differently, and agreement to 1e-8 needs the same guard, so the guard is
a value passed around (``LogGuard``) rather than a constant buried in each function:

- ``CLIP``: ``log(max(x, eps))`` with ``eps`` the float64 machine epsilon (pymdp 1.0's ``log_stable``).
- ``LEGACY``: ``log(x + 1e-16)`` (pymdp.legacy's ``spm_log_single``, SPM's ``spm_log``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import reduce
from string import ascii_letters

import numpy as np
from scipy.special import log_softmax, softmax  # noqa: F401  (re-exported for callers)

EPS = float(np.finfo(np.float64).eps)
LEGACY_EPS = 1e-16


@dataclass(frozen=True)
class LogGuard:
    """How ``log`` treats zeros: ``'clip'`` (log(max(x, eps))) or ``'add'`` (log(x + eps))."""

    kind: str = "clip"
    eps: float = EPS

    def __post_init__(self):
        if self.kind not in ("clip", "add"):
            raise ValueError(f"LogGuard.kind must be 'clip' or 'add', got {self.kind!r}")

    def __call__(self, x):
        x = np.asarray(x, dtype=float)
        if self.kind == "clip":
            return np.log(np.maximum(x, self.eps))
        return np.log(x + self.eps)


CLIP = LogGuard("clip", EPS)
LEGACY = LogGuard("add", LEGACY_EPS)


def xlogx(x, log=CLIP):
    """Elementwise x ln x with 0 ln 0 = 0 (the guard keeps the log finite)."""
    x = np.asarray(x, dtype=float)
    return x * log(x)


def entropy(p, axis=0, log=CLIP):
    """Shannon entropy along ``axis``, in nats."""
    return -xlogx(p, log).sum(axis=axis)


def factor_dot(T, qs, axes, keep=(), batch=False):
    """Contract tensor ``T`` with one belief vector per listed axis.

    Args:
        T: array; when ``batch`` is true its first axis is a batch axis that every belief shares.
        qs: beliefs, ``qs[i]`` of shape ``(T.shape[axes[i]],)`` or ``(batch, T.shape[axes[i]])``.
        axes: the axes of ``T`` (not counting the batch axis) that ``qs`` contract.
        keep: axes of ``T`` (not counting the batch axis) left in the result, in this order.
        batch: whether ``T`` and ``qs`` carry a leading batch axis (policies, agents).

    Returns:
        ``T`` summed against the beliefs: shape ``(*kept)`` or ``(batch, *kept)``.
    """
    nd = T.ndim - int(batch)
    letters = ascii_letters[1 : nd + 1]
    b = "a" if batch else ""
    operands = [T] + list(qs)
    subs = [b + letters] + [b + letters[ax] for ax in axes]
    out = b + "".join(letters[k] for k in keep)
    return np.einsum(",".join(subs) + "->" + out, *operands, optimize=True)


def outer(qs, batch=False):
    """Joint distribution of independent factors, ``qs[0] x qs[1] x ...``.

    Unbatched: ``qs[i]`` of shape ``(S_i,)`` gives ``(S_0, S_1, ...)``. Batched: ``qs[i]`` of shape
    ``(B, S_i)`` gives ``(B, S_0, S_1, ...)``.
    """
    if not batch:
        return reduce(np.multiply.outer, qs)
    joint = qs[0]
    for q in qs[1:]:
        joint = joint[..., None] * q.reshape(q.shape[:1] + (1,) * (joint.ndim - 1) + q.shape[1:])
    return joint
