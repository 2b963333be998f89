"""aif.utils against pymdp.legacy's utils (norm_dist_obj_arr, construct_controllable_B, onehot) and pymdp 1.0's
(create_controllable_B, get_combination_index, index_to_combination), against aif.enumerate_policies' order, and
its errors."""

import numpy as np
import pytest

import aif
from aif.errors import ModelError, ParameterError, PolicyError
from aif.utils import action_to_index, controllable_B, index_to_action, normalize, onehot

legacy_utils = pytest.importorskip("pymdp.legacy.utils")


def _sizes(rng, nf, low=1, high=5):
    return [int(n) for n in rng.integers(low, high, size=nf)]


@pytest.mark.parametrize("seed", range(20))
def test_normalize_matches_legacy_norm_dist_obj_arr(seed):
    rng = np.random.default_rng(seed)
    arrays = [rng.random((int(rng.integers(1, 5)), *_sizes(rng, int(rng.integers(0, 3))))) for _ in range(3)]
    ours, theirs = normalize(arrays), legacy_utils.norm_dist_obj_arr(legacy_utils.obj_array_from_list(arrays))
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-15)
        np.testing.assert_allclose(a.sum(axis=0), 1.0, atol=1e-12)
    np.testing.assert_allclose(normalize(arrays[0]), legacy_utils.norm_dist(arrays[0]), rtol=0, atol=1e-15)


def test_normalize_other_axis_and_tuple():
    x = np.arange(1.0, 7.0).reshape(2, 3)
    np.testing.assert_allclose(normalize(x, axis=1), x / x.sum(1, keepdims=True))
    np.testing.assert_allclose(normalize(x, axis=-1), x / x.sum(1, keepdims=True))
    assert isinstance(normalize((x, x)), list)


@pytest.mark.parametrize("seed", range(20))
def test_controllable_B_matches_pymdp(seed):
    import pymdp.utils as jutils

    rng = np.random.default_rng(seed)
    num_states = _sizes(rng, int(rng.integers(1, 4)), 1, 6)
    ours = controllable_B(num_states, num_states)
    theirs = legacy_utils.construct_controllable_B(num_states, num_states)  # valid only with U_f == S_f
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_array_equal(a, b)
    num_controls = [int(rng.integers(1, n + 1)) for n in num_states]
    for a, b in zip(controllable_B(num_states, num_controls), jutils.create_controllable_B(num_states, num_controls),
                    strict=True):
        np.testing.assert_array_equal(a, np.asarray(b))
    aif.random_model(rng, num_states, [2]).replace(B=controllable_B(num_states, num_controls))  # a valid B


@pytest.mark.parametrize("seed", range(10))
def test_onehot_matches_legacy(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 10))
    i = int(rng.integers(0, n))
    np.testing.assert_array_equal(onehot(i, n), legacy_utils.onehot(i, n))


@pytest.mark.parametrize("seed", range(20))
def test_action_index_round_trip_and_enumerate_policies_order(seed):
    import pymdp.utils as jutils

    rng = np.random.default_rng(seed)
    num_controls = _sizes(rng, int(rng.integers(1, 5)))
    actions = aif.enumerate_policies(num_controls, 1)[:, 0, :]  # (P, F)
    P = actions.shape[0]
    np.testing.assert_array_equal(action_to_index(actions, num_controls), np.arange(P))
    np.testing.assert_array_equal(index_to_action(np.arange(P), num_controls), actions)
    np.testing.assert_array_equal(np.asarray(jutils.get_combination_index(actions, num_controls)), np.arange(P))
    np.testing.assert_array_equal(np.asarray(jutils.index_to_combination(np.arange(P), num_controls)), actions)
    for k in rng.integers(0, P, size=5):
        index = action_to_index(actions[k], num_controls)
        assert isinstance(index, int) and index == k
        np.testing.assert_array_equal(index_to_action(int(k), num_controls), actions[k])
    batch = rng.integers(0, P, size=(3, 4))
    assert index_to_action(batch, num_controls).shape == (3, 4, len(num_controls))
    np.testing.assert_array_equal(action_to_index(index_to_action(batch, num_controls), num_controls), batch)


def test_normalize_errors():
    with pytest.raises(ModelError, match=r"x has a column summing to 0 at index \(1,\)"):
        normalize(np.array([[1.0, 0.0], [2.0, 0.0]]))
    with pytest.raises(ModelError, match=r"x\[1\] has a column summing to 0 at index \(0, 2\)"):
        normalize([np.ones(3), np.ones((2, 2, 3)) * [1, 1, 0]])
    with pytest.raises(ModelError, match="negative entry"):
        normalize(np.array([2.0, -1.0]))
    with pytest.raises(ModelError, match="non-finite"):
        normalize(np.array([1.0, np.nan]))
    with pytest.raises(ModelError, match="must be numbers"):
        normalize("abc")
    with pytest.raises(ParameterError, match=r"axis 2 is not an axis of x, of shape \(2, 2\)"):
        normalize(np.ones((2, 2)), axis=2)


def test_controllable_B_errors():
    with pytest.raises(ModelError, match=r"num_states\[1\] must be .*positive integer, got -2"):
        controllable_B([2, -2], [2, 2])
    with pytest.raises(ModelError, match=r"num_controls\[0\] must be .*positive integer, got 0"):
        controllable_B([2], [0])
    with pytest.raises(ModelError, match="factor 0 has 3 controls but 2 states"):
        controllable_B([2], [3])
    with pytest.raises(ModelError, match="num_states has 2 factors but num_controls has 1"):
        controllable_B([2, 2], [2])
    with pytest.raises(ModelError, match="must be a list"):
        controllable_B(3, 3)


def test_onehot_errors():
    with pytest.raises(ParameterError, match="n must be a positive integer, got -1"):
        onehot(0, -1)
    with pytest.raises(ParameterError, match=r"i must be an integer in 0\.\.2, got 3"):
        onehot(3, 3)
    with pytest.raises(ParameterError, match="got -1"):
        onehot(-1, 3)


def test_action_index_errors():
    with pytest.raises(PolicyError, match=r"action\[1\] = 3 is out of range for factor 1 with 3 controls"):
        action_to_index([0, 3], [2, 3])
    with pytest.raises(PolicyError, match=r"action\[0\] = -1"):
        action_to_index([-1, 0], [2, 3])
    with pytest.raises(PolicyError, match=r"shape \(\.\.\., 2\)"):
        action_to_index([0, 1, 0], [2, 3])
    with pytest.raises(PolicyError, match="integers"):
        action_to_index([0.5, 1], [2, 3])
    with pytest.raises(PolicyError, match="index 6 is out of range for the 6 joint actions"):
        index_to_action(6, [2, 3])
    with pytest.raises(PolicyError, match="index -1 is out of range"):
        index_to_action([0, -1], [2, 3])
    with pytest.raises(PolicyError, match="index must be integers"):
        index_to_action(1.0, [2, 3])
    with pytest.raises(PolicyError, match=r"num_controls\[1\] must be a positive integer, got -3"):
        index_to_action(0, [2, -3])
    with pytest.raises(PolicyError, match="at least one factor"):
        action_to_index(np.zeros(0, dtype=int), [])
