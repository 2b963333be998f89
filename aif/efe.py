"""The vocabulary of expected free energy: named terms and the conventions they are computed under.

G is a sum of named terms, each defined for one predicted belief q(s_t | pi) at one future step and summed
over the steps of a policy. A value term (utility, information gain, novelty) enters G with a minus sign, a
cost term (risk, ambiguity, inductive cost, terminal value) with a plus sign::

    G(pi) = sum_t sum_{term} term.sign * term(q(s_t | pi))

The caller composes G from term objects, as optax chains transforms:
``terms=(aif.Utility(), aif.InfoGain())`` is the default, ``(aif.Risk(), aif.Ambiguity())`` gives the same G,
``(aif.Utility(), aif.InfoGain(joint=True), aif.Novelty("A"))`` adds SPM's joint information gain and the
novelty of A. Every backend (``aif``'s NumPy engines, ``aif_deep``'s torch engines) computes the same terms
under the same ``EFEOptions``: a term object is a description; its equation is written once per backend.

The references differ in conventions, and agreement to 1e-10 needs the same convention, so conventions are
values (``EFEOptions``, ``Guards``, ``aif.maths.LogGuard``) passed to every engine, never strings.
"""

from __future__ import annotations

import functools
import math
from abc import ABC
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from string import ascii_letters
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from scipy.special import logsumexp, xlogy

from . import checks
from .checks import check_choice, check_dependencies, check_fraction, check_integer
from .errors import BeliefError, ModelError, ObservationError, ParameterError, PolicyError, StrategyError
from .learning import WNORM_EXACT, WNORM_LEGACY, WNorm, spm_wnorm
from .maths import CLIP, EXACT, JOINT_LIMIT, LEGACY, LogGuard, batch_contract, log_softmax, outer, softmax

if TYPE_CHECKING:
    from .model import GenerativeModel

Beliefs = list[np.ndarray]

# pymdp.legacy's spm_MDP_G: ln(x + exp(-16)) inside the ambiguity, and joint states below exp(-16) dropped.
LEGACY_G = LogGuard("add", float(np.exp(-16)))
MAX_EFE_BYTES = 4 << 30  # default EFEOptions.max_bytes: the largest NumPy evaluation of the policies (4 GiB)


@dataclass(frozen=True)
class Guards:
    """How each logarithm inside the EFE treats zeros.

    Attributes:
        outcome: the log in the outcome entropy H[q(o)] (and in risk, which shares it).
        likelihood: the log in the likelihood entropy H[p(o | s)] (the ambiguity).
        preference: the log of softmax(C) when C is normalised; ``EXACT`` is the log-softmax itself.
        state_floor: joint states with q(s) at or below this are dropped from the ambiguity and the outcome
            entropy (not from the q(o) that scores utility): pymdp.legacy's ``spm_MDP_G`` uses exp(-16); 0 keeps
            every state. The joint information gain floors the joint of all factors.
        joint_likelihood: with ``InfoGain(joint=True)`` and several modalities, the log of the joint likelihood
            p(o_1, ..., o_M | s) = prod_m p(o_m | s) in the ambiguity, guarded as one number, as pymdp.legacy's
            non-factorised ``update_posterior_policies`` does (``spm_MDP_G``: ln(prod_m A_m + exp(-16))).
            ``None`` (default): each modality's entropy under ``likelihood``, summed; the same with ``EXACT``;
            with ``LEGACY_G`` about exp(-16) (prod_m O_m - sum_m O_m) more ambiguity per step.
    """

    outcome: LogGuard = EXACT
    likelihood: LogGuard = EXACT
    preference: LogGuard = EXACT
    state_floor: float = 0.0
    joint_likelihood: LogGuard | None = None

    def __post_init__(self) -> None:
        optional = () if self.joint_likelihood is None else ("joint_likelihood",)
        for name in ("outcome", "likelihood", "preference", *optional):
            if not isinstance(getattr(self, name), LogGuard):
                raise StrategyError(f"Guards.{name} must be an aif.maths.LogGuard (EXACT, CLIP or LEGACY), "
                                    f"got {getattr(self, name)!r}")
        check_fraction(self.state_floor, "Guards.state_floor", "[0, 1)")

    @classmethod
    def exact(cls) -> Guards:
        """0 ln 0 = 0 and exact logs everywhere (the default)."""
        return cls()

    @classmethod
    def pymdp(cls) -> Guards:
        """pymdp 1.0: ln max(x, eps) for both entropies."""
        return cls(outcome=CLIP, likelihood=CLIP, preference=CLIP)

    @classmethod
    def pymdp_legacy(cls) -> Guards:
        """pymdp.legacy: ln(x + 1e-16) for outcomes and C, ln(x + exp(-16)) and the state floor in spm_MDP_G."""
        return cls(outcome=LEGACY, likelihood=LEGACY_G, preference=LEGACY, state_floor=float(np.exp(-16)))


