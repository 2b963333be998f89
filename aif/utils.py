"""Small helpers a pymdp user reaches for: normalising counts, a fully controllable B, one-hot vectors, and the
flat index of a joint action (pymdp.legacy ``utils.norm_dist_obj_arr``, ``construct_controllable_B``,
``onehot``; pymdp 1.0 ``utils.get_combination_index``, ``index_to_combination``).

Random models are ``aif.random_model``; policies are ``aif.enumerate_policies``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .checks import as_numbers, check_finite, check_index, check_integer, check_sequence, first_index
from .errors import ModelError, ParameterError, PolicyError


def normalize(x: Any, axis: int = 0) -> Any:
    """Non-negative counts scaled so that every slice along ``axis`` sums to 1 (axis 0: the columns of A, B, D).

    ``x`` is one array of any shape, or a list (one array per factor or modality), which gives a list back, as
    pymdp.legacy's ``norm_dist_obj_arr``. A column summing to 0 is a ``ModelError`` naming the array and the
    column's index (pymdp's ``norm_dist`` silently returns NaN there); so is a negative or non-finite entry.
    """
    if isinstance(x, (list, tuple)):
        return [_normalize(a, axis, f"x[{i}]") for i, a in enumerate(x)]
    return _normalize(x, axis, "x")


def _normalize(x: Any, axis: int, label: str) -> np.ndarray:
    x = as_numbers(x, label, ModelError)
    if not (isinstance(axis, (int, np.integer)) and not isinstance(axis, bool) and -x.ndim <= axis < x.ndim):
        raise ParameterError(f"axis {axis!r} is not an axis of {label}, of shape {x.shape}")
    check_finite(x, label)
    sums = x.sum(axis=axis)
    if (sums == 0).any():
        raise ModelError(f"{label} has a column summing to 0 at index {first_index(sums == 0)} (along axis {axis}); "
                         "it cannot be normalised")
    return x / np.expand_dims(sums, axis)


def controllable_B(num_states: Sequence[int], num_controls: Sequence[int]) -> list[np.ndarray]:
    """Fully controllable transitions: from any state, action ``u`` of factor ``f`` moves to state ``u``.

    ``B[f][s_next, s, u] = 1 if s_next == u else 0``, shape ``(num_states[f], num_states[f], num_controls[f])``.
    This is pymdp.legacy's ``construct_controllable_B`` (which builds ``(U_f, U_f, U_f)`` and so is only a valid B
    when ``num_controls[f] == num_states[f]``) and pymdp 1.0's ``create_controllable_B``. More controls than
    states would leave columns of zeros: a ``ModelError``; fewer leave states ``>= num_controls[f]`` unreachable.
    """
    ns = [check_integer(n, f"num_states[{f}]", error=ModelError)
          for f, n in enumerate(check_sequence(num_states, "num_states", ModelError))]
    nu = [check_integer(u, f"num_controls[{f}]", error=ModelError)
          for f, u in enumerate(check_sequence(num_controls, "num_controls", ModelError))]
    if len(ns) != len(nu):
        raise ModelError(f"num_states has {len(ns)} factors but num_controls has {len(nu)}")
    for f, (n, u) in enumerate(zip(ns, nu, strict=True)):
        if u > n:
            raise ModelError(f"factor {f} has {u} controls but {n} states: action u moves to state u, so "
                             f"num_controls[{f}] must be at most {n}")
    # (S_f, 1, U_f) one-hot of the action's target state, the same for every previous state
    return [np.broadcast_to(np.eye(n, u)[:, None, :], (n, n, u)).copy() for n, u in zip(ns, nu, strict=True)]


def onehot(i: int, n: int) -> np.ndarray:
    """The float vector ``(n,)`` with a 1 at ``i`` (pymdp.legacy ``utils.onehot``)."""
    n = check_integer(n, "n")
    return np.eye(n)[check_index(i, "i", n)]


def _dims(num_controls: Sequence[int]) -> tuple[int, ...]:
    dims = tuple(check_integer(u, f"num_controls[{f}]", error=PolicyError)
                 for f, u in enumerate(check_sequence(num_controls, "num_controls", PolicyError)))
    if not dims or math.prod(dims) > np.iinfo(np.intp).max:
        raise PolicyError(f"num_controls must list at least one factor, with fewer than 2**63 joint actions, "
                          f"got {list(dims)}")
    return dims


def action_to_index(action: Any, num_controls: Sequence[int]) -> Any:
    """The row of ``aif.enumerate_policies(num_controls, 1)`` that takes ``action``: int ``(F,)`` -> ``int``, or a
    batch ``(..., F)`` -> int ``(...)``. C order, the last factor fastest (pymdp 1.0 ``get_combination_index``)."""
    dims = _dims(num_controls)
    a = as_numbers(action, "action", PolicyError, None)
    if a.ndim == 0 or a.shape[-1] != len(dims) or not (a.size == 0 or np.issubdtype(a.dtype, np.integer)):
        raise PolicyError(f"action must be integers of shape (..., {len(dims)}), got {a.dtype} {a.shape}")
    bad = (a < 0) | (a >= np.asarray(dims))
    if bad.any():
        i = first_index(bad)
        raise PolicyError(f"action{list(i)} = {a[i]} is out of range for factor {i[-1]} with {dims[i[-1]]} "
                          f"controls (0 to {dims[i[-1]] - 1})")
    index = np.ravel_multi_index(tuple(np.moveaxis(a, -1, 0)), dims)
    return int(index) if a.ndim == 1 else index


def index_to_action(index: Any, num_controls: Sequence[int]) -> np.ndarray:
    """The joint action ``(F,)`` in row ``index`` of ``aif.enumerate_policies(num_controls, 1)`` (a batch of
    indices ``(...)`` gives ``(..., F)``); pymdp 1.0 ``index_to_combination``, the inverse of ``action_to_index``."""
    dims = _dims(num_controls)
    i, n = as_numbers(index, "index", PolicyError, None), math.prod(dims)
    if i.size and not np.issubdtype(i.dtype, np.integer):
        raise PolicyError(f"index must be integers, got {i.dtype} {str(index)[:100]}")
    bad = (i < 0) | (i >= n)
    if bad.any():
        raise PolicyError(f"index {i[bad][0]} is out of range for the {n} joint actions of controls {list(dims)} "
                          f"(0 to {n - 1})")
    return np.stack(np.unravel_index(i, dims), axis=-1)


__all__ = ["normalize", "controllable_B", "onehot", "action_to_index", "index_to_action"]
