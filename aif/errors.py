"""Exceptions raised for bad input.

Every check in the package raises a subclass of ``AifError`` (itself a ``ValueError``; ``StrategyError`` is also a
``TypeError`` and ``CallOrderError`` a ``RuntimeError``) whose message names the argument, the index and what
was expected, so ``except aif.AifError`` (or ``except ValueError``) catches all of them.
"""


class AifError(ValueError):
    """Base class of the package's input errors."""


class ModelError(AifError):
    """A generative model's arrays disagree with each other or are not distributions."""


class ObservationError(AifError):
    """An observation is out of range, of the wrong length, or not a distribution."""


class PolicyError(AifError):
    """A policy array has the wrong shape or an action out of range."""


class ParameterError(AifError):
    """A scalar setting (precision, learning rate, tolerance, ...) is out of its range."""


class BeliefError(AifError):
    """A belief or prior over states is the wrong size or not a probability distribution."""


class StrategyError(AifError, TypeError):
    """A setting or strategy object is of the wrong kind or for the other backend (a string, a class or a number
    where an object is expected; a NumPy-only strategy given to ``aif_deep`` or the reverse)."""


class CallOrderError(AifError, RuntimeError):
    """A method was called before the step it needs (``infer_policies`` before ``infer_states``, ...)."""
