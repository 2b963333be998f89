"""pymdp 1.0's knapsack demo (``examples/envs/knapsack_demo.ipynb``) as a one-step generative model.

Choose which of ``N`` items to pack; item ``i`` weighs ``weights[i]`` and is worth ``values[i]``; the packed weight
must not exceed ``capacity``. The demo casts this as a contextual bandit, described by names (``aif.labels``):

- controls ``a_0 .. a_{N-1}`` (leave, pack), one per item.
- state factors ``s_i`` (left, packed), driven by ``a_i``: the state copies the action,
  ``B[s_i][s', s, a_i] = 1 if s' == a_i``; and ``z`` (capacity respected, exceeded), driven by every control:
  ``B[z][z', z, a_0, ..., a_{N-1}] = 1 if z' == [sum_i weights[i] a_i > capacity]``, whatever ``z`` was.
- one modality per factor that sees it exactly (``A = I``).
- ``C[s_i] = softmax([0, values[i]])`` and ``C[z] = [1, 0]``, the demo's (probabilities, which pymdp 1.0 uses as
  log-preferences as given); ``D`` uniform.

The built model (``aif.labels.LabelledModel.to_model``) has, as pymdp 1.0's Agent with ``B_action_dependencies``,
one control axis per factor: ``z``'s is the ``2**N`` joint actions in C order (item 0 slowest). Its policies
(``LabelledModel.policies``, pymdp's ``agent.policies``) are the ``2**N`` joint actions, ``(2**N, 1, N + 1)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import softmax

from ..checks import as_numbers, check_finite, check_real
from ..errors import ParameterError
from ..labels import LabelledModel, compile_model
from ..model import GenerativeModel

MAX_ITEMS = 20  # 2**N joint actions are enumerated: about a million policies at 20 items
CHOICES = ("leave", "pack")


@dataclass(frozen=True)
class Knapsack:
    """A knapsack problem and the model that solves it.

    Attributes:
        weights, values: ``(N,)`` per item.
        capacity: the largest weight allowed.
        labelled: the model by names (factors ``s_i`` and ``z``, controls ``a_i``).
        model: the built generative model (module docstring).
        policies: int ``(2**N, 1, N + 1)``, the joint actions in pymdp's order, for ``aif.Agent(policies=...)``.
    """

    weights: np.ndarray
    values: np.ndarray
    capacity: float
    labelled: LabelledModel
    model: GenerativeModel
    policies: np.ndarray

    def items(self, action: ArrayLike) -> np.ndarray:
        """The packing ``(N,)`` of 0/1 that an agent's action ``(N + 1,)`` (or a policy's step) chooses."""
        chosen = self.labelled.controls_of(action)
        return np.array([CHOICES.index(chosen[f"a_{i}"]) for i in range(len(self.weights))])

    def best(self) -> np.ndarray:
        """The packing ``(N,)`` of largest value within the capacity, by enumerating all ``2**N``."""
        bits = self.policies[:, 0, :-1]  # (2**N, N): item i's control is bit i of the joint action
        within = self.model.B[-1][0, 0, :] == 1.0  # z stays 0 under joint action j: the capacity holds
        return bits[int(np.argmax(np.where(within, bits @ self.values, -np.inf)))]


def knapsack(weights: ArrayLike, values: ArrayLike, capacity: float) -> Knapsack:
    """The knapsack model of pymdp's demo for these items (module docstring). The demo draws
    ``weights = capacity / N + U(0, 5)`` and ``values = U(0, 1)`` for ``N = 5, capacity = 20``.

    Args:
        weights: ``(N,)`` non-negative item weights, ``1 <= N <= MAX_ITEMS``.
        values: ``(N,)`` finite item values.
        capacity: the largest total weight.
    """
    w = as_numbers(weights, "weights", ParameterError)
    v = as_numbers(values, "values", ParameterError)
    if w.ndim != 1 or not 1 <= w.size <= MAX_ITEMS or v.shape != w.shape:
        raise ParameterError(f"weights and values must be 1-D of the same length N, 1 <= N <= {MAX_ITEMS}, got "
                             f"shapes {w.shape} and {v.shape}")
    check_finite(w, "weights", error=ParameterError)
    check_finite(v, "values", nonneg=False, error=ParameterError)
    cap = check_real(capacity, "capacity")
    n = w.size
    states = {f"s_{i}": {"elements": list(CHOICES), "controlled_by": [f"a_{i}"]} for i in range(n)}
    states["z"] = {"elements": ["respected", "exceeded"], "controlled_by": [f"a_{i}" for i in range(n)]}
    labelled = compile_model({"states": states,
                              "observations": {f: {"elements": s["elements"], "depends_on": [f]}
                                               for f, s in states.items()},
                              "controls": {f"a_{i}": {"elements": list(CHOICES)} for i in range(n)}})
    for A_m in labelled.A:
        A_m.data = np.eye(2)
    for i in range(n):
        labelled.B[i].data = np.broadcast_to(np.eye(2)[:, None, :], (2, 2, 2))  # (s', s, a_i): s' = a_i
        labelled.C[i].data = softmax([0.0, v[i]])
    # The packed weight of every joint action, (2,) * N, summed over items in order along the first axis of an
    # (N, 2, ..., 2) array as pymdp's demo does: a packing exactly at the capacity is judged the same way.
    packed = (np.indices((2,) * n) * w.reshape((n,) + (1,) * n)).sum(axis=0)
    exceeded = (packed > cap).astype(float)
    labelled.B["z"].data = np.stack([np.stack([1.0 - exceeded, exceeded])] * 2, axis=1)  # (z', z, a_0, ..., a_N-1)
    labelled.C["z"].data = [1.0, 0.0]
    return Knapsack(w, v, cap, labelled, labelled.to_model(), labelled.policies(1))


__all__ = ["Knapsack", "knapsack", "MAX_ITEMS"]
