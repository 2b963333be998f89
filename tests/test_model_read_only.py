"""A model's arrays are read-only: what is derived from them (``GenerativeModel.derived``, ``aif.fast``'s tables, an
environment's column tables) is computed once, so a change in place would leave it stale. A write raises; copies
stay read-only; ``replace`` makes a changed model; the caller's own arrays are not touched."""

import copy
import pickle

import numpy as np
import pytest

import aif
from aif.envs import TMaze


def test_every_array_of_a_model_is_read_only_in_copies_too():
    model = TMaze().generative_model(learn_A=True)
    model = model.replace(E=np.full(4, 0.25), pD=[np.ones(4), np.ones(2)], D=None)
    for copied in (model, copy.deepcopy(model), pickle.loads(pickle.dumps(model))):
        arrays = [(name, x) for name in ("A", "B", "C", "D", "pA", "pD") for x in getattr(copied, name)]
        for name, x in arrays + [("E", copied.E)]:
            with pytest.raises(ValueError, match="read-only"):
                x.flat[0] = 0.5
            assert not x.flags.writeable, name


def test_a_stale_table_cannot_happen_and_replace_changes_the_model():
    """The NumPy path's cached ln A would miss an edit in place: the edit raises; a replaced model recomputes."""
    env = TMaze()
    model = env.generative_model()
    agent = aif.Agent(model)
    obs = env.reset(seed=0)[0]
    agent.step(obs)
    with pytest.raises(ValueError, match="read-only"):
        model.A[1][:, 1, 0] = [0.0, 0.5, 0.5]
    A = [a.copy() for a in model.A]
    A[1][:, 1, 0] = [0.0, 0.5, 0.5]
    assert A[1].flags.writeable  # a copy is the caller's to change
    agent.model = model.replace(A=A)
    agent.reset()
    agent.step(obs)
    assert agent.model.A[1][1, 1, 0] == 0.5


def test_the_callers_arrays_are_left_writable():
    A, B = [np.eye(2)], [np.eye(2)[:, :, None]]
    model = aif.GenerativeModel(A, B)
    assert A[0].flags.writeable and B[0].flags.writeable and not model.A[0].flags.writeable
    A[0][0, 0] = 0.3  # the model holds its own copy
    assert model.A[0][0, 0] == 1.0