@dataclass(frozen=True)
class EFEOptions:
    """The conventions every EFE term is computed under.

    Attributes:
        normalize_C: turn C into log-probabilities with a log-softmax over outcomes before use (SPM and
            pymdp.legacy do; pymdp 1.0 uses C as given, so its G differs by ``-logsumexp(C_m)`` per step and
            modality, and its q(pi) is the same).
        guards: ``Guards``: how each logarithm treats zeros.
        max_bytes: the most memory one NumPy evaluation of the policies may take, estimated before it starts
            (``efe_bytes``; default ``MAX_EFE_BYTES``, 4 GiB); ``aif_deep`` evaluates in chunks of its
            ``memory_budget`` instead.
    """

    normalize_C: bool = True
    guards: Guards = field(default_factory=Guards)
    max_bytes: int = MAX_EFE_BYTES

    def __post_init__(self) -> None:
        if not isinstance(self.normalize_C, (bool, np.bool_)):
            raise StrategyError(f"EFEOptions.normalize_C must be True or False, got {self.normalize_C!r}")
        if not isinstance(self.guards, Guards):
            raise StrategyError(f"EFEOptions.guards must be an aif.Guards (Guards.exact(), Guards.pymdp(), "
                                f"Guards.pymdp_legacy()), got {self.guards!r}")
        check_integer(self.max_bytes, "EFEOptions.max_bytes")

    @classmethod
    def pymdp_legacy(cls) -> EFEOptions:
        """pymdp.legacy's ``update_posterior_policies_factorized``."""
        return cls(normalize_C=True, guards=Guards.pymdp_legacy())

    @classmethod
    def pymdp_legacy_joint(cls) -> EFEOptions:
        """pymdp.legacy's non-factorised ``update_posterior_policies`` with ``InfoGain(joint=True)``: the legacy
        guards, and ``spm_MDP_G``'s guard on the joint likelihood (``Guards.joint_likelihood = LEGACY_G``)."""
        return cls(normalize_C=True, guards=replace(Guards.pymdp_legacy(), joint_likelihood=LEGACY_G))

    @classmethod
    def pymdp(cls) -> EFEOptions:
        """pymdp 1.0's ``update_posterior_policies``."""
        return cls(normalize_C=False, guards=Guards.pymdp())


class Term(ABC):
    """One additive term of G. Subclasses are frozen dataclasses; ``key`` names the term in the returned dict
    and ``sign`` says how it enters G (+1: a cost, as is; -1: a value, subtracted)."""

    key: ClassVar[str]
    sign: ClassVar[float]

    def for_model(self, model: Any) -> "Term":
        """The term for ``model``'s current parameters: itself, unless it was built from them (an Agent that
        learns B calls this after each update, e.g. ``InductiveCost.from_goals``'s I is made again)."""
        return self


@dataclass(frozen=True)
class Utility(Term):
    """Expected log-preference, E_{q(o|pi)}[ln p(o)] with ln p(o) = C (normalised or not, ``EFEOptions``)."""

    key: ClassVar[str] = "utility"
    sign: ClassVar[float] = -1.0


@dataclass(frozen=True)
class Risk(Term):
    """KL[q(o | pi) || p(o)] = -utility - H[q(o | pi)]."""

    key: ClassVar[str] = "risk"
    sign: ClassVar[float] = 1.0


@dataclass(frozen=True)
class Ambiguity(Term):
    """E_{q(s|pi)} H[p(o | s)], summed over modalities."""

    key: ClassVar[str] = "ambiguity"
    sign: ClassVar[float] = 1.0


@dataclass(frozen=True)
class InfoGain(Term):
    """State information gain H[q(o | pi)] - E_{q(s|pi)} H[p(o | s)].

    Attributes:
        joint: ``False`` sums one information gain per modality (both pymdp agents); ``True`` uses the joint
            outcome of all modalities (SPM's ``spm_MDP_G``), the exact term. For independent modalities the
            per-modality sum is never below the joint value.
        max_outcomes: with ``joint``, the most joint outcomes (the product of the modalities' sizes) per belief;
            a model with more is refused when the agent is built (``ParameterError``), before any allocation.
    """

    joint: bool = False
    max_outcomes: int = 1_000_000
    key: ClassVar[str] = "state_info_gain"
    sign: ClassVar[float] = -1.0

    def __post_init__(self) -> None:
        check_integer(self.max_outcomes, "InfoGain.max_outcomes")


@dataclass(frozen=True)
class Novelty(Term):
    """Parameter information gain about A (``param="A"``) or B (``"B"``) from the Dirichlet counts pA / pB, or about
    D (``"D"``, from pD: ``pD_info_gain``, SPM's "Bayesian surprise about initial conditions"), which scores each
    policy's belief about a trial's first step and so needs SPM's policies over the trial
    (``aif.SequenceOptions(policies="trial")``; refused elsewhere).

    Attributes:
        param: ``"A"``, ``"B"`` or ``"D"``.
        wnorm: how the counts are weighed (``aif.WNORM_LEGACY``: 1/a0 - 1/a, pymdp.legacy; ``WNORM_SPM``;
            ``WNORM_EXACT``: pymdp 1.0's exact expected information gain).
    """

    param: str = "A"
    wnorm: WNorm = WNORM_LEGACY
    sign: ClassVar[float] = -1.0

    def __post_init__(self) -> None:
        check_choice(self.param, "Novelty.param", ("A", "B", "D"))
        if not isinstance(self.wnorm, WNorm):
            raise StrategyError(f"Novelty.wnorm must be an aif.WNorm (WNORM_LEGACY, WNORM_SPM, WNORM_EXACT), "
                                f"got {self.wnorm!r}")

    @property
    def key(self) -> str:  # type: ignore[override]
        return f"p{self.param}_info_gain"


