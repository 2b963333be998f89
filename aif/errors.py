"""Exceptions raised for bad input.

Every check in the package raises a subclass of ``ValueError`` (or ``TypeError``) whose message names the
argument, the index and what was expected, so ``except ValueError`` catches all of them.
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
