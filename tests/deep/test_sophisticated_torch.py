"""aif_deep.sophisticated.search: aif.planning.SophisticatedInference for a batch of beliefs (and of agents) in
torch, equal to the NumPy search per belief in float64, differentiable, and refused where it cannot run."""

import numpy as np
import pytest
import torch

import aif
import aif_deep
from aif.errors import ModelError, PolicyError, StrategyError
from aif.planning import SophisticatedInference
from aif_deep.sophisticated import search

TOL = 1e-10


def as_batch(beliefs, num_factors):
    """One ``(batch, S_f)`` tensor per factor from a list of NumPy beliefs."""
    return [torch.as_tensor(np.stack([qs[f] for qs in beliefs])) for f in range(num_factors)]


def check_equal(models, beliefs, planner):
    """The torch search from all beliefs at once against the NumPy search from each; the largest |dG|."""
    tabular = aif_deep.TabularModel.from_aif(models, device="cpu")
    result = search(planner, tabular, as_batch(beliefs, tabular.num_factors))
    deviation = 0.0
    for b, qs in enumerate(beliefs):
        model = models if isinstance(models, aif.GenerativeModel) else models[b]
        tree = planner.search(model, qs)
        root = tree.levels[0]
        for ours, theirs in ((result.G[b], root.G_action[0]), (result.immediate[b], root.G_step[0])):
            deviation = max(deviation, float(np.abs(ours.numpy() - theirs).max()))
        assert int(result.num_nodes[b]) == tree.num_nodes and int(result.depth_reached[b]) == tree.depth_reached
    np.testing.assert_array_equal(result.actions.numpy(), tree.actions)
    assert deviation < TOL, deviation
    return deviation


PLANNERS = {
    "default": lambda d: SophisticatedInference(depth=d),
    "unpruned": lambda d: SophisticatedInference(depth=d, policy_prune_threshold=0.0, observation_prune_threshold=0.0,
                                                 gamma=2.0),
    "pymdp": lambda d: SophisticatedInference.pymdp(d),  # entropy stop, 10 slots per node
    "topk": lambda d: SophisticatedInference(depth=d, topk_outcomes=2, max_branching=5, options=aif.EFEOptions.pymdp()),
}


# (seed, num_states, num_obs, num_controls, depth, planner): one and two factors, two and three modalities
CASES = [(0, [3], [2, 2], [2], 3, "default"), (1, [3, 2], [2, 2], [2, 1], 2, "unpruned"),
         (2, [2], [2, 2, 2], [3], 2, "pymdp"), (3, [3], [3, 3], [3], 2, "topk"), (4, [3], [3, 2], [2], 1, "default")]


@pytest.mark.parametrize("seed,num_states,num_obs,num_controls,depth,name", CASES)
def test_random_models_agree_with_numpy(seed, num_states, num_obs, num_controls, depth, name):
    rng = np.random.default_rng(seed)
    model = aif.random_model(rng, num_states, num_obs, num_controls)
    beliefs = [[rng.dirichlet(np.ones(s)) for s in model.num_states] for _ in range(2)]
    check_equal(model, beliefs, PLANNERS[name](depth))


def test_tmaze_agrees_with_numpy():
    """pymdp 1.0's T-maze from the centre, at the cue and in an arm, in one batch."""
    model = aif.envs.PymdpTMaze(cue_validity=0.95).generative_model(punishment_preference=-6.0)
    start = aif.infer_states(model, [0, 0, 0], model.D)
    at_cue = aif.infer_states(model, [3, 0, 1], aif.predict(model, start, [3, 0]))
    beliefs = [start, at_cue, [np.eye(5)[2], np.array([0.2, 0.8])]]
    for planner in (SophisticatedInference(depth=3), SophisticatedInference.pymdp(2)):
        check_equal(model, beliefs, planner)
    G = search(SophisticatedInference(depth=3), aif_deep.TabularModel.from_aif(model, device="cpu"),
               as_batch(beliefs, 2)).G
    assert int(G[0].argmin()) == 3  # the cue first


def test_a_batch_of_agents_each_with_its_model():
    models = [aif.random_model(np.random.default_rng(s), [3], [3, 2], [2]) for s in range(3)]
    rng = np.random.default_rng(9)
    beliefs = [[rng.dirichlet(np.ones(s)) for s in models[0].num_states] for _ in models]
    check_equal(models, beliefs, SophisticatedInference(depth=2))


