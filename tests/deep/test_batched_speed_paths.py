"""The batched CPU speed paths give the numbers of the general paths, bit for bit.

- ``aif_deep.inference.IndexLikelihood`` (the summed log-likelihood of outcome indices read from per-model tables)
  equals ``TabularModel.log_likelihood`` followed by ``aif.inference.by_dependencies``, and ``fixed_point_last`` on
  it equals ``fixed_point``, on random models (one to three factors, sparse A dependencies, groups of up to four
  modalities, every log guard), also when a group's joint table is split by ``TABLE_LIMIT``.
- The Agent's step over an integer observation array (the fast path) equals its step over the same observations
  given per modality (the general path): posteriors, priors, G, q(pi), actions, over a rollout with learning-free
  settings, several inference schedules and stochastic selection from the same seed.
- ``POMDPVectorEnv``'s draws (``_Draws``: the padded one-array layout and one table per variable) equal
  ``inverse_cdf`` per variable.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import aif
import aif_deep
from aif.envs import POMDPVectorEnv, TMaze
from aif.envs.vector import _Draws, cdf_table, inverse_cdf
from aif.errors import ObservationError
from aif.inference import by_dependencies
from aif_deep import inference
from aif_deep.inference import IndexLikelihood, fixed_point, fixed_point_last

SHAPES = {  # num_states, num_obs, A_dependencies
    "one factor": ([5], [3, 4, 2], [[0], [0], [0]]),
    "two factors, one group": ([4, 2], [4, 3, 2], [[0, 1], [0, 1], [0, 1]]),
    "three factors, sparse": ([3, 2, 4], [3, 5, 2, 4, 3], [[0], [0, 2], [1, 2], [0, 2], [0, 2]]),
    "three factors, group of four": ([2, 3, 2], [2, 3, 2, 4], [[0, 1, 2]] * 4),
}
GUARDS = [aif.maths.CLIP, aif.maths.LEGACY, aif.maths.EXACT]


def _model(shape, seed, concentration=1.0):
    num_states, num_obs, deps = SHAPES[shape]
    return aif.random_model(np.random.default_rng(seed), num_states, num_obs, A_dependencies=deps,
                            concentration=concentration)


def _obs(model, b, seed):
    rng = np.random.default_rng(seed)
    return np.stack([rng.integers(0, n, b) for n in model.num_obs], -1)  # (b, M)


@pytest.mark.parametrize("limit", [inference.TABLE_LIMIT, 80])  # 80: larger groups split into runs
@pytest.mark.parametrize("guard", GUARDS, ids=lambda g: g.kind)
@pytest.mark.parametrize("shape", SHAPES)
def test_index_tables_equal_the_models_log_likelihood(shape, guard, limit, monkeypatch):
    monkeypatch.setattr(inference, "TABLE_LIMIT", limit)
    model = aif_deep.TabularModel.from_aif(_model(shape, 0, concentration=0.3), device="cpu")
    b = 37
    obs = _obs(model, b, 1)
    table = IndexLikelihood(model, guard)
    expected, groups = by_dependencies(model.log_likelihood([torch.as_tensor(o) for o in obs.T], guard),
                                       model.A_dependencies)
    assert table.groups == groups
    for L, E in zip(table(obs), expected, strict=True):  # (*S, b) against (b, *S)
        assert torch.equal(L, E.movedim(0, -1))
    if limit == 80 and shape == "three factors, group of four":
        assert [len(t) for t in table.tables] == [3]  # a joint table of two modalities, then one table each


@pytest.mark.parametrize("method", [aif.FixedPoint(), aif.FixedPoint(schedule="parallel"), aif.FixedPoint.pymdp(),
                                    aif.FixedPoint.pymdp_legacy(), aif.FixedPoint(tol=None, num_iter=3)],
                         ids=["default", "parallel", "pymdp", "pymdp_legacy", "no tol"])
@pytest.mark.parametrize("shape", [s for s in SHAPES if len(SHAPES[s][0]) > 1])
def test_fixed_point_last_equals_fixed_point(shape, method):
    model = aif_deep.TabularModel.from_aif(_model(shape, 2), device="cpu")
    b = 23
    obs = _obs(model, b, 3)
    prior = [torch.softmax(torch.randn(b, n, generator=torch.Generator().manual_seed(f), dtype=torch.float64), -1)
             for f, n in enumerate(model.num_states)]
    log_prior = [aif_deep.efe.guarded_log(p, method.guard) for p in prior]
    expected = fixed_point(method, model.log_likelihood([torch.as_tensor(o) for o in obs.T], method.guard), log_prior,
                           model.A_dependencies)
    table = IndexLikelihood(model, method.guard)
    lp_all = torch.cat(log_prior, -1).T.contiguous()
    qs = fixed_point_last(method, table(obs), table.groups, lp_all, model.num_states)
    for q, e in zip(qs, expected, strict=True):
        assert torch.equal(q.T, e)


SETTINGS = {
    "default": dict(),
    "pymdp": dict(inference=aif.FixedPoint.pymdp()),
    "legacy guard, parallel": dict(inference=aif.FixedPoint(schedule="parallel", guard=aif.maths.LEGACY)),
    "stochastic": dict(selection=aif.Selection(mode="stochastic")),
    "horizon 2": dict(policy_horizon=2),
}


@pytest.mark.parametrize("settings", SETTINGS)
@pytest.mark.parametrize("shape", ["one factor", "two factors, one group", "three factors, sparse"])
def test_agent_step_on_an_index_array_equals_the_general_path(shape, settings):
    """Two agents with the same settings: one fed the observation array (IndexLikelihood), one the same outcomes as
    a list of tensors (as_obs, the model's log_likelihood); everything they hold after every step is equal."""
    model = aif_deep.TabularModel.from_aif(_model(shape, 4), device="cpu")
    N, kw = 9, SETTINGS[settings]
    if settings == "horizon 2" and shape == "three factors, sparse":
        pytest.skip("27 x 27 policies: the other shapes cover horizon 2")
    agents = [aif_deep.Agent(model, batch_shape=(N,), rng=torch.Generator().manual_seed(5), **kw) for _ in range(2)]
    for t in range(6):
        obs = _obs(model, N, 10 + t)
        actions = [agents[0].step(obs), agents[1].step([torch.as_tensor(o) for o in obs.T])]
        assert agents[0]._run.likelihood is not None and agents[1]._run.likelihood is None  # the two paths ran
        assert torch.equal(*actions)
        for name in ("qs", "prior"):
            for x, y in zip(getattr(agents[0], name), getattr(agents[1], name), strict=True):
                assert torch.equal(x, y), (name, t)
        assert torch.equal(agents[0].G, agents[1].G) and torch.equal(agents[0].q_pi, agents[1].q_pi)


def test_index_array_errors_and_a_changed_model():
    task = TMaze()
    model = aif_deep.TabularModel.from_aif(task.generative_model(), device="cpu")
    agent = aif_deep.Agent(model, batch_shape=(4,))
    obs, _ = POMDPVectorEnv(task, 4).reset(seed=0)
    bad = obs.copy()
    bad[2, 1] = -1  # out of range: the general path names it
    with pytest.raises(ObservationError, match="observation -1 is out of range for modality 1"):
        agent.step(bad)
    bad[2, 1] = model.num_obs[1]
    with pytest.raises(ObservationError, match="out of range for modality 1"):
        agent.step(bad)
    agent.step(obs)
    first = agent._run.likelihood
    with torch.no_grad():  # A changed in place: the tables are made again from the new A
        model.A[1].copy_(torch.full_like(model.A[1], 1.0 / model.num_obs[1]))
    agent.reset()
    agent.step(obs)
    assert agent._run.likelihood is not first
    general = aif_deep.Agent(model, batch_shape=(4,))
    general.step([torch.as_tensor(o) for o in obs.T])
    for x, y in zip(agent.qs, general.qs, strict=True):
        assert torch.equal(x, y)


@pytest.mark.parametrize("padded", [True, False])
def test_draws_equal_inverse_cdf_per_variable(padded):
    rng = np.random.default_rng(0)
    F, n = 3, 200
    num_states = [3, 2, 4]
    # three variables: one reads factors (0, 2), one factor 1 and a control axis of 3, one nothing but factor 0
    arrays = [rng.dirichlet(np.ones(5), size=(3, 4)).transpose(2, 0, 1),  # (5, S_0, S_2)
              rng.dirichlet(np.ones(2), size=(2, 3)).transpose(2, 0, 1),  # (2, S_1, U)
              rng.dirichlet(np.ones(7), size=3).T]  # (7, S_0)
    reads = [[0, 2], [1], [0]]
    cdfs = [cdf_table(a) for a in arrays]
    draws = _Draws(cdfs, reads, F, padded=padded)
    assert draws.padded is padded
    states = np.stack([rng.integers(0, s, n) for s in num_states], -1)
    control = rng.integers(0, 3, n)
    u = rng.random((n, 3))
    columns = draws.columns(states)
    columns[:, 1] += control  # the control axis: stride 1
    out = draws(columns, u)
    expected = np.stack([inverse_cdf(cdfs[0][states[:, 0], states[:, 2]], u[:, 0]),
                         inverse_cdf(cdfs[1][states[:, 1], control], u[:, 1]),
                         inverse_cdf(cdfs[2][states[:, 0]], u[:, 2])], -1)
    assert np.array_equal(out, expected)


def test_a_step_records_gradients_only_where_something_needs_them():
    task = TMaze()
    model = aif_deep.TabularModel.from_aif(task.generative_model(), device="cpu")
    obs, _ = POMDPVectorEnv(task, 3).reset(seed=0)
    plain = aif_deep.Agent(model, batch_shape=(3,))
    plain.step(obs)
    assert not plain.G.requires_grad and not plain.prior[0].requires_grad
    C = [c.clone().requires_grad_(m == 1) for m, c in enumerate(model.C)]  # preferences being fitted
    fitted = aif_deep.Agent(model.replace(C=C), batch_shape=(3,))
    fitted.step(obs)
    assert fitted.G.requires_grad and torch.equal(fitted.G.detach(), plain.G)
    (fitted.q_pi[:, 0].sum()).backward()
    assert C[1].grad is not None and torch.isfinite(C[1].grad).all()