@dataclass(frozen=True)
class InductiveCost(Term):
    """The inductive cost of ``aif.planning.inductive``: a large cost on steps whose predicted states leave the
    set from which a goal stays reachable (``I`` from ``aif.planning.inductive_matrix``)."""

    I: Sequence[Any] = ()
    epsilon: float = 1e-3
    goals: Sequence[Any] | None = None  # from_goals: the goal states, threshold and depth I was made from
    threshold: float = 0.1
    depth: int = 1
    key: ClassVar[str] = "inductive_cost"
    sign: ClassVar[float] = 1.0

    def __post_init__(self) -> None:
        check_fraction(self.epsilon, "InductiveCost.epsilon", "(0, 1)")

    def for_model(self, model: Any) -> "InductiveCost":
        """With ``goals`` (``from_goals``), the term whose I is made from ``model.B`` (pymdp 1.0's ``Agent`` makes I
        again from the learned B in ``infer_parameters``); a term given its I stays as it is."""
        if self.goals is None:
            return self
        return InductiveCost.from_goals(model, self.goals, self.depth, self.threshold, self.epsilon)

    @classmethod
    def from_goals(cls, model: GenerativeModel, H: Sequence[Any], depth: int = 1, threshold: float = 0.1,
                   epsilon: float = 1e-3) -> "InductiveCost":
        """The term for goal states ``H`` (one 0/1 vector ``(S_f,)`` per factor) under ``model.B``, with pymdp 1.0's
        ``Agent(use_inductive=True)`` defaults (``inductive_depth``, ``inductive_threshold``,
        ``inductive_epsilon``): ``aif.Agent(model, efe_terms=(*aif.DEFAULT_TERMS, InductiveCost.from_goals(...)))``.
        Its ``I`` is made from ``model.B``; an Agent that learns B makes it again from the learned B after each
        update (``for_model``)."""
        from .planning.inductive import inductive_matrix  # (planning builds on this module)

        return cls(inductive_matrix(H, model.B, threshold, depth, model.B_dependencies), epsilon,
                   [np.array(h, float) for h in H], threshold, depth)


@dataclass(frozen=True, eq=False)
class TerminalValue(Term):
    """A cost of the beliefs at the horizon, ``discount**H * value(q(s_H | pi))`` (e.g. a learned EFE-to-go).

    Attributes:
        value: callable from beliefs (one ``(n, S_f)`` array or tensor per factor) to ``(n,)``.
        discount: in (0, 1].
    """

    value: Callable[..., Any] | None = None
    discount: float = 1.0
    key: ClassVar[str] = "terminal_value"
    sign: ClassVar[float] = 1.0

    def __post_init__(self) -> None:
        if not callable(self.value):
            raise StrategyError(f"TerminalValue.value must be callable (beliefs -> values), got {self.value!r}")
        check_fraction(self.discount, "TerminalValue.discount", "(0, 1]")


@dataclass(frozen=True, eq=False)
class GoalDivergence(Term):
    """Terminal matching: ``weight * KL[q(s_H | pi) || p_g]``, the divergence of the (mean-field) beliefs at the
    horizon from a goal distribution over the joint hidden state, e.g. ``aif.planning.model_goal``'s
    p*(s) ∝ exp(V(s) / alpha) or the optimal visitation rho*(s) (``aif.planning.goals``).

    ``(Utility(), GoalDivergence(ln_p, 1 / lam))`` is the terminal-matching objective
    ``KL[q(s_H | pi) || p_g] - lam sum_t utility`` divided by ``lam`` (the same q(pi) with gamma scaled by lam);
    ``(Utility(), InfoGain(), GoalDivergence(ln_p, w))`` is the soft return with a terminal attraction. The
    linear attraction ``V(s_H) / alpha = ln p*(s_H) + const`` is ``-KL`` without the entropy of q(s_H), a
    ``TerminalValue``. Logs are exact (0 ln 0 = 0) under every ``EFEOptions``.

    Attributes:
        log_goal: ``ln p_g``, shape ``tuple(num_states)`` (the joint hidden state, first factor slowest): finite
            (p_g > 0 everywhere, so the KL is finite) and normalised (``logsumexp = 0`` to 1e-8); checked here,
            its shape against the model by ``check_counts``. Stored as a read-only float array.
        weight: > 0, the weight of the KL in G.
    """

    log_goal: Any = None
    weight: float = 1.0
    key: ClassVar[str] = "goal_divergence"
    sign: ClassVar[float] = 1.0

    def __post_init__(self) -> None:
        ln_p = checks.as_numbers(self.log_goal, "GoalDivergence.log_goal", ParameterError)
        checks.check_finite(ln_p, "GoalDivergence.log_goal", nonneg=False, error=ParameterError)
        total = float(logsumexp(ln_p)) if ln_p.size else -np.inf
        if not abs(total) <= 1e-8:
            raise ParameterError(f"GoalDivergence.log_goal must be normalised log-probabilities: its logsumexp is "
                                 f"{total:.3g}, not 0 (subtract scipy.special.logsumexp(log_goal))")
        checks.check_positive(self.weight, "GoalDivergence.weight")
        ln_p = ln_p.copy()
        ln_p.flags.writeable = False
        object.__setattr__(self, "log_goal", ln_p)


