"""Learning chosen modalities and factors (``Learning.learn_A=[...]``, ``lr_A``, ...): against pymdp.legacy's Agent
(``modalities_to_learn``, ``factors_to_learn``, ``lr_pA``, ``lr_pB``, ``lr_pD``), aif_deep.Agent against aif.Agent."""

import numpy as np
import pytest

import aif
from aif.errors import ParameterError
from tests._reference import obj

CHOICE = aif.Learning(learn_A=[1], learn_B=[0], learn_D=[0], lr_A=0.7, lr_B=1.3, lr_D=0.4)


def _models():
    """Random models with two factors (one uncontrolled) and two or three modalities, dense and sparse A."""
    rng = np.random.default_rng(11)
    yield aif.random_model(rng, [3, 2], [3, 4], [2, 1], dirichlet=True)
    yield aif.random_model(rng, [4, 3], [2, 3, 3], [3, 2], A_dependencies=[[0], [0, 1], [1]], dirichlet=True)
    yield aif.random_model(rng, [2, 3], [4, 2], [2, 3], concentration=0.5, dirichlet=True)


def _observations(model, steps, seed):
    rng = np.random.default_rng(seed)
    return [[int(rng.integers(o)) for o in model.num_obs] for _ in range(steps)]


@pytest.mark.parametrize("k, model", list(enumerate(_models())))
def test_chosen_counts_match_pymdp_legacy_agent(k, model):
    from pymdp.legacy.agent import Agent as LegacyAgent

    legacy = LegacyAgent(A=obj(model.A), B=obj(model.B), C=obj(model.C), D=obj(model.D), pA=obj(model.pA),
                         pB=obj(model.pB), pD=obj(model.pD), A_factor_list=model.A_dependencies,
                         modalities_to_learn=[1], factors_to_learn=[0], lr_pA=0.7, lr_pB=1.3, lr_pD=0.4)
    agent = aif.Agent.pymdp_legacy(model, learning=CHOICE)
    worst = 0.0
    for t, obs in enumerate(_observations(model, 8, k)):
        qs_prev = legacy.qs
        legacy.infer_states(obs)
        legacy.update_A(obs)
        if t > 0:
            legacy.update_B(qs_prev)
        legacy.infer_policies()
        action = agent.step(obs)
        np.testing.assert_array_equal(action, legacy.sample_action().astype(int), err_msg=f"step {t}")
        worst = max([worst] + [np.abs(a - b).max() for name in ("pA", "pB", "A", "B")
                               for a, b in zip(getattr(agent.model, name), getattr(legacy, name), strict=True)])
    qs_first = agent.history[0][1]
    agent.reset()  # online D learning: from the finished episode's first posterior
    legacy.update_D(obj(qs_first))
    worst = max([worst] + [np.abs(a - b).max() for a, b in zip(agent.model.pD, legacy.pD, strict=True)])
    print(f"model {k}: chosen counts vs pymdp.legacy Agent, 8 steps, max |diff|: {worst:.1e}")
    assert worst < 1e-12
    assert not np.allclose(agent.model.pA[1], model.pA[1]) and not np.allclose(agent.model.pB[0], model.pB[0])
    # the counts not chosen are exactly as they were
    for name, kept in (("pA", [0, 2]), ("pB", [1]), ("pD", [1])):
        for i in (i for i in kept if i < len(getattr(model, name))):
            np.testing.assert_array_equal(getattr(agent.model, name)[i], getattr(model, name)[i])


