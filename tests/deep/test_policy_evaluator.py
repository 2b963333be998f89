"""PolicyEvaluator: the full policy tree of a tabular model by broadcasting, equal to aif and to the general
prefix-sharing evaluator, chunked, batched, with CUDA graph replay where a GPU is present."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import aif  # noqa: E402
import aif_deep  # noqa: E402
from aif.efe import InfoGain, Novelty, Risk, TerminalValue  # noqa: E402
from aif.errors import ParameterError, PolicyError  # noqa: E402

TOL = 1e-10
OPTIONS = [aif.EFEOptions(), aif.EFEOptions.pymdp(), aif.EFEOptions(normalize_C=False)]


def random_case(seed):
    """A random model (factor interactions in A and B, sometimes time-varying C) and a batch of beliefs."""
    rng = np.random.default_rng(seed)
    F, M = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    S = [int(x) for x in rng.integers(2, 5, F)]
    O = [int(x) for x in rng.integers(2, 5, M)]
    U = [int(x) for x in rng.integers(1, 4, F)]
    A_deps = [sorted(rng.choice(F, int(rng.integers(1, F + 1)), replace=False).tolist()) for _ in range(M)]
    B_deps = [sorted({f, *rng.choice(F, int(rng.integers(0, F)), replace=False).tolist()}) for f in range(F)]
    model = aif.random_model(rng, S, O, U, A_dependencies=A_deps, B_dependencies=B_deps, concentration=0.5)
    if seed % 4 == 0:  # preferences that change over the horizon: C[m] of shape (O_m, T)
        model = model.replace(C=[rng.normal(size=(o, 2)) for o in O])
    batch = int(rng.integers(1, 4))
    qs = [rng.dirichlet(np.ones(s), size=batch) for s in S]
    return rng, model, qs


def fused_case(seed):
    """One controlled factor, the others uncontrolled, no interactions in B (pymdp's usual layout: the
    evaluator's fused lane); modalities on random subsets of factors, some on uncontrolled factors alone."""
    rng = np.random.default_rng(100 + seed)
    F, M = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    S = [int(x) for x in rng.integers(2, 5, F)]
    O = [int(x) for x in rng.integers(2, 5, M)]
    U = [1] * F
    f = int(rng.integers(F))
    U[f] = int(rng.integers(2, 4))
    A_deps = [sorted(rng.choice(F, int(rng.integers(1, F + 1)), replace=False).tolist()) for _ in range(M)]
    A_deps[0] = sorted({f, *A_deps[0]})
    model = aif.random_model(rng, S, O, U, A_dependencies=A_deps, concentration=0.5)
    if seed % 4 == 0:
        model = model.replace(C=[rng.normal(size=(o, 2)) for o in O])
    batch = int(rng.integers(1, 4))
    qs = [rng.dirichlet(np.ones(s), size=batch) for s in S]
    return rng, model, qs


CASES = [random_case] * 24 + [fused_case] * 16


@pytest.mark.parametrize("seed", range(len(CASES)))
def test_equals_aif_and_the_general_evaluator(seed):
    rng, model, qs = CASES[seed](seed)
    options = OPTIONS[seed % 3]
    H = int(rng.integers(1, 4))
    tm = aif_deep.TabularModel.from_aif(model, device="cpu")
    q = [torch.tensor(x) for x in qs]
    budget = None if seed % 2 else 2000  # a tiny budget: the tree is descended in chunks of a few nodes
    G, terms = aif_deep.PolicyEvaluator(tm, H, options=options, memory_budget=budget)(q)
    policies = aif.enumerate_policies(model.num_controls, H)
    for b in range(len(qs[0])):
        G_ref, terms_ref = aif.expected_free_energy(model, [x[b] for x in qs], policies, options=options)
        assert np.abs(G[b].numpy() - G_ref).max() < TOL
        for name in ("risk", "ambiguity", "utility", "state_info_gain"):
            assert np.abs(terms[name][b].numpy() - terms_ref[name]).max() < TOL, name
    # The general (gathering) evaluator on the same rows.
    G_general, _ = aif_deep.evaluate_policies(tm, q, policies=policies, options=options)
    assert (G - G_general).abs().max() < TOL


def test_every_convention_and_the_parameter_terms_equal_aif():
    """What PolicyEvaluator once refused (pymdp.legacy's guards, the joint information gain, pA/pB novelty)."""
    rng = np.random.default_rng(7)
    model = aif.random_model(rng, [3, 2], [3, 2], [2, 2], A_dependencies=[[0, 1], [1]], concentration=0.5,
                             dirichlet=True)
    qs = [rng.dirichlet(np.ones(s), size=2) for s in (3, 2)]
    tm = aif_deep.TabularModel.from_aif(model, device="cpu")
    policies = aif.enumerate_policies(model.num_controls, 2)
    for options in (aif.EFEOptions.pymdp_legacy(), aif.EFEOptions()):
        for terms in ((aif.Utility(), InfoGain(joint=True)), (Risk(), Novelty("A"), Novelty("B"))):
            G, out = aif_deep.PolicyEvaluator(tm, 2, terms=terms, options=options)([torch.tensor(x) for x in qs])
            for b in range(2):
                G_ref, ref = aif.expected_free_energy(model, [x[b] for x in qs], policies, terms, options)
                assert np.abs(G[b].numpy() - G_ref).max() < TOL
                for k in ref:
                    assert np.abs(out[k][b].numpy() - ref[k]).max() < TOL, k


def test_the_fused_lane_is_taken_where_it_applies():
    for seed in range(16):
        _, model, _ = fused_case(seed)
        assert aif_deep.PolicyEvaluator(aif_deep.TabularModel.from_aif(model, device="cpu"), 2)._fused is not None
    _, model, _ = random_case(1)  # two controlled factors: the general lane
    assert aif_deep.PolicyEvaluator(aif_deep.TabularModel.from_aif(model, device="cpu"), 2)._fused is None


def test_gradients_equal_the_general_evaluator():
    for case in (fused_case(1), random_case(3)):
        _, model, qs = case
        grads = []
        for general in (False, True):
            tm = aif_deep.TabularModel.from_aif(model, device="cpu")
            A0 = tm.A[0].clone().requires_grad_(True)
            tm = tm.replace(A=[A0, *tm.A[1:]])
            q = [torch.tensor(x) for x in qs]
            if general:
                G, _ = aif_deep.evaluate_policies(tm, q, policies=aif.enumerate_policies(model.num_controls, 2))
            else:
                G, _ = aif_deep.PolicyEvaluator(tm, 2)(q)
            (G * torch.linspace(0, 1, G.numel(), dtype=G.dtype).reshape(G.shape)).sum().backward()
            grads.append(A0.grad)
        assert torch.isfinite(grads[0]).all() and (grads[0] - grads[1]).abs().max() < 1e-10


def test_batched_models_control_factors_terms_and_terminal_value():
    rng = np.random.default_rng(5)
    models = [aif.random_model(rng, [3, 2], [4, 2], [3, 2]) for _ in range(3)]
    tm = aif_deep.TabularModel.from_aif(models, device="cpu")
    qs = [rng.dirichlet(np.ones(s), size=3) for s in (3, 2)]
    H, w = 2, 0.9

    def V(beliefs):  # any callable of the leaves' beliefs (N, *batch, S_f)
        return (beliefs[0] * torch.arange(3.0, dtype=torch.float64)).sum(-1) + beliefs[1][..., 0]

    ev = aif_deep.PolicyEvaluator(tm, H, terms=(Risk(), InfoGain(), TerminalValue(V, w)), control_factors=[0])
    assert ev._fused == 0  # factor 1 is held at action 0: one branching factor
    G, terms = ev([torch.tensor(x) for x in qs])
    policies = aif.enumerate_policies(models[0].num_controls, H, control_factors=[0])
    assert G.shape == (3, len(policies)) == (3, 9)
    for b, model in enumerate(models):
        qb = [x[b] for x in qs]
        G_ref, terms_ref = aif.expected_free_energy(model, qb, policies, terms=(Risk(), InfoGain()))
        V_ref = []
        for policy in policies:
            leaf = qb
            for action in policy:
                leaf = aif.predict(model, leaf, action)
            V_ref.append(leaf[0] @ np.arange(3.0) + leaf[1][0])
        V_ref = np.array(V_ref)
        assert np.abs(terms["terminal_value"][b].numpy() - w**H * V_ref).max() < TOL  # as it enters G
        assert np.abs(G[b].numpy() - (G_ref + w**H * V_ref)).max() < TOL


def test_evaluate_policies_takes_this_path_and_with_terms_false():
    _, model, qs = random_case(3)
    tm = aif_deep.TabularModel.from_aif(model, device="cpu")
    q = [torch.tensor(x) for x in qs]
    G, terms = aif_deep.evaluate_policies(tm, q, horizon=2, with_terms=False)
    G2, _ = aif_deep.PolicyEvaluator(tm, 2)(q, with_terms=False)
    assert terms == {} and torch.equal(G, G2)


def test_posterior_uses_gamma_and_the_models_E():
    rng, model, qs = fused_case(2)
    P = model.num_controls[int(np.argmax(model.num_controls))] ** 2
    E = rng.dirichlet(np.ones(P))
    tm = aif_deep.TabularModel.from_aif(model.replace(E=E), device="cpu")
    q = [torch.tensor(x) for x in qs]
    G, q_pi = aif_deep.PolicyEvaluator(tm, 2).posterior(q, gamma=3.0)
    assert torch.allclose(q_pi, aif_deep.policy_posterior(G, torch.tensor(E), gamma=3.0), rtol=0, atol=1e-12)
    bad = [x.clone() for x in q]
    bad[0][0, 0] = float("nan")
    with pytest.raises(aif.errors.BeliefError, match=r"qs\[0\] at batch index \(0,\) is not a probability vector"):
        aif_deep.PolicyEvaluator(tm, 2).posterior(bad)
    with pytest.raises(ParameterError, match="non-finite"):  # beliefs unchecked: G's own check
        aif_deep.PolicyEvaluator(tm, 2).posterior(bad, check_values=False)


def test_bad_input_and_changed_models_raise():
    rng, model, qs = random_case(1)
    tm = aif_deep.TabularModel.from_aif(model, device="cpu")
    with pytest.raises(ParameterError, match="no pB"):
        aif_deep.PolicyEvaluator(tm, 2, terms=(Risk(), Novelty("B")))
    with pytest.raises(aif.errors.StrategyError, match="objects"):
        aif_deep.PolicyEvaluator(tm, 2, terms=("risk", "state_info_gain"))
    with pytest.raises(aif.errors.ModelError, match="TabularModel"):
        aif_deep.PolicyEvaluator(model, 2)
    with pytest.raises(PolicyError, match="horizon"):
        aif_deep.PolicyEvaluator(tm, 0)
    with pytest.raises(ParameterError, match="CUDA"):
        aif_deep.PolicyEvaluator(tm, 1, cuda_graph=True)
    ev = aif_deep.PolicyEvaluator(tm, 2)
    with pytest.raises(aif.errors.BeliefError, match="factors"):
        ev([torch.tensor(qs[0])] * (len(qs) + 1))
    with pytest.raises(aif.errors.BeliefError, match=r"expected \(\.\.\., "):
        ev([torch.ones(7, dtype=torch.float64) / 7 for _ in qs])
    ev([torch.tensor(x) for x in qs])
    tm.A[0].mul_(1.0)  # an in-place change, even one that keeps the values, bumps the version
    with pytest.raises(ParameterError, match="changed in place"):
        ev([torch.tensor(x) for x in qs])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graph replay needs a GPU")
@pytest.mark.parametrize("case", [random_case, fused_case])
def test_cuda_graph_replay_equals_eager_and_aif(case):
    rng, model, qs = case(2)
    tm = aif_deep.TabularModel.from_aif(model, device="cuda", dtype=torch.float32)
    ev = aif_deep.PolicyEvaluator(tm, 3)
    assert ev.cuda_graph
    policies = aif.enumerate_policies(model.num_controls, 3)
    for call in range(4):  # eager, capture, replay, replay with new beliefs
        if call == 3:
            qs = [rng.dirichlet(np.ones(s), size=len(qs[0])) for s in model.num_states]
        q = [torch.tensor(x, dtype=torch.float32, device="cuda") for x in qs]
        G, terms = ev(q)
        G2, q_pi = ev.posterior(q, gamma=4.0)
        G_ref, terms_ref = aif.expected_free_energy(model, [x[0] for x in qs], policies)
        scale = max(1.0, np.abs(G_ref).max())
        assert np.abs(G[0].cpu().numpy() - G_ref).max() < 1e-4 * scale
        assert np.abs(terms["risk"][0].cpu().numpy() - terms_ref["risk"]).max() < 1e-4 * scale
        assert (G - G2).abs().max() < 1e-5 * scale  # float32: the leaves' products differ in width
        assert np.abs(q_pi[0].cpu().numpy() - aif.policy_posterior(G_ref, gamma=4.0)).max() < 1e-4
    q = [torch.tensor(x, dtype=torch.float32, device="cuda", requires_grad=True) for x in qs]
    G, _ = ev(q)  # gradients wanted: eager, so they reach the beliefs
    G.sum().backward()
    assert q[0].grad is not None and torch.isfinite(q[0].grad).all()
    for call in range(3):  # another batch shape: its own graph
        G1, _ = ev([torch.tensor(x[:1], dtype=torch.float32, device="cuda") for x in qs])
        assert (G1 - G[:1]).abs().max() < 1e-5 * scale
    assert len(ev._graphs) == 3  # (batch 2, terms), (batch 2, posterior), (batch 1, terms)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graph replay needs a GPU")
def test_agent_on_cuda_replays_one_evaluator_and_agrees_with_aif():
    from aif.envs import TMaze

    model = TMaze().generative_model()
    agent = aif_deep.Agent(aif_deep.TabularModel.from_aif(model, device="cuda", dtype=torch.float32),
                           policy_horizon=2, batch_shape=(3,))
    run = aif_deep.rollout(agent, [TMaze() for _ in range(3)], 4, seed=1)
    evaluator = agent._evaluator
    assert evaluator.cuda_graph and len(evaluator._graphs) == 1  # built once, captured at step 2, replayed
    for i in range(3):  # each agent's q(pi) is aif's at the same history
        ref = aif.Agent(model, policy_horizon=2)
        for t in range(4):
            ref.infer_states(list(run.observations[i, t]))
            q_pi, _ = ref.infer_policies()
            assert np.abs(q_pi - run.q_pi[i, t]).max() < 1e-4
            ref.prior = aif.predict(model, ref.qs, run.actions[i, t])


def test_benchmark_runs_in_its_quick_setting(tmp_path, capsys):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_evaluator.py"
    spec = importlib.util.spec_from_file_location("bench_evaluator", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    bench.main(["--quick", "--skip", "legacy,jax", "--repeats", "1", "--threads", "1",
                "--plot", str(tmp_path / "scaling.png")])
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| aif_deep cpu |")]
    assert len(rows) == 4  # 2 sizes x 2 batches
    assert all(float(row.split("|")[6].replace(",", "")) > 0 for row in rows)
    assert (tmp_path / "scaling.png").stat().st_size > 10_000