DEFAULT_TERMS: tuple[Term, ...] = (Utility(), InfoGain())


def check_terms(terms: Sequence[Term]) -> tuple[Term, ...]:
    """The terms as a non-empty tuple of ``Term`` objects with distinct keys, or a ``StrategyError``."""
    if isinstance(terms, (str, Term)) or not isinstance(terms, Sequence):
        raise StrategyError(f"terms must be a tuple of EFE term objects such as (aif.Utility(), aif.InfoGain()), "
                            f"got {terms!r}")
    terms = tuple(terms)
    if not terms:
        raise StrategyError("terms must hold at least one EFE term, e.g. (aif.Utility(), aif.InfoGain())")
    for term in terms:
        if not isinstance(term, Term):
            hint = _NAMES.get(str(term), "aif.Utility(), aif.InfoGain(), ...")
            raise StrategyError(f"EFE terms are objects, not {type(term).__name__}s: use {hint} in place of "
                                f"{term!r}")
    keys = [t.key for t in terms]
    repeated = sorted({k for k in keys if keys.count(k) > 1})
    if repeated:
        raise StrategyError(f"the term {repeated[0]!r} is given twice")
    return terms


_NAMES = {"utility": "aif.Utility()", "risk": "aif.Risk()", "ambiguity": "aif.Ambiguity()",
          "state_info_gain": "aif.InfoGain()", "pA_info_gain": "aif.Novelty('A')", "pB_info_gain": "aif.Novelty('B')",
          "pD_info_gain": "aif.Novelty('D')"}


# ----------------------------------------------------------------------------------------------------------
# The NumPy definition of every term, for one predicted belief per row (rows: policies, prefixes, steps).


def log_preferences(C_m: np.ndarray, t: int | np.ndarray, options: EFEOptions) -> np.ndarray:
    """ln p(o) of modality m at step(s) ``t``: ``(O,)`` for an int, ``(n, O)`` for an ``(n,)`` array of steps
    (a time-varying C ``(O, T)`` is read at column ``min(t, T - 1)``)."""
    if C_m.ndim == 1:
        C_t = C_m
    else:
        C_t = C_m[:, np.minimum(t, C_m.shape[1] - 1)]
        C_t = C_t.T if C_t.ndim == 2 else C_t
    if not options.normalize_C:
        return C_t
    guard = options.guards.preference
    return log_softmax(C_t) if guard.kind == "exact" else guard(softmax(C_t))


def column_entropy(A_m: np.ndarray, guard: LogGuard) -> np.ndarray:
    """H[p(o | s)] for every state: ``-sum_o A_m ln A_m`` under ``guard``, shape ``A_m.shape[1:]``."""
    return -guard.xlogx(A_m).sum(axis=0)


def preferences_at(model: GenerativeModel, m: int, t: int | np.ndarray, options: EFEOptions) -> np.ndarray:
    """``log_preferences(model.C[m], t, options)`` read from a table of every column, made once per model."""
    C_m = model.C[m]
    key = ("ln C", m, options.normalize_C, options.guards.preference)
    if C_m.ndim == 1:
        return model.derived(key, lambda: log_preferences(C_m, 0, options))
    table = model.derived(key, lambda: log_preferences(C_m, np.arange(C_m.shape[1]), options))  # (T, O)
    return table[np.minimum(t, C_m.shape[1] - 1)]


class _Joints:
    """Joint beliefs over each dependency set, computed once per step and shared by the modalities."""

    def __init__(self, qs: Beliefs) -> None:
        self.qs, self.cache = qs, {}  # type: ignore[var-annotated]

    def joint(self, deps: Sequence[int]) -> np.ndarray:
        key = tuple(deps)
        if key not in self.cache:
            qs = [self.qs[f] for f in deps]
            self.cache[key] = qs[0] if len(deps) == 1 else outer(qs, batch=True).reshape(qs[0].shape[0], -1)
        return self.cache[key]

    def expect(self, tensors: list[np.ndarray], deps: Sequence[int]) -> list[np.ndarray]:
        """E_q[T] for tensors ``T`` of shape ``(X, *deps)``: list of (n, X)."""
        qs_deps = [self.qs[f] for f in deps]
        D = math.prod(q.shape[1] for q in qs_deps)
        if qs_deps[0].shape[0] * D > JOINT_LIMIT:  # too large to hold: contract one factor at a time
            return [batch_contract(T, qs_deps) for T in tensors]
        return [self.joint(deps) @ T.reshape(T.shape[0], D).T for T in tensors]


