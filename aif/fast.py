"""The compiled step: ``aif.Agent.step`` of the common configuration in one numba call.

``Agent.step`` runs the NumPy path (``aif.inference``, ``aif.control``, ``aif.efe``: the readable reference)
unless the agent was built once the kernel was ready (``compile()``, below) and all of the following hold
(``reason(agent)`` names the first that does not); then one call of ``aif._fast_kernels.step`` does the whole
step -- state inference, the EFE of every policy, q(pi), the action and the next prior:

- the agent: an ``aif.Agent`` whose step methods are not overridden; no ``learning``, ``planner``, ``actions``
  (action factors) or ``preprocess``; ``inference`` a ``FixedPoint`` or an ``Exact`` (any settings); EFE terms
  among ``Utility``, ``Risk``, ``Ambiguity`` and ``InfoGain`` (``InfoGain(joint=True)`` only with one modality,
  where it is the same term); ``EFEOptions.guards`` without a state floor or a joint-likelihood guard
  (``Guards.exact()``, ``Guards.pymdp()``; pymdp.legacy's ``Guards.pymdp_legacy()`` floors states and runs on the
  NumPy path);
- the model: at most ``MAX_JOINT`` joint states (the kernel works on the joint state space; with ``Exact``, at
  most its ``max_bytes``);
- the step: every modality's observation an outcome index (a probability vector runs on the NumPy path);
- numba is installed and the environment variable ``AIF_FAST`` is not ``"0"``.

The rule is read again at every step (a new ``agent.model``, ``policies``, ``gamma``, ... rebuilds the tables or
falls back). The two paths give the same beliefs, G, terms and q(pi) to rounding (tests/test_fast.py checks 1e-12
on random models), hence the same actions wherever no two policies tie to within rounding; they are not the same
bytes. So that a seeded program gives the same bytes on every run, an agent keeps the path it was built with: the
compiled one only when the kernel was ready then; nothing switches paths in the middle of an episode.

Nothing is compiled unless asked: ``compile()`` imports numba (about half a second) and compiles the kernel, or
loads it from numba's cache in ``__pycache__`` (``cache=True``; the first compilation on a machine takes tens of
seconds); agents built after it returns take the compiled step. ``compile(block=False)`` does this in a background
thread, and ``AIF_FAST=1`` in the environment starts that thread when the first agent is built; agents built before
it is ready keep the NumPy path. Stochastic selection draws its action in Python with the agent's generator
(``aif.control.draw_action``): the draw of the NumPy path.

Whole episodes: ``aif.rollout`` of such an agent, with deterministic selection, in an environment of ``aif.envs``
whose class tabulates its reward and end (``POMDPEnv.reward_tables``: every POMDP task of ``aif.envs``, any
``POMDPEnv`` itself) runs the episode in a few compiled calls (``run_episode``; ``episode_reason`` names what
prevents it), the environment's steps in the same loop as the agent's: the same beliefs, actions, draws and
rewards to the bit as the step-by-step loop, which takes every other case (tests/test_fast_episode.py). Set
``EPISODES = False`` to step one by one.
"""

from __future__ import annotations

import functools
import math
import operator
import os
import threading
import weakref
from typing import Any, NamedTuple

import numpy as np

from .checks import check_log_habits, check_obs
from .control import draw_action, policy_prefixes, selection_probabilities
from .efe import Ambiguity, InfoGain, Risk, Utility, column_entropy, preferences_at
from .errors import ParameterError, StrategyError
from .inference import Exact, FixedPoint, on_joint

MAX_JOINT = 4096  # joint states the kernel covers (its tables hold ln A over the joint states)
BLOCK_ROWS = 4096  # the most steps in one block of ``FastStep.record``
EPISODES = True  # aif.rollout runs an episode in compiled calls where it can (``run_episode``); False: step by step
EPISODE_CHUNKS = (64, 4096)  # a compiled episode's first call takes 64 steps, each next one 4x more, at most 4096
ENV_VAR = "AIF_FAST"  # "0": every step on the NumPy path; "1": make the kernel in the background at the first agent
TERMS = ("utility", "ambiguity", "state_info_gain", "risk")  # the rows of the kernel's terms: the NumPy path's keys
_CODES = {Utility: 0, Ambiguity: 1, InfoGain: 2, Risk: 3}
_GUARDS = {"exact": 0, "clip": 1, "add": 2}
_STEP_METHODS = ("step", "infer_states", "infer_policies", "sample_action", "_act")
_INT = {int}

_kernels: Any = None  # the module aif._fast_kernels, once compiled
_state: dict[str, Any] = {"status": "idle", "error": None}
_lock = threading.Lock()  # held while the status moves from "idle" to "compiling": one thread makes the kernel
_made = threading.Event()  # set when the making thread is done (ready or unavailable): ``compile()`` waits on it


def ready() -> bool:
    """Whether the compiled kernel is ready."""
    return _kernels is not None


