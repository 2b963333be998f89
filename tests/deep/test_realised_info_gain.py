"""aif_deep.online.RealisedInfoGain: the information gain a belief update realised, an epistemic term of the one-step
EFE that TDLearning and SoftActorCritic fit their critic to (stored when a transition is observed, in the one-step and
n-step targets), and a critic that learns to seek it where there is no reward; Softmax's uniform floor."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import aif  # noqa: E402
import aif_deep  # noqa: E402
from aif.errors import ParameterError, StrategyError  # noqa: E402
from aif_deep import online  # noqa: E402
from aif_deep.actor_critic import EntropyWeight, SoftActorCritic  # noqa: E402


def first_feature(x):
    return x[:, 0]


def agent(terms, td=None, sac=False, num_features=3, num_actions=2, seed=0):
    td = td or online.TDLearning(batch_size=8, buffer_size=64, learning_starts=10**6, train_every=1)
    critic = aif_deep.QFunction([num_features], [num_actions], hidden=16, seed=seed)
    if sac:
        actor = aif_deep.QFunction([num_features], [num_actions], hidden=16, seed=seed + 1)
        learning, planner = SoftActorCritic(critic, td=td, policy_terms=(EntropyWeight(0.1),)), online.LearnedQ(actor)
    else:
        learning, planner = td, online.LearnedQ(critic)
    return aif_deep.Agent(online.StateVectorModel(num_features, num_actions), inference=online.ObservedState(),
                          planner=planner, efe_terms=(online.RewardRisk(2.0), *terms), learning=learning,
                          selection=online.Softmax(1.0, gamma_start=None), rng=np.random.default_rng(seed))


def test_settings_are_checked():
    with pytest.raises(ParameterError, match="weight"):
        online.RealisedInfoGain(-0.1, first_feature)
    with pytest.raises(StrategyError, match="callable"):
        online.RealisedInfoGain(0.1)
    term = online.RealisedInfoGain(0.5, first_feature)
    assert term.key == "state_info_gain" and term.sign == -1.0


@pytest.mark.parametrize("sac", [False, True])
def test_gain_is_stored_with_each_transition_and_enters_g(sac):
    a = agent((online.RealisedInfoGain(0.5, first_feature),), sac=sac)
    states = [torch.tensor([0.3, 1.0, 0.0]), torch.tensor([1.7, 0.0, 1.0]), torch.tensor([0.0, 0.0, 0.0])]
    rewards = [None, 1.0, 0.0]
    for x, r in zip(states, rewards, strict=True):
        a.step(x, reward=r)
    td = a.td
    assert td.steps == 2
    # The gain of each transition is of(x') when stored: its next state's first feature.
    torch.testing.assert_close(td.gain[:2], torch.tensor([1.7, 0.0]))
    idx = torch.tensor([0, 1])
    # g = -preference * r - w * gain
    torch.testing.assert_close(td.one_step_efe(td.reward[idx], None, td.stored_gain(idx)),
                               torch.tensor([-2.0 - 0.5 * 1.7, 0.0]))


def test_without_the_term_or_at_weight_zero_g_is_the_risk_alone():
    for terms in ((), (online.RealisedInfoGain(0.0, first_feature),)):
        a = agent(terms)
        a.step(torch.tensor([0.3, 1.0, 0.0]))
        a.step(torch.tensor([1.7, 0.0, 1.0]), reward=1.0)
        assert a.td.stored_gain(torch.tensor([0])) is None and float(a.td.gain[0]) == 0.0


def test_n_step_target_sums_the_discounted_gains():
    td_settings = online.TDLearning(batch_size=4, buffer_size=64, learning_starts=10**6, n_step=3, discount=0.9)
    a = agent((online.RealisedInfoGain(0.5, first_feature),), td=td_settings)
    ref = agent((), td=td_settings)  # the same critic (same seed) without the term
    xs = [torch.tensor([g, 0.0, 1.0]) for g in (0.0, 1.0, 2.0, 3.0, 4.0)]
    for x in xs[:-1]:
        a.step(x, reward=0.0)
        ref.step(x, reward=0.0)
    a.step(xs[-1], reward=1.0, terminated=True)
    ref.step(xs[-1], reward=1.0, terminated=True)
    idx = torch.tensor([0, 1])
    y, y_ref = a.td.n_step_target(idx, None), ref.td.n_step_target(idx, None)
    # Transition 0's three steps reach next states 1, 2, 3; transition 1's 2, 3, 4 (with the end's reward 1).
    w, d = 0.5, 0.9
    torch.testing.assert_close(y_ref - y, torch.tensor([w * (1 + d * 2 + d**2 * 3), w * (2 + d * 3 + d**2 * 4)]))


def test_the_critic_learns_to_seek_the_gain_where_there_is_no_reward():
    """One-step episodes from one state: action 0 leads to a state whose gain is 1, action 1 to one whose gain is 0,
    no reward anywhere. With the term the critic's G prefers action 0 by about w; without it, neither."""
    x0 = torch.tensor([0.0, 1.0, 0.0])
    after = [torch.tensor([1.0, 0.0, 1.0]), torch.tensor([0.0, 0.0, 1.0])]
    td_settings = online.TDLearning(lr=1e-2, batch_size=16, buffer_size=256, learning_starts=16, train_every=1)
    Gs = []
    for terms in ((online.RealisedInfoGain(1.0, first_feature),), ()):
        a = agent(terms, td=td_settings)
        rng = np.random.default_rng(1)
        for _ in range(150):
            a.reset()
            a.step(x0)
            a.action = torch.tensor([int(rng.integers(2))])  # uniform behaviour: both actions replayed
            a.infer_states(after[int(a.action[0])], reward=0.0, terminated=True)
        Gs.append(a.planner.qfunction.net(x0).detach())
    with_gain, without = Gs
    assert float(with_gain[1] - with_gain[0]) == pytest.approx(1.0, abs=0.15)
    assert abs(float(without[1] - without[0])) < 0.15


