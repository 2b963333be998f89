"""``aif._fast_batch.step_batch``: ``aif.fast``'s kernel over many agents in one call gives, for every agent, the bytes
of the single-agent kernel; agents with equal inputs may be stepped once; an index out of range is reported."""

import numpy as np
import pytest

import aif
from aif import fast

pytest.importorskip("numba")


@pytest.fixture(scope="module")
def batch(compiled_kernel):
    """The batched loop (and ``aif.fast``'s kernel, restored afterwards: ``compiled_kernel``)."""
    from aif import _fast_batch

    return _fast_batch


@pytest.mark.parametrize("deterministic", [True, False])
def test_every_agent_gets_the_single_kernels_bytes(batch, deterministic):
    rng = np.random.default_rng(1)
    model = aif.random_model(rng, [3, 2, 2], [3, 4], [2, 2, 1], [[0, 2], [1]], [[0], [1, 0], [2]])
    selection = aif.Selection() if deterministic else aif.Selection("stochastic")
    agent = aif.Agent(model, policy_horizon=2, selection=selection, rng=np.random.default_rng(0))
    tables = fast.Tables(agent)
    N = 40
    obs = np.stack([rng.integers(n, size=N) for n in model.num_obs], -1)
    obs[20:] = obs[:20]  # half the agents repeat the first half's inputs
    prior = np.concatenate([rng.dirichlet(np.ones(s), size=N) for s in model.num_states], -1)
    prior[20:] = prior[:20]
    expected = np.zeros((N, tables.size))
    expected_action = np.zeros((N, 3), dtype=np.int64)
    for i in range(N):
        assert fast._kernels.step(obs[i], prior[i], tables.ix, tables.fx, expected[i], expected_action[i])
    for once, stepped in ((False, N), (True, 20)):
        out, action = np.zeros((N, tables.size)), np.zeros((N, 3), dtype=np.int64)
        assert batch.step_batch(obs, prior, prior.view(np.int64), tables.ix, tables.fx, out, action, once) == stepped
        assert out.tobytes() == expected.tobytes()
        if deterministic:
            np.testing.assert_array_equal(action, expected_action)
    prior[25, 0] = np.nextafter(prior[25, 0], 1.0)  # one bit apart: stepped on its own
    out, action = np.zeros((N, tables.size)), np.zeros((N, 3), dtype=np.int64)
    assert batch.step_batch(obs, prior, prior.view(np.int64), tables.ix, tables.fx, out, action, True) == 21


def test_index_out_of_range_is_reported(batch):
    model = aif.random_model(np.random.default_rng(2), [3], [3, 2], [2])
    tables = fast.Tables(aif.Agent(model))
    obs = np.array([[0, 1], [2, 0], [1, 2], [3, 0]])
    prior = np.full((4, 3), 1 / 3)
    out, action = np.zeros((4, tables.size)), np.zeros((4, 1), dtype=np.int64)
    for once in (False, True):
        assert batch.step_batch(obs, prior, prior.view(np.int64), tables.ix, tables.fx, out, action, once) == -1 - 2