def status() -> dict:
    """``{"status": "idle" | "compiling" | "ready" | "unavailable", "error": why unavailable, or None}``."""
    return {"status": _state["status"], "error": _state["error"]}


def compile(block: bool = True) -> bool:  # noqa: A001  (the verb a reader looks for)
    """Make the kernel: import numba and compile it, or load it from numba's cache. ``block=False`` starts this in
    a daemon thread and returns at once. Returns whether the kernel is ready."""
    with _lock:
        start = _state["status"] == "idle"
        if start:
            _state["status"] = "compiling"
            _made.clear()
    if start and not block:
        threading.Thread(target=_make, name="aif.fast.compile", daemon=True).start()
    elif start:
        _make()
    elif block and _state["status"] == "compiling":  # another thread is making it
        _made.wait()
    return ready()


def _make() -> None:
    global _kernels
    try:
        from . import _fast_kernels as kernels  # imports numba
        from .agent import Agent
        from .model import GenerativeModel

        # one call of each kernel on a one-state model compiles (or loads) the signature every agent uses
        agent = Agent(GenerativeModel([np.ones((1, 1))], [np.ones((1, 1, 1))]))
        tables = Tables(agent)
        out, action = np.empty(tables.size), np.zeros(1, dtype=np.int64)
        kernels.step(np.zeros(1, dtype=np.int64), np.ones(1), tables.ix, tables.fx, out, action)
        kernels.predict(np.ones(1), action, tables.ix, tables.fx, out[:1])
        _kernels = kernels
        _state["status"] = "ready"
    except Exception as e:  # numba missing, or failing on this machine: the NumPy path serves every step
        _state["status"], _state["error"] = "unavailable", f"{type(e).__name__}: {e}"
    finally:
        _made.set()


def batch_module() -> Any:
    """The module ``aif._fast_batch`` (``aif_deep.fast``'s compiled loop over a batch of agents), imported on demand:
    importing it imports numba and compiles its loop, or loads it from numba's cache."""
    from . import _fast_batch

    return _fast_batch


def reason(agent: Any) -> str | None:
    """Why ``agent``'s steps run on the NumPy path (the first rule of the module docstring it breaks), or ``None``
    when the compiled step covers them (observations given as outcome indices)."""
    from .agent import Agent

    if os.environ.get(ENV_VAR, "1") == "0":
        return f"the environment sets {ENV_VAR}=0"
    if _kernels is None:
        return ("the kernel is unavailable: " + _state["error"] if _state["status"] == "unavailable" else
                "the kernel is not compiled (aif.fast.compile())")
    if not isinstance(agent, Agent):
        return f"{type(agent).__name__} is not an aif.Agent"
    if any(getattr(type(agent), n) is not getattr(Agent, n) for n in _STEP_METHODS):
        return f"{type(agent).__name__} overrides the Agent's step methods"
    for name in ("learning", "planner", "actions", "preprocess"):
        if getattr(agent, name) is not None:
            return f"the agent has {name}"
    if type(agent.inference) not in (FixedPoint, Exact):
        return f"inference is {type(agent.inference).__name__}, not FixedPoint or Exact"
    for term in agent.efe_terms:
        if type(term) not in _CODES or (isinstance(term, InfoGain) and term.joint and agent.model.num_modalities > 1):
            return f"the EFE term {term!r} is not one the kernel computes"
    guards = agent.efe.guards
    if guards.state_floor > 0 or guards.joint_likelihood is not None:
        return "EFEOptions.guards has a state floor or a joint-likelihood guard"
    joint = math.prod(agent.model.num_states)
    if joint > MAX_JOINT:
        return f"the model has {joint:,} joint states, above MAX_JOINT = {MAX_JOINT:,}"
    if isinstance(agent.inference, Exact) and 8 * joint > agent.inference.max_bytes:
        return "the joint belief is above Exact.max_bytes (the NumPy path refuses it)"
    return None


def _rows(blocks: list[np.ndarray]) -> tuple[np.ndarray, ...]:
    """Compressed rows of 2-D blocks stacked one under the other: ``(first row of each block, ptr, col, val)``;
    only non-zero entries are kept, in column order (the order of the dense sums)."""
    dense = [b.reshape(b.shape[0], -1) for b in blocks]
    first = np.cumsum([0] + [b.shape[0] for b in dense[:-1]])
    rows, cols = zip(*(np.nonzero(b) for b in dense), strict=True)
    counts = np.concatenate([np.bincount(r, minlength=b.shape[0]) for r, b in zip(rows, dense, strict=True)])
    val = np.concatenate([b[r, c] for b, r, c in zip(dense, rows, cols, strict=True)])
    return first, np.concatenate([[0], np.cumsum(counts)]), np.concatenate(cols), val