def _joint_outcome_terms(model: GenerativeModel, qs: Beliefs, guards: Guards) -> tuple[np.ndarray, np.ndarray | None]:
    """H[q(o_1, ..., o_M)] of the joint outcome of all modalities over the joint states above the floor, per row
    (n,); with ``guards.joint_likelihood``, also the ambiguity E_q(s) H[p(o_1, ..., o_M | s)] (else ``None``)."""
    factors, outcomes = ascii_letters[: model.num_factors], ascii_letters[26: 26 + model.num_modalities]
    subs_A = [outcomes[m] + "".join(factors[f] for f in deps) for m, deps in enumerate(model.A_dependencies)]
    if guards.state_floor > 0 or guards.joint_likelihood is not None:
        q = outer(qs, batch=True).reshape(qs[0].shape[0], -1)  # (n, prod S): the joint of all factors
        q = np.where(q > guards.state_floor, q, 0.0)
        ones = [np.ones(s) for s in model.num_states]  # (a factor no modality reads still indexes the joint)
        p_o = np.einsum(",".join([*subs_A, *factors]) + "->" + outcomes + factors, *model.A, *ones, optimize=True)
        p_o = p_o.reshape(math.prod(model.num_obs), -1)  # (prod O, prod S): p(o_1, ..., o_M | s)
        qo = q @ p_o.T
        guard = guards.joint_likelihood
        ambiguity = None if guard is None else q @ -guard.xlogx(p_o).sum(axis=0)
    else:  # one contraction, without the joint of all factors
        subs = ["z" + factors[f] for f in range(model.num_factors)] + subs_A
        qo = np.einsum(",".join(subs) + "->z" + outcomes, *qs, *model.A, optimize=True)
        ambiguity = None
    return -guards.outcome.xlogx(qo.reshape(qo.shape[0], -1)).sum(axis=-1), ambiguity


def step_terms(model: GenerativeModel, qs: Beliefs, qs_prev: Beliefs | None, qs_root: Beliefs | None,
               actions: np.ndarray | None, t: int | np.ndarray, terms: Sequence[Term], options: EFEOptions
               ) -> dict[str, np.ndarray]:
    """Every EFE term of one predicted belief per row: the one definition every NumPy engine calls.

    Args:
        qs: predicted beliefs q(s_t | pi), ``qs[f]`` of shape ``(n, S_f)``.
        qs_prev: the beliefs before the action, ``(n, S_f)`` per factor (``Novelty("B")`` only).
        qs_root: the current beliefs the policy starts from, ``(n, S_f)`` per factor (``InductiveCost`` only).
        actions: ``(n, F)`` the action taken from ``qs_prev`` (``Novelty("B")`` only).
        t: the step (an int, or ``(n,)`` per row) that picks the column of a time-varying C.
        terms, options: as ``expected_free_energy``; inputs are trusted (checked by the public callers).

    Returns:
        ``(n,)`` arrays: ``utility``, ``ambiguity``, ``state_info_gain`` and the keys of the extra terms
        asked for (risk and the terminal value are formed from the sums by ``combine``).
    """
    guards = options.guards
    n = qs[0].shape[0]
    out = {"utility": np.zeros(n), "ambiguity": np.zeros(n)}
    entropy = np.zeros(n)
    joints = _Joints(qs)
    qo = []
    for m, (A_m, deps) in enumerate(zip(model.A, model.A_dependencies, strict=True)):
        H_A = model.derived(("H[A]", m, guards.likelihood), functools.partial(column_entropy, A_m, guards.likelihood))
        qo_m, ambiguity = joints.expect([A_m, H_A[None]], deps)
        if guards.state_floor > 0:  # joint states at or below the floor leave the ambiguity and H[q(o)]
            q_joint = joints.joint(deps)
            kept = np.where(q_joint > guards.state_floor, q_joint, 0.0)
            qo_kept, ambiguity = kept @ A_m.reshape(A_m.shape[0], -1).T, kept @ H_A.reshape(-1, 1)
        else:
            qo_kept = qo_m
        ln_C = preferences_at(model, m, t, options)
        out["utility"] += qo_m @ ln_C if ln_C.ndim == 1 else (qo_m * ln_C).sum(-1)
        out["ambiguity"] += ambiguity[:, 0]
        entropy += -guards.outcome.xlogx(qo_kept).sum(axis=-1)
        qo.append(qo_m)
    if any(isinstance(x, InfoGain) and x.joint for x in terms) and model.num_modalities > 1:
        entropy, joint_ambiguity = _joint_outcome_terms(model, qs, guards)
        if joint_ambiguity is not None:
            out["ambiguity"] = joint_ambiguity
    out["state_info_gain"] = entropy - out["ambiguity"]
    for term in terms:
        if isinstance(term, Novelty) and term.param == "A":
            out[term.key] = pA_info_gain(model.pA, qs, model.A_dependencies, qo, term.wnorm)  # type: ignore[arg-type]
        elif isinstance(term, Novelty):  # (counts, qs_prev and actions are there: check_counts, the caller)
            out[term.key] = pB_info_gain(model.pB, qs, qs_prev, actions,  # type: ignore[arg-type]
                                         model.B_dependencies, wnorm=term.wnorm)
        elif isinstance(term, InductiveCost):
            out[term.key] = inductive_cost(qs, qs_root, term)  # type: ignore[arg-type]
    return out


def inductive_cost(qs: Beliefs, qs_root: Beliefs, term: InductiveCost) -> np.ndarray:
    """``-sum_f [column j of I_f is not all zero] qs_f (1 - I_f[m]) ln epsilon`` per row (>= 0), with ``j`` the
    argmax of the root belief and ``m`` one row before its distance to the goal (``aif.planning.inductive``)."""
    log_eps = float(CLIP(term.epsilon))
    cost = np.zeros(qs[0].shape[0])
    for q_f, root_f, I_f in zip(qs, qs_root, term.I, strict=True):
        I_f = np.asarray(I_f, dtype=float)
        column = I_f[:, np.argmax(root_f, axis=-1)]  # (depth, n)
        m = np.maximum(np.argmax(column, axis=0) - 1, 0)
        cost -= np.clip(column.sum(axis=0), 0.0, 1.0) * (q_f * ((1.0 - I_f[m]) * log_eps)).sum(axis=-1)
    return cost


