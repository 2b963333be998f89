"""MkDocs hooks of the documentation site (named in mkdocs.yml; not a page).

Griffe reads a continuation line of a ``Raises:`` entry that is not indented under its entry as a new entry, fails
to split it into ``exception: description`` and warns, which ``mkdocs build --strict`` turns into a failure. The
docstrings below have such lines (the text of the line is dropped from the page until they are re-indented). They
are listed here, by file and line text, so that the build stays strict for everything else; an entry that no longer
warns fails the build too, so the list cannot go stale. Remove an entry when its docstring is fixed.
"""

from __future__ import annotations

import logging

KNOWN_UNINDENTED_RAISES = {
    ("aif/actions.py", "factors' sizes, or with no axis of next states before them."),
    ("aif/actions.py", "two state factors that take different actions of an action factor they share (an action that "
                       "no"),
    ("aif/actions.py", "policy of ``policies`` takes), named by the batch index, the action factor and the two state "
                       "factors."),
    ("aif/labels.py", "whatever ``GenerativeModel`` refuses."),
    ("aif/labels.py", "no policy of ``policies`` takes)."),
    ("aif/labels.py", "control (both index ``B``'s given axes), or what ``aif.actions.ActionFactors`` refuses of the "
                      "controls (a"),
    ("aif/labels.py", "control that drives no factor)."),
    ("aif/learning.py", "a belief of the wrong size or not a distribution."),
    ("aif/learning.py", "ParameterError, ModelError, BeliefError as ``update_A`` (BeliefError also when both or "
                        "neither of"),
    ("aif/learning.py", "different zeros; ``s_dir`` negative, or zero where ``r_dir`` is not."),
    ("aif/learning.py", "of their counts left without mass, or actions removed from a model with a policy prior ``E`` "
                        "(whose"),
    ("aif/learning.py", "disagree, or the posterior counts hold less than the prior's (forgetting)."),
}
_PREFIX = "Failed to get 'exception: description' pair from '"
_seen: set[tuple[str, str]] = set()
_log = logging.getLogger("mkdocs.hooks")


def _known(record: logging.LogRecord) -> bool:
    """Whether a log record is one of the known griffe warnings (and note that it was seen)."""
    message = record.getMessage()
    if _PREFIX not in message:
        return False
    location, _, rest = message.partition(f": {_PREFIX}")
    path = location.removeprefix("griffe: ").rsplit(":", 1)[0]
    key = (path, rest.removesuffix("'"))
    if key in KNOWN_UNINDENTED_RAISES:
        _seen.add(key)
        return True
    return False


class _DropKnown(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not _known(record)


def on_config(config: object) -> None:
    """Drop the known warnings before MkDocs counts them (its handlers, the strict counter included, sit on the
    ``mkdocs`` logger by now)."""
    _seen.clear()
    for handler in logging.getLogger("mkdocs").handlers:
        if not any(isinstance(f, _DropKnown) for f in handler.filters):
            handler.addFilter(_DropKnown())


def on_post_build(config: object) -> None:
    """Warn (a failure under --strict) for each known entry that no longer warns: the list must be kept exact."""
    for path, text in sorted(KNOWN_UNINDENTED_RAISES - _seen):
        _log.warning("docs/hooks.py lists %s: %r, which griffe no longer warns about: remove the entry", path, text)