def _flags(model: Any, HA: list[np.ndarray]) -> list[int]:
    """Per modality, the work the kernel can skip (``aif._fast_kernels``' ``A_IDENTITY``, ``A_CERTAIN``,
    ``A_SAME_DEPS``): ``A_m`` is the identity over its dependencies (q(o) is the predicted belief itself: 1.0 * x
    summed from 0.0 is x); H[A_m] is zero everywhere (so is the ambiguity, a sum of 0 * q); ``A_m`` reads the
    factors of the modality before it (their joint belief is already made)."""
    flags = []
    for m, A_m in enumerate(model.A):
        A_2d = A_m.reshape(A_m.shape[0], -1)
        same = m > 0 and model.A_dependencies[m] == model.A_dependencies[m - 1]
        flags.append(1 * (A_2d.shape[0] == A_2d.shape[1] and np.array_equal(A_2d, np.eye(A_2d.shape[0])))
                     + 2 * (not HA[m].any()) + 4 * same)
    return flags


def _moves(B: list[np.ndarray]) -> tuple[list[int], np.ndarray, np.ndarray]:
    """The deterministic transitions: per factor, whether every column of ``B_f`` holds one 1 and zeros (``b_det``);
    for those, the next state of each column ``(u, d)``, d the joint of its dependencies (``b_target``, factor f's
    from ``b_t0[f]``). The kernel adds q(d) into its next state, column by column: 1.0 * q summed in the order of the
    dense sum, to the bit."""
    det, targets = [], []
    for B_f in B:
        cols = np.moveaxis(B_f.reshape(B_f.shape[0], -1, B_f.shape[-1]), -1, 1).reshape(B_f.shape[0], -1)  # (S', U*D)
        one = bool(((cols == 0.0) | (cols == 1.0)).all() and (cols.sum(axis=0) == 1.0).all())
        det.append(int(one))
        targets.append(np.argmax(cols, axis=0) if one else np.zeros(0, dtype=np.int64))
    return det, _offsets(targets), np.concatenate(targets)


def _padded(deps: list[list[int]], width: int) -> tuple[np.ndarray, np.ndarray]:
    """Dependency lists as ``(n, width)`` padded with -1, and their lengths."""
    out = np.full((len(deps), width), -1)
    for i, d in enumerate(deps):
        out[i, : len(d)] = d
    return out, np.array([len(d) for d in deps])


def _offsets(arrays: list[np.ndarray]) -> np.ndarray:
    """Where each array starts in their concatenation."""
    return np.cumsum([0] + [np.size(x) for x in arrays[:-1]])


# The kernel's tables, in the order ``aif._fast_kernels`` reads them (its module docstring describes each).
SIZES = ("F", "M", "J", "P", "H")
INT_TABLES = ("S", "soff", "state_of", "O", "a_deps", "a_ndeps", "a_row", "a_ptr", "a_col", "h_off", "c_off", "T",
              "b_deps", "b_ndeps", "b_row", "b_ptr", "b_col", "parent", "actions", "inverse", "lev_off", "first",
              "codes", "settings", "a_flags", "b_det", "b_t0", "b_target")
FLOAT_TABLES = ("lnA_joint", "a_val", "HA", "lnC", "b_val", "ln_E", "signs", "settings_f")


