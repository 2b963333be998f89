"""Action factors: one action driving several state factors, and a state factor driven by several actions or by
none (pymdp 1.0's ``Agent(B, ..., B_action_dependencies=..., num_controls=...)``).

An aif model gives each state factor one control axis: ``B[f]``: ``(S_f, *S_deps, U_f)``, and an action is one
index per state factor, ``(num_factors,)``. A model with ``K`` action factors (factor ``c`` has ``num_controls[c]``
actions) instead gives ``B[f]`` one axis per action factor that drives it, in the order of
``B_action_dependencies[f]``, and none when no action drives it::

    B[f]: (S_f, *S_deps, *num_controls[c] for c in B_action_dependencies[f])

``ActionFactors`` maps one onto the other the way pymdp 1.0's ``Agent`` does:

- ``flatten_B``: factor ``f``'s action axes become one axis of their joint actions in C order (the last action
  factor fastest), of size ``prod(num_controls[c] for c in B_action_dependencies[f])``, or 1 when no action drives
  it (pymdp's ``_flatten_B_action_dims``);
- ``policies``: every sequence of action-factor actions, enumerated as ``aif.enumerate_policies(num_controls, H)``,
  written as per-factor actions of the flattened model (pymdp's ``agent.policies``); a shared action factor keeps
  the state factors it drives consistent, which enumerating per-factor actions would not;
- ``encode`` / ``decode``: action-factor actions ``(..., K)`` to per-factor actions ``(..., num_factors)`` and back
  (pymdp's ``encode_multi_actions`` / ``decode_multi_actions``);
- ``multiaction_probabilities`` / ``action_marginals``: q(pi) summed by the first action of each policy, jointly
  or per action factor (pymdp's ``multiaction_probabilities``).

Usage::

    actions = ActionFactors(num_controls=[2, 3], B_action_dependencies=[[0, 1], [0], []])
    model = aif.GenerativeModel(A=A, B=actions.flatten_B(B), A_dependencies=..., B_dependencies=...)
    agent = aif.Agent.pymdp(model, policies=actions.policies(horizon=2))  # Selection(sampling="full")
    action = actions.decode(agent.step(obs))                               # (2,): one action per action factor

Choose actions from the full posterior (``Selection(sampling="full")``, as pymdp 1.0 does for such models):
per-factor marginals can pick actions that disagree about a shared action factor, which ``decode`` refuses.

Where pymdp 1.0 differs (each silent there, an error here): an action factor that drives no state factor (pymdp
enumerates policies that differ only in it, and ``decode`` cannot recover it); a per-factor action whose state
factors disagree about an action factor they share (pymdp's ``decode_multi_actions`` keeps the last factor's).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .checks import (
    as_numbers,
    check_array_list,
    check_index_lists,
    check_integer,
    check_policy_weights,
    check_probability,
    check_sequence,
    first_index,
)
from .control import enumerate_policies, marginals_of
from .errors import ModelError, ParameterError, PolicyError
from .utils import action_to_index, index_to_action


@dataclass(frozen=True)
class ActionFactors:
    """Action factors and the state factors each drives; validated when built, stored as tuples.

    Args:
        num_controls: ``(K,)`` actions per action factor (pymdp 1.0's ``num_controls`` of the Agent, its
            ``num_controls_multi``); empty when nothing is controlled.
        B_action_dependencies: one list per state factor: the action factors that drive it, in the order of
            its ``B``'s action axes (``[]``: none).
        names: ``(K,)`` names of the action factors (a model description's ``"controls"``), used in messages
            (``control 'move'``); ``None``: messages say ``action factor c``.

    Raises:
        ModelError: a size that is not a positive integer, an action factor out of range or repeated for a
            state factor, an action factor that drives no state factor (its actions could not be told apart
            from each other in any policy or action), more joint actions than an index holds, names of the
            wrong number.
    """

    num_controls: Sequence[int]
    B_action_dependencies: Sequence[Sequence[int]]
    names: Sequence[str] | None = None

    def __post_init__(self) -> None:
        dims = tuple(check_integer(u, f"num_controls[{c}]", error=ModelError)
                     for c, u in enumerate(check_sequence(self.num_controls, "num_controls", ModelError)))
        object.__setattr__(self, "num_controls", dims)
        if self.names is not None:
            names = check_sequence(self.names, "names", ModelError)
            if len(names) != len(dims) or not all(isinstance(n, str) for n in names):
                raise ModelError(f"names must be {len(dims)} strings, one per action factor, got {names!r}")
            object.__setattr__(self, "names", tuple(names))
        deps = check_index_lists(self.B_action_dependencies, "B_action_dependencies")
        if not deps:
            raise ModelError("B_action_dependencies must have one entry per state factor, got none")
        for f, d in enumerate(deps):
            bad = [c for c in d if not 0 <= c < len(dims)]
            if bad:
                raise ModelError(f"B_action_dependencies[{f}] names action factor {bad[0]}, but num_controls lists "
                                 f"{len(dims)} action factors (0 to {len(dims) - 1})")
            if len(set(d)) < len(d):
                raise ModelError(f"B_action_dependencies[{f}] = {d} repeats an action factor")
            if math.prod(dims[c] for c in d) > np.iinfo(np.intp).max:
                raise ModelError(f"state factor {f} has too many joint actions to index: {[dims[c] for c in d]}")
        idle = [c for c in range(len(dims)) if not any(c in d for d in deps)]
        if idle:
            raise ModelError(f"{self._name(idle[0])} drives no state factor (no entry of B_action_dependencies "
                             "names it): policies would differ only in its actions, which nothing could tell apart")
        object.__setattr__(self, "B_action_dependencies", tuple(tuple(d) for d in deps))

    @property
    def num_factors(self) -> int:
        """The number of state factors (entries of ``B_action_dependencies``)."""
        return len(self.B_action_dependencies)

    @property
    def num_action_factors(self) -> int:
        """``K``, the number of action factors (entries of ``num_controls``)."""
        return len(self.num_controls)

    @property
    def factor_controls(self) -> list[int]:
        """Per state factor, the size of its one action axis in the flattened model (that model's
        ``num_controls``): the product of its action factors' sizes, 1 when no action drives it."""
        return [math.prod(self.num_controls[c] for c in d) for d in self.B_action_dependencies]

    def flatten_B(self, B: Sequence[Any]) -> list[np.ndarray]:
        """The transitions with one action axis per state factor, for ``aif.GenerativeModel(B=...)``.

        Args:
            B: one array per state factor, ``B[f]``: ``(S_f, *S_deps, *num_controls[c] for c in
                B_action_dependencies[f])`` (no action axis for a factor no action drives), or its Dirichlet
                counts ``pB`` (the same layout). The entries are not checked here; ``GenerativeModel`` checks them.

        Returns:
            float copies, ``B[f]``: ``(S_f, *S_deps, factor_controls[f])``, the action axes joined in C order (the
            last action factor of ``B_action_dependencies[f]`` fastest: index ``aif.utils.action_to_index``).

        Raises:
            ModelError: a number of arrays other than ``num_factors``; an array whose last axes are not its action
                factors' sizes, or with no axis of next states before them.
        """
        arrays = check_array_list(B, "B")
        if len(arrays) != self.num_factors:
            raise ModelError(f"B has {len(arrays)} arrays but B_action_dependencies has {self.num_factors} entries, "
                             "one per state factor")
        out = []
        for f, (B_f, deps) in enumerate(zip(arrays, self.B_action_dependencies, strict=True)):
            dims = tuple(self.num_controls[c] for c in deps)
            lead = B_f.ndim - len(dims)  # the next state and the states it depends on (none: B_dependencies[f] = [])
            if lead < 1 or B_f.shape[lead:] != dims:
                raise ModelError(f"B[{f}] has shape {B_f.shape}, expected (S_{f}, *S_deps"
                                 f"{''.join(f', {u}' for u in dims)}): after the next state and the states it "
                                 f"depends on, one axis per action factor of B_action_dependencies[{f}] = "
                                 f"{list(deps)}, sized {list(dims)}")
            out.append(B_f.reshape(B_f.shape[:lead] + (math.prod(dims),)))  # (S_f, *S_deps, prod U_c)
        return out

    def policies(self, horizon: int = 1, control_factors: Sequence[int] | None = None) -> np.ndarray:
        """Every sequence of ``horizon`` action-factor actions, as per-factor actions of the flattened model.

        Args:
            horizon: steps per policy.
            control_factors: the action factors whose actions vary; the others stay at action 0 (all by default).

        Returns:
            int ``(prod(num_controls) ** horizon, horizon, num_factors)``, for ``aif.Agent(policies=...)``: row
            ``i`` is ``encode`` of row ``i`` of ``aif.enumerate_policies(num_controls, horizon)`` (the last action
            factor of the last step fastest), pymdp 1.0's ``agent.policies``.
        """
        return self.encode(enumerate_policies(self.num_controls, horizon, control_factors))  # (P, H, K) -> (P, H, F)

    def encode(self, actions: Any) -> np.ndarray:
        """Per-factor actions ``(..., num_factors)`` of action-factor actions ``(..., K)``: state factor ``f`` takes
        the joint index of its action factors (``aif.utils.action_to_index``), 0 when no action drives it.

        Raises:
            PolicyError: not integers of shape ``(..., K)``, or an action out of range (named by its index).
        """
        a = self._check(actions, "actions", self.num_controls, self._name)
        out = np.zeros(a.shape[:-1] + (self.num_factors,), dtype=np.int64)
        for f, deps in enumerate(self.B_action_dependencies):
            if deps:
                out[..., f] = action_to_index(a[..., list(deps)], [self.num_controls[c] for c in deps])
        return out

    def decode(self, action: Any) -> np.ndarray:
        """Action-factor actions ``(..., K)`` of per-factor actions ``(..., num_factors)``: the inverse of
        ``encode`` (pymdp 1.0's ``decode_multi_actions``).

        Raises:
            PolicyError: not integers of shape ``(..., num_factors)``; an action out of range for its state factor;
                two state factors that take different actions of an action factor they share (an action that no
                policy of ``policies`` takes), named by the batch index, the action factor and the two state factors.
        """
        u = self._check(action, "action", self.factor_controls, lambda f: f"state factor {f}")
        out = np.zeros(u.shape[:-1] + (self.num_action_factors,), dtype=np.int64)
        read_from: dict[int, int] = {}  # action factor -> the first state factor that gave it
        for f, deps in enumerate(self.B_action_dependencies):
            if not deps:
                continue
            chosen = index_to_action(u[..., f], [self.num_controls[c] for c in deps])  # (..., len(deps))
            for j, c in enumerate(deps):
                if c in read_from:
                    clash = out[..., c] != chosen[..., j]
                    if clash.any():
                        i = first_index(np.atleast_1d(clash))[:u.ndim - 1]
                        raise PolicyError(f"action{list(i) if i else ''} takes actions {out[..., c][i]} and "
                                          f"{chosen[..., j][i]} of {self._name(c)}: state factors {read_from[c]} and "
                                          f"{f} both depend on it and must agree (no policy takes this action)")
                else:
                    out[..., c], read_from[c] = chosen[..., j], f
        return out

    def multiaction_probabilities(self, q_pi: Any, policies: Any) -> np.ndarray:
        """p(u) = sum of q(pi) over the policies whose first action-factor action is ``u``, jointly.

        Args:
            q_pi: ``(P,)``, the posterior over ``policies``.
            policies: int ``(P, H, num_factors)`` of the flattened model (from ``policies``, or a subset of them).

        Returns:
            ``(*num_controls)``: entry ``u`` is the probability of taking ``u`` (one action per action factor)
            first. pymdp 1.0's ``multiaction_probabilities`` gives the same numbers as a vector over its
            ``unique_multiactions`` (the distinct first actions of the flattened policies, sorted, padded with
            zeros); ``decode`` maps each to ``u``.

        Raises:
            PolicyError / ParameterError: ``q_pi`` not one probability per policy; a policy that ``decode`` refuses.
        """
        q, first = self._first_actions(q_pi, policies)  # (P,), (P, K)
        index = action_to_index(first, self.num_controls) if self.num_action_factors else np.zeros(len(q), int)
        joint = marginals_of(q, index[:, None, None], [math.prod(self.num_controls)])[0]  # (prod num_controls,)
        return joint.reshape(self.num_controls)

    def action_marginals(self, q_pi: Any, policies: Any) -> list[np.ndarray]:
        """p(u_c) = sum of q(pi) over the policies whose first action of action factor ``c`` is ``u_c``: one vector
        ``(num_controls[c],)`` per action factor (the sums of ``multiaction_probabilities`` over the others).
        Arguments and errors as ``multiaction_probabilities``."""
        q, first = self._first_actions(q_pi, policies)
        return marginals_of(q, first[:, None, :], self.num_controls)  # first actions as one-step policies (P, 1, K)

    # -- checks ----------------------------------------------------------------------------------------------

    def _name(self, c: int) -> str:
        return f"action factor {c}" if self.names is None else f"control {self.names[c]!r}"

    def _first_actions(self, q_pi: Any, policies: Any) -> tuple[np.ndarray, np.ndarray]:
        """``q_pi`` checked as a distribution over ``policies``, and the policies' decoded first actions ``(P, K)``."""
        q = check_policy_weights(q_pi, policies)
        check_probability(q, "q_pi", ParameterError)
        return q, self.decode(np.asarray(policies)[:, 0])

    @staticmethod
    def _check(x: Any, label: str, dims: Sequence[int], name: Callable[[int], str]) -> np.ndarray:
        """``x`` as int ``(..., len(dims))`` with ``0 <= x[..., i] < dims[i]``, else a ``PolicyError`` naming the
        entry and ``name(i)``."""
        a = as_numbers(x, label, PolicyError, None)
        if a.ndim == 0 or a.shape[-1] != len(dims) or not (a.size == 0 or np.issubdtype(a.dtype, np.integer)):
            raise PolicyError(f"{label} must be integers of shape (..., {len(dims)}), got {a.dtype} {a.shape}")
        bad = (a < 0) | (a >= np.asarray(dims, dtype=np.int64))
        if bad.any():
            i = first_index(bad)
            raise PolicyError(f"{label}{list(i)} = {a[i]} is out of range for {name(i[-1])}, which has {dims[i[-1]]} "
                              f"actions (0 to {dims[i[-1]] - 1})")
        return a.astype(np.int64, copy=False)


__all__ = ["ActionFactors"]