def test_with_an_ensemble_the_two_values_sum_before_the_tricks():
    ens = online.Ensemble(3, 2, size=2, hidden=8, seed=0)
    critic = aif_deep.QFunction([3], [2], hidden=16, seed=0)
    td = online.TDRun(online.TDLearning(tricks=(online.EpistemicCap(0.5),)), critic, online.StateVectorModel(
        3, 2, transition=ens), (online.RewardRisk(1.0), online.EnsembleInfoGain(0.1),
                                online.RealisedInfoGain(0.2, first_feature)), np.random.default_rng(0))
    ig, gain = torch.tensor([1.0, 1.0, 4.0]), torch.tensor([0.5, 2.0, 2.0])
    # value = min(0.1 * ig + 0.2 * gain, 0.5)
    torch.testing.assert_close(td.epistemic_value(ig, gain), torch.tensor([0.2, 0.5, 0.5]))


def test_other_terms_are_refused():
    with pytest.raises(StrategyError, match="RealisedInfoGain"):
        agent((aif.Utility(),))


def test_baseline_is_subtracted_from_each_steps_gain():
    with pytest.raises(ParameterError, match="baseline"):
        online.RealisedInfoGain(0.1, first_feature, baseline=float("inf"))
    a = agent((online.RealisedInfoGain(0.5, first_feature, baseline=1.0),))
    a.step(torch.tensor([0.3, 1.0, 0.0]))
    a.step(torch.tensor([1.7, 0.0, 1.0]), reward=1.0)
    a.step(torch.tensor([0.2, 0.0, 1.0]), reward=0.0)
    idx = torch.tensor([0, 1])
    torch.testing.assert_close(a.td.gain[:2], torch.tensor([1.7, 0.2]))  # stored as computed
    # g = -2 r - 0.5 (gain - 1): a value above the baseline, a cost below it
    torch.testing.assert_close(a.td.one_step_efe(a.td.reward[idx], None, a.td.stored_gain(idx)),
                               torch.tensor([-2.0 - 0.35, 0.4]))


def test_softmax_floor_mixes_the_policy_with_the_uniform():
    """Softmax(floor=e): (1 - e) softmax(-gamma G) + e / K, every action at least e / K (a near-deterministic policy
    still leaves a state); floor 0 is the policy as it is; the floor is a fraction."""
    import scipy.special

    G = np.array([0.0, 30.0, 30.0, 30.0])
    p = online.Softmax(1.0, gamma_start=None, floor=0.2).probabilities(G, 0)
    np.testing.assert_allclose(p, 0.8 * scipy.special.softmax(-G) + 0.05)
    assert p.sum() == pytest.approx(1.0) and p.min() >= 0.05
    np.testing.assert_allclose(online.Softmax(1.0, gamma_start=None).probabilities(G, 0), scipy.special.softmax(-G))
    with pytest.raises(ParameterError, match="floor"):
        online.Softmax(floor=1.5)