class Tables:
    """What the kernel reads, made once per model and agent settings, packed into ``ix`` (int64) and ``fx``
    (float64) (layout: ``aif._fast_kernels``).

    The per-model pieces the NumPy path also reads (ln A, H[A], ln C, ln E, the prefix tree) come from the same
    caches (``model.derived`` under the same keys, ``aif.control.policy_prefixes``), so both paths read one table.
    """

    def __init__(self, agent: Any) -> None:
        model, method, options, policies = agent.model, agent.inference, agent.efe, agent.policies
        S = list(model.num_states)
        J = math.prod(S)
        guard, outcome, likelihood = method.guard, options.guards.outcome, options.guards.likelihood
        lnA_joint: list[np.ndarray] = []
        HA: list[np.ndarray] = []
        lnC: list[np.ndarray] = []
        T: list[int] = []
        for m, (A_m, deps) in enumerate(zip(model.A, model.A_dependencies, strict=True)):
            ln_A = model.derived(("ln A", m, guard), functools.partial(guard, A_m))  # (O, *deps)
            # on_joint with the outcome axis in front: (O, *deps) -> (O, *S)
            lnA_joint.append(np.broadcast_to(np.moveaxis(on_joint(np.moveaxis(ln_A, 0, -1), [*deps, len(S)],
                                                                  [*S, ln_A.shape[0]]), -1, 0), (ln_A.shape[0], *S)))
            HA.append(model.derived(("H[A]", m, likelihood), functools.partial(column_entropy, A_m, likelihood)))
            T.append(model.C[m].shape[1] if model.C[m].ndim == 2 else 1)
            lnC.append(np.stack([preferences_at(model, m, t, options) for t in range(T[-1])]))  # (T_m, O_m)
        # B_f (S', *deps, U) as rows (u, s') over the joint of its dependencies
        B_rows = [np.moveaxis(B_f.reshape(B_f.shape[0], -1, B_f.shape[-1]), -1, 0).reshape(-1, B_f[0, ..., 0].size)
                  for B_f in model.B]
        a_row, a_ptr, a_col, a_val = _rows(list(model.A))
        b_row, b_ptr, b_col, b_val = _rows(B_rows)
        b_det, b_t0, b_target = _moves(model.B)
        levels = policy_prefixes(policies)
        E = model.E
        ln_E = np.zeros(len(policies)) if E is None else model.derived("ln E", lambda: check_log_habits(E, len(E)))
        exact = isinstance(method, Exact)
        tables_i = dict(
            S=S, soff=np.cumsum([0] + S), state_of=np.unravel_index(np.arange(J), S), O=model.num_obs,
            **dict(zip(("a_deps", "a_ndeps"), _padded(model.A_dependencies, len(S)), strict=True)),
            a_row=a_row, a_ptr=a_ptr, a_col=a_col, h_off=_offsets(HA), c_off=_offsets(lnC), T=T,
            **dict(zip(("b_deps", "b_ndeps"), _padded(model.B_dependencies, len(S)), strict=True)),
            b_row=b_row, b_ptr=b_ptr, b_col=b_col,
            parent=np.concatenate([lv[0] for lv in levels]), actions=np.concatenate([lv[1] for lv in levels]),
            inverse=np.stack([lv[2] for lv in levels]), lev_off=np.cumsum([0] + [len(lv[0]) for lv in levels]),
            first=policies[:, 0, :], codes=[_CODES[type(t)] for t in agent.efe_terms], a_flags=_flags(model, HA),
            b_det=b_det, b_t0=b_t0, b_target=b_target,
            settings=[int(exact), 0 if exact else method.num_iter, int(not exact and method.schedule == "parallel"),
                      int(not exact and method.legacy_initial_vfe), _GUARDS[guard.kind], _GUARDS[outcome.kind],
                      int(agent.selection.sampling == "marginal"), int(agent.selection.mode == "deterministic")])
        tol = -1.0 if exact or method.tol is None else float(method.tol)
        tables_f = dict(lnA_joint=lnA_joint, a_val=a_val, HA=HA, lnC=lnC, b_val=b_val, ln_E=ln_E,
                        signs=[t.sign for t in agent.efe_terms], settings_f=[tol, guard.eps, outcome.eps, agent.gamma])
        ints = [np.ravel(np.asarray(tables_i[name], dtype=np.int64)) for name in INT_TABLES]
        floats = [np.concatenate([np.ravel(np.asarray(x, dtype=float)) for x in tables_f[name]])
                  if isinstance(tables_f[name], list) else np.ravel(np.asarray(tables_f[name], dtype=float))
                  for name in FLOAT_TABLES]
        head = len(SIZES) + len(ints) + 1 + len(floats) + 1
        int_offsets = head + np.cumsum([0] + [x.size for x in ints])
        float_offsets = np.cumsum([0] + [x.size for x in floats])
        P, H = policies.shape[:2]
        self.ix = np.concatenate([[len(S), model.num_modalities, J, P, H], int_offsets, float_offsets, *ints]
                                 ).astype(np.int64)
        self.fx = np.concatenate(floats)
        # where the kernel writes each output in ``out`` (``aif._fast_kernels.step``): the posterior, the four
        # terms, G, q(pi), the next prior
        n = sum(S)
        starts = np.cumsum([0] + S).tolist()
        self.size = 2 * n + 6 * P
        self.num_modalities, self.num_policies, self.num_factors = model.num_modalities, P, len(S)
        self.deterministic = agent.selection.mode == "deterministic"
        self.qs = [slice(a, b) for a, b in zip(starts[:-1], starts[1:], strict=True)]
        self.terms = slice(n, n + 4 * P)  # (4, P) in the order of TERMS
        self.each_term = [slice(n + k * P, n + (k + 1) * P) for k in range(4)]
        self.G, self.q_pi = slice(n + 4 * P, n + 5 * P), slice(n + 5 * P, n + 6 * P)
        self.prior = [slice(n + 6 * P + a, n + 6 * P + b) for a, b in zip(starts[:-1], starts[1:], strict=True)]
        self.flat_qs, self.flat_prior = slice(0, n), slice(n + 6 * P, 2 * n + 6 * P)

    def split(self, out: np.ndarray) -> tuple[list, np.ndarray, np.ndarray, dict]:
        """``(qs, q_pi, G, terms)`` as views of ``out`` ``(..., size)``, what ``step`` wrote: one ``(..., S_f)`` per
        factor, ``(..., P)``, ``(..., P)`` and name -> ``(..., P)`` (``aif.rollout`` reads a whole episode's steps,
        ``(T, size)``, at once)."""
        lead = out.shape[:-1]
        terms = out[..., self.terms].reshape(*lead, 4, self.num_policies)
        return ([out[..., f] for f in self.qs], out[..., self.q_pi], out[..., self.G],
                dict(zip(TERMS, np.moveaxis(terms, -2, 0), strict=True)))