def test_gradients_are_finite_differences():
    """dG/dC and dG/dq by autograd against central differences (no threshold is crossed at this point)."""
    rng = np.random.default_rng(4)
    model = aif_deep.TabularModel.from_aif(aif.random_model(rng, [2], [2, 2], [2]), device="cpu")
    planner = SophisticatedInference(depth=2, policy_prune_threshold=0.0, observation_prune_threshold=0.0)
    C0 = model.C[0].clone().requires_grad_(True)
    logits = torch.randn(1, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0), requires_grad=True)

    def G(C_m, z):
        return search(planner, model.replace(C=[C_m, model.C[1]]), [torch.softmax(z, -1)]).G

    assert torch.autograd.gradcheck(G, (C0, logits), eps=1e-6, atol=1e-6)


def test_bad_input_is_refused():
    model = aif_deep.TabularModel.from_aif(aif.random_model(np.random.default_rng(0), [3], [3], [2]), device="cpu")
    qs = [torch.full((2, 3), 1 / 3, dtype=torch.float64)]
    with pytest.raises(StrategyError, match="SophisticatedInference"):
        search(aif.planning.PolicyEnumeration(horizon=2), model, qs)
    with pytest.raises(StrategyError, match="aif.FixedPoint and aif.Exact"):
        search(SophisticatedInference(inference=aif.VariationalFiltering()), model, qs)
    with pytest.raises(PolicyError, match="max_branching"):
        search(SophisticatedInference(max_branching=1), model, qs)
    with pytest.raises(PolicyError, match="max_nodes = 5"):
        search(SophisticatedInference(depth=3, max_nodes=5), model, qs)
    with pytest.raises(ModelError, match="batch shape"):
        batched = aif_deep.TabularModel.from_aif([aif.random_model(np.random.default_rng(s), [3], [3], [2])
                                                  for s in range(3)], device="cpu")
        search(SophisticatedInference(), batched, [torch.full((2, 3, 3), 1 / 3, dtype=torch.float64)])
    with pytest.raises(aif.errors.BeliefError, match="qs"):
        search(SophisticatedInference(), model, [torch.full((2, 3), 0.5, dtype=torch.float64)])


def test_agent_batch_runs_it_in_torch_and_matches_aif_agents():
    """aif_deep.Agent(planner=SophisticatedInference) on a batch of three T-maze agents, each with its own cue
    validity, against three aif.Agents: q(pi) over the first actions and the actions, step by step."""
    models = [aif.envs.PymdpTMaze(cue_validity=v).generative_model(punishment_preference=-6.0)
              for v in (0.95, 0.8, 0.6)]
    planner = SophisticatedInference(depth=2)
    agent = aif_deep.Agent(aif_deep.TabularModel.from_aif(models, device="cpu"), planner=planner, gamma=4.0)
    assert type(agent._run).__name__ == "_TorchRun"  # not the NumPy route, one aif.Agent per member
    refs = [aif.Agent(m, planner=planner, gamma=4.0) for m in models]
    envs = [aif.envs.PymdpTMaze(cue_validity=v) for v in (0.95, 0.8, 0.6)]
    obs = [env.reset(seed=b)[0] for b, env in enumerate(envs)]
    taken = []
    for _ in range(3):
        actions = agent.step(torch.as_tensor(np.stack(obs)))
        for b, ref in enumerate(refs):
            np.testing.assert_array_equal(ref.step(list(obs[b])), actions[b].numpy())
            np.testing.assert_allclose(agent.q_pi[b].numpy(), ref.q_pi, rtol=0, atol=TOL)
            np.testing.assert_allclose(agent.G[b].numpy(), ref.G, rtol=0, atol=TOL)
        obs = [env.step(int(a[0]))[0] for env, a in zip(envs, actions, strict=True)]
        taken.append(actions[:, 0].tolist())
    assert taken[0] == [3, 3, 3]  # the cue first


def test_planner_benchmark_runs_quick(tmp_path):
    """benchmarks/bench_planners.py --mcts --torch --quick writes its tables: exhaustive MCTS takes sophisticated
    inference's action, and the torch search equals the NumPy one."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_planners.py"
    spec = importlib.util.spec_from_file_location("bench_planners", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    bench.main(["--mcts", "--torch", "--quick", "--out", str(tmp_path)])
    mcts = (tmp_path / "bench_mcts.md").read_text().splitlines()
    rows = [line.split(" | ") for line in mcts if line.startswith("| T-maze") or line.startswith("| grid")]
    assert len(rows) == 2 and all(row[7] == "yes" for row in rows)  # exhaustive MCTS: SI's first action
    assert (tmp_path / "bench_mcts.png").stat().st_size > 0
    torch_rows = [line for line in (tmp_path / "bench_si_torch.md").read_text().splitlines() if line.startswith("| 2")]
    assert len(torch_rows) == 1 and float(torch_rows[0].split(" | ")[-1].rstrip(" |")) < TOL
