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

from abc import ABC
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from .errors import ParameterError, StrategyError
from .learning import WNORM_EXACT, WNORM_LEGACY, WNorm
from .maths import CLIP, EXACT, LEGACY, LogGuard

# pymdp.legacy's spm_MDP_G: ln(x + exp(-16)) inside the ambiguity, and joint states below exp(-16) dropped.
LEGACY_G = LogGuard("add", float(np.exp(-16)))


@dataclass(frozen=True)
class Guards:
    """How each logarithm inside the EFE treats zeros.

    Attributes:
        outcome: the log in the outcome entropy H[q(o)] (and in risk, which shares it).
        likelihood: the log in the likelihood entropy H[p(o | s)] (the ambiguity).
        preference: the log of softmax(C) when C is normalised; ``EXACT`` is the log-softmax itself.
        state_floor: joint states with q(s) at or below this are dropped from the ambiguity and the outcome
            entropy (not from the q(o) that scores utility): pymdp.legacy's ``spm_MDP_G`` uses exp(-16); 0 keeps
            every state.
    """

    outcome: LogGuard = EXACT
    likelihood: LogGuard = EXACT
    preference: LogGuard = EXACT
    state_floor: float = 0.0

    def __post_init__(self) -> None:
        for name in ("outcome", "likelihood", "preference"):
            if not isinstance(getattr(self, name), LogGuard):
                raise StrategyError(f"Guards.{name} must be an aif.maths.LogGuard (EXACT, CLIP or LEGACY), "
                                    f"got {getattr(self, name)!r}")
        if not (np.isfinite(self.state_floor) and 0 <= self.state_floor < 1):
            raise ParameterError(f"Guards.state_floor must be in [0, 1), got {self.state_floor!r}")

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
    """

    normalize_C: bool = True
    guards: Guards = field(default_factory=Guards)

    def __post_init__(self) -> None:
        if not isinstance(self.normalize_C, (bool, np.bool_)):
            raise StrategyError(f"EFEOptions.normalize_C must be True or False, got {self.normalize_C!r}")
        if not isinstance(self.guards, Guards):
            raise StrategyError(f"EFEOptions.guards must be an aif.Guards (Guards.exact(), Guards.pymdp(), "
                                f"Guards.pymdp_legacy()), got {self.guards!r}")

    @classmethod
    def pymdp_legacy(cls) -> EFEOptions:
        """pymdp.legacy's ``update_posterior_policies_factorized``."""
        return cls(normalize_C=True, guards=Guards.pymdp_legacy())

    @classmethod
    def pymdp(cls) -> EFEOptions:
        """pymdp 1.0's ``update_posterior_policies``."""
        return cls(normalize_C=False, guards=Guards.pymdp())


class Term(ABC):
    """One additive term of G. Subclasses are frozen dataclasses; ``key`` names the term in the returned dict
    and ``sign`` says how it enters G (+1: a cost, as is; -1: a value, subtracted)."""

    key: ClassVar[str]
    sign: ClassVar[float]


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
    """

    joint: bool = False
    key: ClassVar[str] = "state_info_gain"
    sign: ClassVar[float] = -1.0


@dataclass(frozen=True)
class Novelty(Term):
    """Parameter information gain about A (``param="A"``) or B (``"B"``) from the Dirichlet counts pA / pB.

    Attributes:
        param: ``"A"`` or ``"B"``.
        wnorm: how the counts are weighed (``aif.WNORM_LEGACY``: 1/a0 - 1/a, pymdp.legacy; ``WNORM_SPM``;
            ``WNORM_EXACT``: pymdp 1.0's exact expected information gain).
    """

    param: str = "A"
    wnorm: WNorm = WNORM_LEGACY
    sign: ClassVar[float] = -1.0

    def __post_init__(self) -> None:
        if self.param not in ("A", "B"):
            raise ParameterError(f"Novelty.param must be 'A' or 'B', got {self.param!r}")
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
    key: ClassVar[str] = "inductive_cost"
    sign: ClassVar[float] = 1.0


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
        if not 0 < self.discount <= 1:
            raise ParameterError(f"TerminalValue.discount must be in (0, 1], got {self.discount!r}")


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
            hint = _NAMES.get(term, "aif.Utility(), aif.InfoGain(), ...") if isinstance(term, str) else \
                "aif.Utility(), aif.InfoGain(), ..."
            raise StrategyError(f"EFE terms are objects, not {type(term).__name__}s: use {hint} in place of "
                                f"{term!r}")
    keys = [t.key for t in terms]
    repeated = sorted({k for k in keys if keys.count(k) > 1})
    if repeated:
        raise StrategyError(f"the term {repeated[0]!r} is given twice")
    return terms


_NAMES = {"utility": "aif.Utility()", "risk": "aif.Risk()", "ambiguity": "aif.Ambiguity()",
          "state_info_gain": "aif.InfoGain()", "pA_info_gain": "aif.Novelty('A')", "pB_info_gain": "aif.Novelty('B')"}

__all__ = ["Guards", "EFEOptions", "Term", "Utility", "Risk", "Ambiguity", "InfoGain", "Novelty", "InductiveCost",
           "TerminalValue", "DEFAULT_TERMS", "check_terms", "LEGACY_G", "WNORM_EXACT"]