def _settings(agent: Any) -> tuple:
    """What the tables are made from: the objects (compared by identity) and gamma."""
    return (agent.model, agent.policies, agent.inference, agent.efe, agent.efe_terms, agent.selection,
            agent.learning, agent.planner, agent.actions, agent.preprocess, agent.gamma)


class FastStep:
    """The compiled step of an agent built once the kernel was ready: ``step(agent, obs)`` returns the action, or
    ``None`` when this step belongs to the NumPy path (a rule of the module docstring broken, a soft observation).

    ``last`` is ``(out, tables)`` after a compiled step (``out`` ``(tables.size,)`` holds its beliefs, terms, G, q(pi)
    and next prior, ``tables.split(out)``; a new array at every step, or a row of a block while ``record`` runs,
    never written again), ``None`` after a step on the NumPy path: ``aif.rollout`` keeps ``out`` instead of copying
    the agent's arrays one by one. The tables are made when the agent is built (``prepare``) and again when a setting
    changes.
    """

    def __init__(self, agent: Any = None) -> None:
        self.settings: tuple = ()
        self.tables: Tables | None = None
        self.prior: tuple = ((), None)  # the last prior handed to the agent (its vectors) and their flat array
        self.last: tuple[np.ndarray, Tables] | None = None
        self.outcomes = np.empty(0, np.int64)  # the observation's outcome indices, handed to the kernel
        self.left = 0  # compiled steps still to write into rows of ``blocks`` (``record``)
        self.blocks: list[list] = []
        self.deferred: Any = None  # the agent whose arrays wait for the record's end (``record``)
        self.pending: tuple | None = None  # (out, action, tables) of its last step, not yet handed over
        if agent is not None:  # the tables now, with the agent, rather than at its first step
            self.prepare(agent)

    def prepare(self, agent: Any) -> None:
        """Make the tables for the agent's settings as they are now (``None`` where ``reason(agent)`` names one)."""
        self.settings = _settings(agent)
        self.tables = Tables(agent) if reason(agent) is None else None
        self.outcomes = np.empty(agent.model.num_modalities, np.int64)

    def current(self, agent: Any) -> Tables | None:
        """The tables for the agent's settings as they are now (made again if one changed), or ``None`` where
        ``reason(agent)`` names a rule (``step`` does the same check inline)."""
        s = self.settings
        if len(s) != 11 or not all(map(operator.is_, _settings(agent), s)):
            self.prepare(agent)
        return self.tables

    def record(self, steps: int, defer: Any = None) -> list[list]:
        """Write the outputs of the next ``steps`` compiled steps into rows of blocks rather than new arrays
        (``aif.rollout``: an episode's beliefs are then read at its end without stacking an array per step).
        Returns the blocks written since the last call, ``[tables, out (n, size), action (n, F), rows written]``
        each, in order (a new block when the tables change or a block is full); ``record(0)`` stops.

        Each row is written once, like the new array of a step outside a record; with stochastic selection the
        action is drawn in Python (a new array) and the block's action row is left unwritten.

        ``defer``: the agent, when nothing reads its arrays until ``record(0)`` (``aif.rollout`` with an
        environment of this package, which never sees the agent): its steps then advance ``agent.t`` and the
        prior the kernel reads, and hand ``qs``, ``q_pi``, ``G``, ``terms``, ``action`` and ``prior`` (a dozen NumPy
        views of the step's row) to the agent once, from the last step, when the record stops or a step leaves the
        compiled path."""
        if not (isinstance(steps, (int, np.integer)) and not isinstance(steps, bool) and steps >= 0):
            raise ParameterError(f"steps must be an integer >= 0, got {steps!r}")
        self._hand_over()
        blocks, self.blocks, self.left = self.blocks, [], int(steps)
        self.deferred = defer if steps else None
        return blocks

    def _hand_over(self) -> None:
        """Give the deferred agent the outputs of its last compiled step (``record``)."""
        if self.deferred is not None and self.pending is not None:
            self._give(self.deferred, *self.pending)
        self.pending = None

    def _give(self, agent: Any, out: np.ndarray, action: np.ndarray, tables: Tables) -> None:
        """Set the agent's arrays after a compiled step: views of ``out``."""
        get = out.__getitem__
        agent.qs = list(map(get, tables.qs))
        agent.q_pi, agent.G = get(tables.q_pi), get(tables.G)
        agent.terms = dict(zip(TERMS, map(get, tables.each_term)))  # noqa: B905  (4 names, 4 slices)
        agent.search_info = agent.plan = agent.multi_action = None
        agent.action = action
        agent.prior = prior = list(map(get, tables.prior))
        self.prior = (tuple(prior), prior[0] if len(prior) == 1 else get(tables.flat_prior))

    def step(self, agent: Any, obs: Any) -> np.ndarray | None:
        self.last = None
        pending = self.pending
        if pending is not None and self.deferred is agent:
            # the record's agent after a deferred step: nothing has read or set its settings or prior since
            tables = pending[2]
            parts, prior = self.prior
        else:
            # the settings the tables were made from (``_settings``), compared by identity one by one: this check
            # runs at every step, and the chain costs a third of building the tuple and comparing it
            s = self.settings
            if not (len(s) == 11 and agent.model is s[0] and agent.policies is s[1] and agent.inference is s[2]
                    and agent.efe is s[3] and agent.efe_terms is s[4] and agent.selection is s[5]
                    and agent.learning is s[6] and agent.planner is s[7] and agent.actions is s[8]
                    and agent.preprocess is s[9] and agent.gamma is s[10]):
                self.prepare(agent)
            tables = self.tables
            if tables is None:
                self._hand_over()  # the NumPy path reads the agent's arrays
                return None
            parts, prior = self.prior
            given = agent.prior
            if len(given) != len(parts) or not all(map(operator.is_, given, parts)):
                prior = np.concatenate(given)  # set by reset(), by a step on the NumPy path, or by the caller
                parts = tuple(given)
        # A list of Python ints (what aif.envs.AgentWrapper gives) goes to the kernel, which checks the ranges;
        # anything else is checked by check_obs first (its errors; a probability vector takes the NumPy path).
        if not (type(obs) is list and len(obs) == tables.num_modalities and _INT.issuperset(map(type, obs))):
            obs = check_obs(agent.model, obs)
            if set(map(type, obs)) != _INT:
                self._hand_over()
                return None
        outcomes = self.outcomes  # read by the kernel during the call only
        try:
            if len(obs) == 1:
                outcomes[0] = obs[0]
            else:
                outcomes[:] = obs
        except OverflowError:  # an index beyond int64: check_obs's out-of-range error
            check_obs(agent.model, obs)
            raise
        block: list | None = None
        if self.left:  # aif.rollout's episode: the next row of its block
            blocks = self.blocks
            block = blocks[-1] if blocks else None
            if block is None or block[0] is not tables or block[3] == len(block[1]):
                n = min(self.left, BLOCK_ROWS)
                block = [tables, np.empty((n, tables.size)), np.empty((n, tables.num_factors), np.int64), 0]
                blocks.append(block)
            row = block[3]
            out, action = block[1][row], block[2][row]
        else:
            out = np.empty(tables.size)
            action = np.empty(tables.num_factors, np.int64)
        if not _kernels.step(outcomes, prior, tables.ix, tables.fx, out, action):
            self._hand_over()
            check_obs(agent.model, obs)  # an index out of range: its error, with the agent unchanged
            return None
        if not tables.deterministic:
            selection = agent.selection
            probs = selection_probabilities(out[tables.q_pi], agent.policies, selection.mode, agent.alpha,
                                            selection.sampling)
            action = draw_action(probs, agent.policies, selection.mode, agent.rng, selection.sampling)
            _kernels.predict(out[tables.flat_qs], action, tables.ix, tables.fx, out[tables.flat_prior])
        if self.deferred is agent:  # the record's agent: only the prior the next step reads
            self.pending = (out, action, tables)
            self.prior = (parts, out[tables.flat_prior])  # the agent's prior vectors stay those it was given
        else:
            self._give(agent, out, action, tables)
        agent.t += 1
        self.last = (out, tables)
        if block is not None:  # (a row of a record's block)
            block[3] += 1
            self.left -= 1
        return action