def goal_divergence(qs: Beliefs, log_goal: np.ndarray) -> np.ndarray:
    """KL[q(s) || p_g] per row for mean-field beliefs ``qs[f]`` ``(n, S_f)`` and ``log_goal`` ``tuple(num_states)``:
    ``sum_f sum_s q_f ln q_f - sum_s q(s) ln p_g(s)`` with q(s) the product of the factors, ``(n,)`` (>= 0)."""
    neg_entropy = sum(xlogy(q_f, q_f).sum(axis=-1) for q_f in qs)
    return neg_entropy - outer(qs, batch=True).reshape(qs[0].shape[0], -1) @ log_goal.reshape(-1)


def combine(out: dict[str, np.ndarray], terms: Sequence[Term], qs_last: Beliefs, horizon: int) -> np.ndarray:
    """Complete the summed terms in place (risk; the terminal terms of the last beliefs) and return G."""
    out["risk"] = -out["utility"] - out["state_info_gain"] - out["ambiguity"]
    for term in terms:
        if isinstance(term, TerminalValue):
            value = term.value(qs_last)  # type: ignore[misc]
            out[term.key] = np.asarray(value, dtype=float).reshape(-1) * term.discount ** horizon
        elif isinstance(term, GoalDivergence):
            out[term.key] = term.weight * goal_divergence(qs_last, term.log_goal)
    return sum(term.sign * out[term.key] for term in terms)  # type: ignore[return-value]


def check_counts(model: GenerativeModel, terms: Sequence[Term]) -> None:
    """A ``ParameterError`` when a novelty term asks for Dirichlet counts the model lacks, an inductive cost has
    the wrong number of matrices or the joint information gain would enumerate too many outcomes."""
    for term in terms:
        if isinstance(term, Novelty) and getattr(model, "p" + term.param) is None:
            raise ParameterError(f"parameter information gain needs Dirichlet counts: the model has no "
                                 f"p{term.param}")
        if isinstance(term, Novelty) and term.param == "D":  # (the trial mode scores it apart: pD_info_gain)
            raise ParameterError("Novelty('D') scores each policy's belief about the trial's first step: it needs "
                                 "policies over the trial, aif.SequenceOptions(policies='trial')")
        if isinstance(term, InfoGain) and term.joint and math.prod(model.num_obs) > term.max_outcomes:
            raise ParameterError(f"InfoGain(joint=True) enumerates the joint outcome of modalities of sizes "
                                 f"{list(model.num_obs)}: {math.prod(model.num_obs):,} outcomes per belief, above "
                                 f"max_outcomes = {term.max_outcomes:,}; use InfoGain() or raise max_outcomes")
        if isinstance(term, InductiveCost) and len(term.I) != model.num_factors:
            raise ParameterError(f"InductiveCost.I has {len(term.I)} matrices but the model has "
                                 f"{model.num_factors} factors")
        if isinstance(term, GoalDivergence):
            check_goal(term, model.num_states)


def check_goal(term: GoalDivergence, num_states: Sequence[int]) -> None:
    """A ``ParameterError`` unless ``term.log_goal`` has the shape ``tuple(num_states)`` of the joint hidden state."""
    if term.log_goal.shape != tuple(num_states):
        raise ParameterError(f"GoalDivergence.log_goal has shape {term.log_goal.shape}, expected {tuple(num_states)} "
                             f"(the model's joint hidden state)")


def efe_bytes(model: GenerativeModel, num_policies: int, horizon: int, terms: Sequence[Term]) -> int:
    """About the peak memory of ``prefix_tree_efe`` (and the sequence scorer) for ``num_policies`` distinct
    policies: per policy at the deepest step, its beliefs, each modality's outcomes and joint over the factors
    it depends on, what the information-gain terms add, the prefix tree and the summed terms. Within a factor of
    two of the peak ``tracemalloc`` measures once the policies dominate (tests/test_allocation.py)."""
    S, O = model.num_states, model.num_obs
    joint_A = sum(o + math.prod(S[g] for g in d) for o, d in zip(O, model.A_dependencies, strict=True))
    per = 2 * sum(S) + joint_A + 2 * horizon + len(terms) + 4
    for t in terms:
        if isinstance(t, InfoGain) and t.joint and len(O) > 1:
            per += 2 * math.prod(O)
        elif isinstance(t, Novelty):
            per += joint_A if t.param == "A" else sum(s + math.prod(S[g] for g in d)
                                                      for s, d in zip(S, model.B_dependencies, strict=True))
    return 8 * int(num_policies) * per