def test_offline_learning_honours_the_choice():
    """learn(): the functional updates of the chosen counts over the recorded episode."""
    from aif import learning

    model = next(_models())
    agent = aif.Agent(model, learning=aif.Learning(learn_A=[1], learn_B=[0], learn_D=[1], lr_B=0.5, forgetting=0.9,
                                                   online=False))
    for obs in _observations(model, 5, 0):
        agent.step(obs)
    pA, pB, history = model.pA, model.pB, list(agent.history)
    rates = dict(forgetting=0.9, mask_zeros=True)
    for obs, qs, previous in history:
        pA = learning.update_A(pA, obs, qs, modalities=[1], prior=model.pA, **rates)
        if previous is not None:
            pB = learning.update_B(pB, qs, *previous, 0.5, factors=[0], prior=model.pB, **rates)
    pD = learning.update_D(model.pD, history[0][1], factors=[1], prior=model.pD, **rates)
    learned = agent.learn()
    for a, b in zip(learned.pA + learned.pB + learned.pD, pA + pB + pD, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-12)
    for a, b in zip([learned.pA[0], learned.pB[1], learned.pD[0]], [model.pA[0], model.pB[1], model.pD[0]],
                    strict=True):
        np.testing.assert_array_equal(a, b)


def test_deep_agent_equals_aif_agent():
    torch = pytest.importorskip("torch")
    import aif_deep

    model = next(_models())
    settings = aif.Learning(learn_A=[1], learn_B=[0], lr_A=0.7, lr_B=1.3, forgetting=0.9)
    ref = aif.Agent(model, policy_horizon=2, learning=settings)
    deep = aif_deep.Agent(aif_deep.TabularModel.from_aif(model, device="cpu"), policy_horizon=2, learning=settings)
    for t, obs in enumerate(_observations(model, 8, 3)):
        np.testing.assert_array_equal(deep.step([torch.tensor(o) for o in obs]).numpy(), ref.step(obs), str(t))
    for name in ("pA", "pB"):
        for a, b in zip(getattr(ref.model, name), getattr(deep.model, name), strict=True):
            np.testing.assert_allclose(b.numpy(), a, atol=1e-12)
    np.testing.assert_array_equal(deep.model.pA[0].numpy(), model.pA[0])
    np.testing.assert_array_equal(deep.model.pB[1].numpy(), model.pB[1])


def test_bad_choices_are_refused():
    assert aif.Learning(learn_A=np.array([1, 0])).learn_A == (1, 0)
    for bad, match in (([0, 0], "names an index twice"), ([-1], r"learn_A\[0\] must be an integer"),
                       ([1.0], r"learn_A\[0\] must be an integer"), ("0", "True, False or a list"),
                       (1, "True, False or a list")):
        with pytest.raises(ParameterError, match=match):
            aif.Learning(learn_A=bad)
    with pytest.raises(ParameterError, match="lr_B must be >= 0"):
        aif.Learning(lr_B=-1.0)
    model = next(_models())  # 2 modalities, 2 factors
    for settings, match in ((aif.Learning(learn_A=[2]), "learn_A names modality 2, but the model has 2 modalities"),
                            (aif.Learning(learn_B=[0, 2]), "learn_B names factor 2, but the model has 2 factors"),
                            (aif.Learning(learn_D=[5]), "learn_D names factor 5")):
        with pytest.raises(ParameterError, match=match):
            aif.Agent(model, learning=settings)
    torch = pytest.importorskip("torch")  # noqa: F841
    import aif_deep

    with pytest.raises(ParameterError, match="learn_A names modality 2"):
        aif_deep.Agent(aif_deep.TabularModel.from_aif(model, device="cpu"), learning=aif.Learning(learn_A=[2]))


def test_a_saved_agent_keeps_its_choice(tmp_path):
    from aif.io import load_agent, save_agent

    model = next(_models())
    agent = aif.Agent(model, learning=CHOICE)
    agent.step([0, 1])
    save_agent(tmp_path / "agent.npz", agent)
    loaded = load_agent(tmp_path / "agent.npz")
    assert loaded.learning == CHOICE and loaded.learning.learn_B == (0,)
    for obs in ([1, 2], [2, 3]):
        np.testing.assert_array_equal(loaded.step(obs), agent.step(obs))
    for a, b in zip(loaded.model.pA + loaded.model.pB, agent.model.pA + agent.model.pB, strict=True):
        np.testing.assert_array_equal(a, b)