def for_agent(agent: Any) -> FastStep | None:
    """The hook of a newly built agent: ``None`` (every step on the NumPy path) unless the kernel is ready and
    ``AIF_FAST`` is not ``"0"``. With ``AIF_FAST=1``, the first call starts making the kernel in the background."""
    flag = os.environ.get(ENV_VAR)
    if flag == "0":
        return None
    if flag == "1" and _state["status"] == "idle":
        compile(block=False)
        return None  # built before the kernel exists, whatever the thread does next: the NumPy path for good
    return FastStep(agent) if _kernels is not None else None


# The compiled episode: the agent's step and the environment's, in one loop.

_ENV_HOOKS = ("reward", "terminal", "step", "_observe", "reward_tables")  # replaced on an instance: step by step


class EnvTables:
    """A tabular process (``aif.envs.POMDPEnv``) as ``aif._fast_kernels.episode`` steps it: its arrays ``A``, ``B``
    as column CDFs (``POMDPEnv``'s own, to the bit: cumulative sums of each column, the last entry infinity),
    the dependencies of each array, and its reward and end (``POMDPEnv.reward_tables``)."""

    def __init__(self, env: Any) -> None:
        from .envs.vector import cdf_table  # the column CDFs POMDPVectorEnv samples from: POMDPEnv's sums

        S = [int(n) for n in env.num_states]
        F = len(S)
        self.cdfs = env._cdfs  # the episode's arrays' tables: new ones when reset is given other arrays
        self.S = np.array(S, dtype=np.int64)
        self.ctrl = int(env.control_factor)
        self.b_deps, self.b_ndeps = _padded(env.B_dependencies, F)
        self.b_U = np.array([B_f.shape[-1] for B_f in env.B], dtype=np.int64)
        b_cdfs = [cdf_table(B_f) for B_f in env.B]  # (*columns, S_f), C order
        self.b_off, self.b_cdf = _offsets(b_cdfs), np.concatenate([c.ravel() for c in b_cdfs])
        self.a_reads, self.a_nreads = _padded(env.A_dependencies, F)
        a_cdfs = [cdf_table(A_m) for A_m in env.A]
        self.a_off, self.a_cdf = _offsets(a_cdfs), np.concatenate([c.ravel() for c in a_cdfs])
        self.o_off = np.cumsum([0] + [int(n) for n in env.num_obs])
        state_reward, outcome_reward, ends = env.reward_tables()
        self.state_reward = np.ascontiguousarray(state_reward, dtype=float)
        self.outcome_reward = np.concatenate([np.asarray(r, dtype=float) for r in outcome_reward])
        self.ends = np.asarray(ends, dtype=np.bool_)
        J = math.prod(S)
        if self.state_reward.shape != (J,) or self.ends.shape != (J,) or self.outcome_reward.shape != (self.o_off[-1],):
            raise ParameterError(f"{type(env).__name__}.reward_tables() returned arrays of shapes "
                                 f"{self.state_reward.shape}, {self.outcome_reward.shape}, {self.ends.shape}; "
                                 f"expected ({J},), ({self.o_off[-1]},) and ({J},)")
        self.draws = F + len(env.A)  # uniforms per step: POMDPEnv.step's

    def arrays(self) -> tuple:
        """The kernel's arguments from ``e_S`` to ``ends``, in its order."""
        return (self.S, self.ctrl, self.b_deps, self.b_ndeps, self.b_U, self.b_off, self.b_cdf, self.a_reads,
                self.a_nreads, self.a_off, self.a_cdf, self.o_off, self.state_reward, self.outcome_reward, self.ends)