def check_efe_size(model: GenerativeModel, P: int, H: int, terms: Sequence[Term], options: EFEOptions,
                   rows: int = 1) -> None:
    """A ``PolicyError`` naming the estimate when scoring ``P`` policies of horizon ``H``, ``rows`` beliefs each
    at once (1 for the prefix tree, H for the sequence scorer), would take more than ``options.max_bytes``."""
    size = efe_bytes(model, P * rows, H, terms)
    if size > options.max_bytes:
        raise PolicyError(f"scoring {P:,} policies of horizon {H} on a model with {list(model.num_states)} states "
                          f"and {list(model.num_obs)} outcomes would take about {size:,} bytes, above "
                          f"EFEOptions.max_bytes = {options.max_bytes:,}: give fewer policies (a shorter horizon, "
                          "fewer control_factors, a planner), or raise max_bytes")


def _counts(p, name, axes):
    """Dirichlet counts, finite and non-negative with a positive total per column (zeros are masked), one array
    of ``axes`` or more per modality or factor."""
    out = checks.check_array_list(p, name)
    for i, x in enumerate(out):
        checks.check_dirichlet(x, f"{name}[{i}]")
        if x.ndim < axes:
            raise ModelError(f"{name}[{i}] has shape {x.shape}, expected at least {axes} axes")
    return out


def _masked_wnorm(p, wnorm):
    # Zero counts (structural zeros, e.g. after model reduction) carry no novelty; both pymdps mask them.
    return np.where(p > 0, spm_wnorm(p, wnorm), 0.0)


def pA_info_gain(pA: Sequence[np.ndarray], qs_t: Beliefs, A_dependencies: Sequence[Sequence[int]] | None = None,
                 qo_t: Beliefs | None = None, wnorm: WNorm = WNORM_LEGACY) -> np.ndarray:
    """Expected information gain about A's parameters at one future step, for every policy.

    Args:
        pA: counts, ``pA[m]`` of shape ``(num_obs[m], *num_states[g] for g in A_dependencies[m])``;
            non-negative (zero counts are masked out).
        qs_t: predicted beliefs, ``qs_t[f]`` of shape ``(P, num_states[f])``.
        A_dependencies: factors each modality depends on; all factors by default.
        qo_t: predicted outcomes, ``qo_t[m]`` of shape ``(P, num_obs[m])``; by default the outcomes
            predicted by the mean of ``pA`` (which is what both pymdps use when ``A`` is that mean).
        wnorm: ``WNORM_LEGACY`` (default; pymdp.legacy), ``WNORM_SPM`` or ``WNORM_EXACT`` (pymdp 1.0).

    Returns:
        ``(P,)``: the information gain (positive; subtract it from G). Summed over a policy's steps it is
        pymdp.legacy's ``calc_pA_info_gain_factorized``; with ``WNORM_EXACT`` it is minus pymdp 1.0's
        ``calc_negative_pA_info_gain`` for each step.
    """
    pA, qs_t = _counts(pA, "pA", 1), checks.check_array_list(qs_t, "qs_t", BeliefError)
    A_dependencies = check_dependencies(A_dependencies, len(pA), len(qs_t), "A", lambda m: list(range(len(qs_t))))
    if qo_t is not None and len(qo_t) != len(pA):
        raise ObservationError(f"qo_t has {len(qo_t)} entries but pA has {len(pA)} modalities")
    if not qs_t or qs_t[0].ndim != 2:
        raise BeliefError(f"qs_t must hold one (num_policies, num_states[f]) array per factor, got {qs_t!r:.200}")
    P = qs_t[0].shape[0]
    gain = np.zeros(P)
    for m, pA_m in enumerate(pA):
        pA_m = np.asarray(pA_m, dtype=float)
        qs_deps = _batched_beliefs(qs_t, A_dependencies[m], pA_m.shape[1:], P, "qs_t", f"pA[{m}]")
        if qo_t is None:
            qo_m = batch_contract(pA_m / pA_m.sum(axis=0, keepdims=True), qs_deps)
        else:
            qo_m = np.asarray(qo_t[m], dtype=float)
            if qo_m.shape != (P, pA_m.shape[0]):
                raise ObservationError(f"qo_t[{m}] has shape {qo_m.shape}, expected ({P}, {pA_m.shape[0]}) "
                                       f"(policies, outcomes)")
        gain -= batch_contract(_masked_wnorm(pA_m, wnorm)[None], [qo_m, *qs_deps])[:, 0]
    return gain


def _batched_beliefs(qs, deps, sizes, P, name, owner):
    """``[qs[g] for g in deps]`` as float arrays, each checked to be ``(P, sizes[i])``."""
    out = []
    for g, n in zip(deps, sizes, strict=False):  # (every g is a factor of qs: check_dependencies)
        q = np.asarray(qs[g], dtype=float)
        if q.shape != (P, n):
            raise BeliefError(f"{name}[{g}] has shape {q.shape}, expected ({P}, {n}) (policies, states) "
                                   f"for {owner}")
        out.append(q)
    return out


def pD_info_gain(pD: Sequence[np.ndarray], qs_first: Beliefs, wnorm: WNorm = WNORM_LEGACY) -> np.ndarray:
    """Expected information gain about D's parameters, for every policy: ``-sum_f W(pD[f]) . q(s_f,0 | pi)``.

    With policies over a trial each policy holds its own belief about the trial's first state, which would update
    the initial-state counts at the trial's end (``learn_trial``): SPM's ``spm_MDP_VB_X`` adds this to every step's
    ``G`` ("Bayesian surprise about initial conditions", ``-spm_dot(wD, x(:, 1, k))``; SPM does not mask zero counts).

    Args:
        pD: counts, ``pD[f]`` of shape ``(num_states[f],)``; non-negative (zero counts are masked out).
        qs_first: each policy's belief about the first step, ``qs_first[f]`` of shape ``(P, num_states[f])``.
        wnorm: as ``pA_info_gain``'s (SPM12's trial mode: ``aif.learning.WNORM_SPM12_TRIAL``).

    Returns:
        ``(P,)``: the information gain (positive; subtract it from G).
    """
    pD, qs_first = _counts(pD, "pD", 1), checks.check_array_list(qs_first, "qs_first", BeliefError)
    if len(qs_first) != len(pD) or not qs_first[0].ndim == 2:
        raise BeliefError(f"qs_first must hold one (num_policies, num_states[f]) array per factor of pD ({len(pD)})")
    P = qs_first[0].shape[0]
    gain = np.zeros(P)
    for f, pD_f in enumerate(pD):
        (q_f,) = _batched_beliefs(qs_first, [f], pD_f.shape, P, "qs_first", f"pD[{f}]")
        gain -= q_f @ _masked_wnorm(pD_f, wnorm)
    return gain


def pB_info_gain(pB: Sequence[np.ndarray], qs_next: Beliefs, qs_prev: Beliefs, actions_t: np.ndarray,
                 B_dependencies: Sequence[Sequence[int]] | None = None, wnorm: WNorm = WNORM_LEGACY) -> np.ndarray:
    """Expected information gain about B's parameters over one future transition, for every policy.

    Args:
        pB: counts, ``pB[f]`` of shape ``(num_states[f], *num_states[g] for g in B_dependencies[f],
            num_controls[f])``; non-negative (zero counts are masked out).
        qs_next: predicted beliefs after the transition, ``qs_next[f]`` of shape ``(P, num_states[f])``.
        qs_prev: beliefs before it, ``qs_prev[f]`` of shape ``(P, num_states[f])`` (the current posterior,
            repeated over policies, at a policy's first step).
        actions_t: ``(P, num_factors)`` int, the action each policy takes on each factor at this step.
        B_dependencies: factors each factor's transition depends on; ``[[0], [1], ...]`` by default.
        wnorm: ``WNORM_LEGACY`` (default; pymdp.legacy), ``WNORM_SPM`` or ``WNORM_EXACT`` (pymdp 1.0).

    Returns:
        ``(P,)``: the information gain (positive; subtract it from G). Summed over a policy's steps it is
        pymdp.legacy's ``calc_pB_info_gain_interactions``.
    """
    pB, actions_t = _counts(pB, "pB", 2), checks.as_numbers(actions_t, "actions_t", PolicyError, None)
    qs_next, qs_prev = (checks.check_array_list(q, name, BeliefError) for q, name in ((qs_next, "qs_next"),
                                                                                      (qs_prev, "qs_prev")))
    B_dependencies = check_dependencies(B_dependencies, len(pB), len(qs_next), "B", lambda f: [f])
    if actions_t.ndim != 2 or actions_t.shape[1] != len(pB) or not np.issubdtype(actions_t.dtype, np.integer):
        raise PolicyError(f"actions_t has shape {actions_t.shape} and dtype {actions_t.dtype}, expected integer "
                          f"actions of shape (num_policies, {len(pB)})")
    P = actions_t.shape[0]
    gain = np.zeros(P)
    for f, pB_f in enumerate(pB):
        pB_f = np.asarray(pB_f, dtype=float)
        qs_deps = _batched_beliefs(qs_prev, B_dependencies[f], pB_f.shape[1:-1], P, "qs_prev", f"pB[{f}]")
        (q_next,) = _batched_beliefs(qs_next, [f], pB_f.shape[:1], P, "qs_next", f"pB[{f}]")
        num_controls = pB_f.shape[-1]
        if not ((actions_t[:, f] >= 0) & (actions_t[:, f] < num_controls)).all():
            bad = int(actions_t[:, f][(actions_t[:, f] < 0) | (actions_t[:, f] >= num_controls)][0])
            raise PolicyError(f"actions_t holds action {bad} for factor {f} with {num_controls} controls "
                              f"(0 to {num_controls - 1})")
        # Contract every action slice, then pick each policy's: (P, U_f) scores rather than a (P, *B_f) gather.
        per_action = batch_contract(np.moveaxis(_masked_wnorm(pB_f, wnorm), -1, 0), [q_next, *qs_deps])
        gain -= np.take_along_axis(per_action, actions_t[:, f : f + 1].astype(np.intp), axis=1)[:, 0]
    return gain



__all__ = ["Guards", "EFEOptions", "Term", "Utility", "Risk", "Ambiguity", "InfoGain", "Novelty", "InductiveCost",
           "TerminalValue", "GoalDivergence", "goal_divergence", "check_goal",
           "DEFAULT_TERMS", "check_terms", "LEGACY_G", "WNORM_EXACT", "step_terms", "combine",
           "log_preferences", "inductive_cost", "check_counts", "pA_info_gain", "pB_info_gain", "pD_info_gain",
           "MAX_EFE_BYTES",
           "efe_bytes", "check_efe_size"]