_env_tables: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # environment -> its EnvTables


def env_tables(env: Any) -> EnvTables:
    """The ``EnvTables`` of ``env``'s arrays of this episode, made once per set of arrays."""
    tables = _env_tables.get(env)
    if tables is None or tables.cdfs is not env._cdfs:
        tables = _env_tables[env] = EnvTables(env)
    return tables


class Episode(NamedTuple):
    """What ``run_episode`` took: ``steps`` (T) steps, each the agent's compiled step and the environment's.

    Attributes:
        steps: T, at most the steps asked.
        ended: the environment ended the episode at the last step (``terminal``).
        tables: the agent's ``Tables``; ``out`` ``(T, tables.size)``: each step's outputs (``Tables.split``).
        actions: int ``(T, F)``: the agent's actions.
        observations: int ``(T + 1, M)``: the observation each step acted on, and the last one.
        states: int ``(T + 1, F_env)``: the environment's state with each observation.
        rewards: ``(T,)``.
    """

    steps: int
    ended: bool
    tables: Tables
    out: np.ndarray
    actions: np.ndarray
    observations: np.ndarray
    states: np.ndarray
    rewards: np.ndarray


def episode_reason(agent: Any, env: Any, obs: Any) -> str | None:
    """Why ``run_episode(agent, env, obs, ...)`` does not run (``aif.rollout`` then steps one by one), or ``None``:
    the agent's steps are compiled (``reason``) with deterministic selection, ``env`` is an ``AgentWrapper``
    around an environment of ``aif.envs`` (``POMDPEnv``) whose ``reward_tables`` are those of its ``reward`` and
    ``terminal`` (defined by the same class or a subclass of theirs), whose step
    is ``POMDPEnv.step`` (or a shortcut tested equal to it), nothing of its step replaced on the instance, not
    rendering to a window, and ``obs`` is one index per modality (Python ints)."""
    from .envs.gridworld import GridWorld
    from .envs.pomdp import POMDPEnv
    from .envs.tmaze import TMaze
    from .envs.wrappers import AgentWrapper

    fast = getattr(agent, "_fast", None)
    if not EPISODES:
        return "aif.fast.EPISODES is False"
    if not isinstance(fast, FastStep):
        return "the agent's steps are not compiled (aif.fast.compile() before building it)"
    tables = fast.current(agent)
    if tables is None:
        return "the agent's steps are not compiled: " + str(reason(agent))
    if not tables.deterministic:
        return "stochastic action selection draws in Python"
    if type(env) is not AgentWrapper or not env._plain_obs or env._discrete_action is None:
        return "the environment is not an AgentWrapper around an environment of aif.envs"
    inner = env.env
    kind: Any = type(inner)
    if not isinstance(inner, POMDPEnv):
        return f"{kind.__name__} is not a POMDPEnv"
    tabled = _owner(kind, "reward_tables")
    if not (issubclass(tabled, _owner(kind, "reward")) and issubclass(tabled, _owner(kind, "terminal"))):
        return f"{kind.__name__} changes reward or terminal without its own reward_tables"
    if kind.step not in (POMDPEnv.step, GridWorld.step, TMaze.step) or kind._observe is not POMDPEnv._observe:
        return f"{kind.__name__} steps in its own way"
    if any(name in vars(inner) for name in _ENV_HOOKS):
        return "the environment's instance replaces its step, reward or terminal"
    if inner.render_mode == "human" or inner.state is None:
        return "the environment renders to a window, or was not reset"
    if not (type(obs) is list and len(obs) == tables.num_modalities == len(inner.A)
            and _INT.issuperset(map(type, obs))):
        return "the observation is not one index per modality"
    return None


def _owner(kind: type, name: str) -> type:
    """The class of ``kind``'s method resolution order that defines ``name``."""
    return next(c for c in kind.__mro__ if name in c.__dict__)


def run_episode(agent: Any, env: Any, obs: list, steps: int, bar: Any = None) -> Episode:
    """Up to ``steps`` steps of ``agent`` in ``env`` from the observation ``obs``, in compiled calls: what
    ``aif.rollout``'s loop does step by step (``agent.step(obs)``, ``env.step(action)``), to the bit -- the same
    beliefs, actions, observations, states, rewards, the environment's generator left where its own steps leave
    it, the agent and the environment left as after their last step. ``episode_reason`` must be ``None``
    (``StrategyError`` otherwise, with its reason). ``bar``: a tqdm bar updated after each call.

    The environment's uniforms are drawn ahead, a call's worth at a time (``EPISODE_CHUNKS``); when the episode
    ends, or the agent's kernel refuses an observation, before they are used up, the generator is set back and
    draws again only those used. The episode stops short (``Episode.steps < steps``, not ``ended``) only at an
    observation the agent's kernel refuses: its next step then raises the NumPy path's error."""
    why = episode_reason(agent, env, obs)
    if why is not None:
        raise StrategyError(f"run_episode: {why} (aif.rollout steps one by one then)")
    if not (isinstance(steps, (int, np.integer)) and not isinstance(steps, bool) and steps >= 1):
        raise ParameterError(f"steps must be an integer >= 1, got {steps!r}")
    fast, inner = agent._fast, env.env
    tables = fast.current(agent)
    et = env_tables(inner)
    rng = inner.np_random
    bits = rng.bit_generator
    factor, start = env._discrete_action
    prior = np.concatenate(agent.prior)
    obs_now = np.array(obs, dtype=np.int64)
    state = np.array(inner.state, dtype=np.int64)
    done, ended, chunk = 0, False, EPISODE_CHUNKS[0]
    parts: list[tuple] = []
    while done < steps and not ended:
        n = min(chunk, steps - done)
        saved = bits.state
        uniforms = rng.random((n, et.draws))
        out = np.empty((n, tables.size))
        actions = np.empty((n, tables.num_factors), np.int64)
        obs_rec = np.empty((n + 1, len(obs)), np.int64)
        state_rec = np.empty((n + 1, len(state)), np.int64)
        obs_rec[0], state_rec[0] = obs_now, state
        rewards = np.empty(n)
        k, how = _kernels.episode(obs_now, prior, tables.ix, tables.fx, out, actions, uniforms, factor, start,
                                  *et.arrays(), state, obs_rec, state_rec, rewards)
        if k < n:  # the generator as if only the uniforms of the k steps taken had been drawn
            bits.state = saved
            rng.random((k, et.draws))
        if k:
            parts.append((out[:k], actions[:k], obs_rec[:k + 1], state_rec[:k + 1], rewards[:k]))
            prior = out[k - 1, tables.flat_prior]
        done += k
        ended = how == 1
        if bar is not None:
            bar.update(k)
        if how == 2:
            break
        chunk = min(4 * chunk, EPISODE_CHUNKS[1])
    if done:
        last_out, last_action = parts[-1][0][-1], parts[-1][1][-1]
        fast._give(agent, last_out, last_action, tables)
        agent.t += done
        fast.last = (last_out, tables)
        inner.state = tuple(state.tolist())
        inner.obs = obs_now.copy()
    if len(parts) == 1:
        out, actions, obs_rec, state_rec, rewards = parts[0]
    elif parts:
        out, actions, rewards = (np.concatenate([p[i] for p in parts]) for i in (0, 1, 4))
        obs_rec, state_rec = (np.concatenate([parts[0][i][:1]] + [p[i][1:] for p in parts]) for i in (2, 3))
    else:
        out, actions, rewards = np.empty((0, tables.size)), np.empty((0, tables.num_factors), np.int64), np.empty(0)
        obs_rec, state_rec = obs_now[None].copy(), state[None].copy()
    return Episode(done, ended, tables, out, actions, obs_rec, state_rec, rewards)
