"""aif_deep.NeuralModel: the model protocol, exact and sampled EFE terms, VFE training from noisy grid images,
checkpoints, the learned EFE Q-function, and the tabular-to-neural swap example."""

import importlib.util
import itertools
import pathlib

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import aif  # noqa: E402
import aif_deep  # noqa: E402
from aif.envs import AgentWrapper, GridWorld  # noqa: E402
from aif_deep.checkpoint import load_checkpoint  # noqa: E402
from aif_deep.episodes import ReplayBuffer, collect_random  # noqa: E402
from aif_deep.images import NoisyGridImages  # noqa: E402
from aif_deep.model import TabularModel  # noqa: E402
from aif_deep.neural import Bernoulli, Categorical, Gaussian, NeuralModel  # noqa: E402
from aif_deep.training import TrainSettings, evaluate_vfe, match_classes, sequence_vfe, train, train_best_of  # noqa: E402

torch.set_num_threads(1)
ROOT = pathlib.Path(__file__).resolve().parents[2]


def _random_categorical_model(seed=1, samples=64):
    model = NeuralModel([3, 2], [2, 3], [Categorical(4), Categorical(3)], C=[torch.randn(4), torch.randn(3)],
                        seed=seed, info_gain_samples=samples).double()
    with torch.no_grad():  # sharper decoders than at initialisation, so the information gain is not tiny
        for p in model.decoders.parameters():
            p.mul_(4)
    return model.eval()


def _random_beliefs(gen, n, sizes):
    return [torch.softmax(2 * torch.randn(n, s, generator=gen, dtype=torch.float64), -1) for s in sizes]


def test_categorical_neural_model_is_its_tabular_model():
    """With categorical modalities every EFE term is the tabular one, on the networks' tables."""
    model = _random_categorical_model()
    tab = model.tables()
    lifted = TabularModel(A=tab["A"], B=tab["B"], C=model.C, D=tab["D"], E=None,
                          A_dependencies=model.A_dependencies, B_dependencies=model.B_dependencies)
    for a in tab["A"]:
        assert torch.allclose(a.sum(0), torch.ones_like(a[0]))
    for b in tab["B"]:
        assert torch.allclose(b.sum(0), torch.ones_like(b[0]))
        assert b.min() > 0  # the uniform mixture
    qs = _random_beliefs(torch.Generator().manual_seed(0), 5, model.num_states)
    policies = aif.enumerate_policies(model.num_controls, 2)
    G, terms = aif_deep.expected_free_energy(model, qs, policies)
    G_ref, terms_ref = aif_deep.expected_free_energy(lifted, qs, policies)
    assert (G - G_ref).abs().max() < 1e-12
    for k in ("risk", "ambiguity", "utility", "state_info_gain"):
        assert (terms[k] - terms_ref[k]).abs().max() < 1e-12
    nxt = aif_deep.predict(model, qs, torch.tensor([1, 2]))
    nxt_ref = aif_deep.predict(lifted, qs, torch.tensor([1, 2]))
    assert max((a - b).abs().max() for a, b in zip(nxt, nxt_ref, strict=False)) < 1e-12


def test_sampled_info_gain_matches_exact_on_categorical_outcomes():
    model = _random_categorical_model(samples=5000)
    qs = _random_beliefs(torch.Generator().manual_seed(1), 6, model.num_states)
    exact = model.outcome_terms(qs, 0, aif.EFEOptions())
    exact_ig = exact["entropy"] - exact["ambiguity"]  # both modalities
    est = model.estimated_info_gain(qs, 0) + model.estimated_info_gain(qs, 1)
    assert exact_ig.min() > 0.01
    # Monte Carlo error with 5000 samples per state: about 0.002 nats here.
    assert (est - exact_ig).abs().max() < 0.01
    few = model.estimated_info_gain(qs, 0, num_samples=50) + model.estimated_info_gain(qs, 1, num_samples=50)
    assert (few - exact_ig).abs().max() > (est - exact_ig).abs().max()  # the error shrinks with samples


def test_bernoulli_info_gain_against_enumerated_outcomes():
    """2x2 binary images: 16 outcomes, so H[q(o)] of the mixture can be enumerated exactly."""
    model = NeuralModel([4], [2], [Bernoulli((2, 2))], seed=2, info_gain_samples=40000).double()
    with torch.no_grad():
        for p in model.decoders.parameters():
            p.mul_(3)
    model.eval()
    qs = _random_beliefs(torch.Generator().manual_seed(2), 5, model.num_states)
    params = model.tables()["params"][0]  # (4, 4): logits per state and pixel
    images = torch.tensor(list(itertools.product([0, 1], repeat=4)), dtype=torch.float64)  # (16, 4)
    log_p = model.heads[0].log_prob(params[None], images[:, None].reshape(16, 1, 2, 2))  # (16 outcomes, 4 states)
    p_os = log_p.exp()
    assert torch.allclose(p_os.sum(0), torch.ones(4, dtype=torch.float64))
    q_o = qs[0] @ p_os.T  # (5, 16)
    H_qo = -(q_o * q_o.log()).sum(-1)
    H_cond = -(p_os * log_p).sum(0)  # (4,)
    exact_amb = qs[0] @ H_cond
    terms = model.outcome_terms(qs, 0, aif.EFEOptions())
    assert (terms["ambiguity"] - exact_amb).abs().max() < 1e-12  # closed form
    assert (terms["entropy"] - H_qo).abs().max() < 0.01  # sampled information gain


def test_gaussian_head_scores_and_samples():
    head = Gaussian((3,))
    params = torch.tensor([[0.0, 1.0, -1.0, 0.2, -0.5, 1.0]], dtype=torch.float64)
    x = head.sample(params, torch.randn(20000, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64))
    mean, std = head._split(params)
    assert (x[0].mean(0) - mean[0]).abs().max() < 0.05
    # entropy = -E log p
    assert abs(float(-head.log_prob(params, x[0]).mean() - head.entropy(params)[0])) < 0.05


def _grid_data(seed, episodes=40):
    env = NoisyGridImages(AgentWrapper(GridWorld((3, 3), terminate_at_goal=False)), (8, 8), flip=0.05)
    return collect_random(env, episodes, 20, np.random.default_rng(seed))


def _accuracy(model, buffer, states):
    images = torch.as_tensor(np.concatenate([e[0][0] for e in buffer.episodes]))
    with torch.no_grad():
        pred = model.messages([images])[0].argmax(-1).numpy()
    accuracy, state_of, _ = match_classes(pred, np.concatenate(states), model.num_states[0])
    return accuracy, dict(enumerate(state_of))


@pytest.fixture(scope="module")
def grid_model():
    """3x3 grid, 8x8 images with 5% of the pixels flipped, 40 random walks of 20 steps; best of two runs of
    300 steps (each about 2-4 s on one CPU thread; 5 seeds of one run reached 0.99-1.0, one in eight
    runs with other data stalled at 0.86, which the VFE exposes: see train_best_of)."""
    buffer, states = _grid_data(0)
    model, result, vfes = train_best_of(
        lambda k: NeuralModel([9], [5], [Bernoulli((8, 8))], reward_preference=4.0, seed=k), buffer,
        TrainSettings(steps=300, batch_size=32, length=8, lr=1e-2, seed=0, progress=False), tries=2)
    assert len(vfes) == 2 and abs(min(vfes) - evaluate_vfe(model, buffer)) < 1e-9
    return model, buffer, states, result


def test_grid_images_latent_state_identifies_location(grid_model):
    model, _, _, result = grid_model
    buffer, states = _grid_data(1, episodes=20)  # fresh images
    accuracy, match = _accuracy(model, buffer, states)
    assert accuracy >= 0.95
    assert result.history[-1]["vfe"] < result.history[0]["vfe"]
    # The transition network under matched classes is the grid's: from the centre, each move lands in the
    # neighbouring cell.
    B = model.tables()["B"][0]  # (S', S, U)
    B_true = aif.envs.grid_transitions((3, 3))
    to_class = {loc: k for k, loc in match.items()}
    for u in range(5):
        predicted = int(B[:, to_class[4], u].argmax())
        assert match[predicted] == int(B_true[:, 4, u].argmax())


def test_gaussian_images_latent_state_identifies_location():
    """The same walks seen as real-valued images (block + N(0, 0.3^2) noise per pixel), a Gaussian decoder."""
    buffer, states = _grid_data(0)
    templates = NoisyGridImages(AgentWrapper(GridWorld((3, 3))), (8, 8)).templates
    rng = np.random.default_rng(0)
    real = ReplayBuffer()
    for (_, actions, rewards), s in zip(buffer.episodes, states, strict=False):
        real.add([templates[s] + 0.3 * rng.standard_normal((len(s), 8, 8))], actions, rewards)
    model, _, _ = train_best_of(lambda k: NeuralModel([9], [5], [Gaussian((8, 8))], seed=k), real,
                                TrainSettings(steps=300, batch_size=32, length=8, lr=1e-2, progress=False), tries=2)
    assert _accuracy(model, real, states)[0] >= 0.95


def test_agent_with_neural_model_reaches_goal(grid_model):
    model = grid_model[0]
    env = NoisyGridImages(AgentWrapper(GridWorld((3, 3))), (8, 8), flip=0.05)
    agent = aif_deep.Agent(model, policy_horizon=4)
    obs, info = env.reset(seed=3)
    with torch.no_grad():
        for t in range(8):
            action = agent.step(obs)
            obs, reward, terminated, _, info = env.step(np.asarray(action))
            if terminated:
                break
    assert terminated and reward == 1.0 and t == 3  # the shortest path: 4 moves
    terms = agent.terms
    assert torch.allclose(terms["risk"] + terms["ambiguity"], -(terms["utility"] + terms["state_info_gain"]))


def test_checkpoint_resume_gives_the_same_parameters(tmp_path):
    buffer, _ = _grid_data(2, episodes=6)
    settings = dict(batch_size=8, length=4, lr=1e-2, seed=3, progress=False, log_every=5)
    a = NeuralModel([9], [5], [Bernoulli((8, 8))], seed=4)
    train(a, buffer, TrainSettings(steps=20, **settings))
    b = NeuralModel([9], [5], [Bernoulli((8, 8))], seed=4)
    path = str(tmp_path / "ckpt.pt")
    log = tmp_path / "log.jsonl"
    first = train(b, buffer, TrainSettings(steps=10, checkpoint=path, log=str(log), **settings))
    assert first.step == 10
    c = NeuralModel([9], [5], [Bernoulli((8, 8))], seed=99)  # other weights, restored from the checkpoint
    second = train(c, buffer, TrainSettings(steps=20, checkpoint=path, log=str(log), **settings))
    assert second.step == 20 and [h["step"] for h in second.history] == [5, 10, 15, 20]
    for (name, p), q in zip(a.state_dict().items(), c.state_dict().values(), strict=False):
        assert torch.equal(p, q), name
    assert len(log.read_text().splitlines()) == 4
    assert load_checkpoint(path, NeuralModel([9], [5], [Bernoulli((8, 8))])).step == 20


def test_vfe_is_kl_plus_reconstruction_and_bounds_surprise():
    """One-step windows with an exact posterior: the VFE is at least -ln p(o) (computed by enumeration)."""
    model = NeuralModel([3], [2], [Categorical(4)], seed=5).double()
    buffer = ReplayBuffer()
    buffer.add([np.array([1, 2])], np.array([[0]]))
    batch = buffer.sample(4, 1, np.random.default_rng(0))
    loss, metrics = sequence_vfe(model, batch, torch.Generator().manual_seed(0))
    assert abs(metrics["vfe"] - metrics["kl"] - metrics["reconstruction"]) < 1e-9
    assert torch.isfinite(loss)
    with pytest.raises(aif.errors.ParameterError):
        buffer.sample(2, 5, np.random.default_rng(0))
    with pytest.raises(aif.errors.ParameterError):
        buffer.add([np.array([1, 2, 3])], np.array([[0]]))


def test_bad_model_arguments():
    with pytest.raises(aif.errors.ModelError):
        NeuralModel([3], [2, 2], [Categorical(4)])
    with pytest.raises(aif.errors.ModelError):
        NeuralModel([3], [2], ["pixels"])
    with pytest.raises(aif.errors.ModelError):
        NeuralModel([3], [2], [Bernoulli((2, 2))], C=[torch.zeros(4)])


def test_swap_example_quick():
    spec = importlib.util.spec_from_file_location("swap", ROOT / "examples" / "swap_tabular_for_neural.py")
    swap = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(swap)
    runs, accuracy = swap.main(["--quick"])
    assert accuracy >= 0.95
    for name, (locations, total) in runs.items():
        assert total == 1.0 and len(locations) == 5, name  # each reaches the goal by a shortest path


def test_qfunction_learns_soft_efe_to_go_and_extends_the_horizon():
    """On the 3x3 grid with a preference for the goal cell only, a horizon-1 agent sees no difference between
    moves far from the goal; with the learned G_phi as its terminal value it walks the shortest path."""
    from aif.rollout import rollout
    from aif_deep.qfunction import QFunction, QSettings, train_qfunction

    gm = GridWorld((3, 3)).generative_model(preference="goal", goal_preference=4.0)
    model = TabularModel.from_aif(gm, device="cpu")
    S, T, d = 9, 1.0, 0.9
    onehot = torch.eye(S, dtype=torch.float64)
    mixed = torch.distributions.Dirichlet(torch.full((S,), 0.3, dtype=torch.float64)).sample((2000,))
    qf = QFunction([S], [5], temperature=T, seed=0).double()
    train_qfunction(qf, model, [torch.cat([onehot.repeat(50, 1), mixed])],
                    QSettings(steps=1000, batch_size=64, lr=3e-3, discount=d, tau=0.05, progress=False))
    # Exact soft value iteration on one-hot beliefs (B is deterministic, so they stay one-hot).
    g, _ = aif_deep.expected_free_energy(model, [onehot], aif.enumerate_policies([5], 1))
    nxt = torch.as_tensor(gm.B[0].argmax(0))  # (S, U)
    Q = torch.zeros(S, 5, dtype=torch.float64)
    for _ in range(400):
        Q = g + d * (-T * torch.logsumexp(-Q / T, -1))[nxt]
    with torch.no_grad():
        Q_phi = qf([onehot])
    assert (Q_phi - Q).abs().max() < 0.1 * (Q.max() - Q.min())
    greedy = Q_phi.argmin(-1)
    assert torch.allclose(Q.gather(1, greedy[:, None])[:, 0], Q.min(-1).values)  # its greedy actions are optimal

    plain = rollout(aif_deep.Agent(model, policy_horizon=1), GridWorld((3, 3)), 8, seed=0)
    tail = (*aif.DEFAULT_TERMS, aif.TerminalValue(qf.value, d))
    with_q = rollout(aif_deep.Agent(model, policy_horizon=1, efe_terms=tail),
                     GridWorld((3, 3)), 8, seed=0)
    assert plain.total_reward == 0.0
    assert with_q.total_reward == 1.0 and with_q.num_steps == 4


def test_td_targets_order_joint_actions_as_enumerate_policies():
    from aif_deep.qfunction import QFunction, td_targets

    model = _random_categorical_model()
    qf = QFunction(model.num_states, model.num_controls, temperature=0.5, seed=1).double().eval()
    qs = _random_beliefs(torch.Generator().manual_seed(4), 3, model.num_states)
    y = td_targets(qf, model, qs, discount=0.7)
    policies = aif.enumerate_policies(model.num_controls, 1)
    g, _ = aif_deep.expected_free_energy(model, qs, policies)
    for k, pi in enumerate(policies):
        nxt = aif_deep.predict(model, qs, torch.as_tensor(pi[0]).expand(3, -1))
        assert torch.allclose(y[:, k], g[:, k] + 0.7 * qf.value(nxt))


def test_image_and_vector_observations_are_checked_by_the_model():
    from aif.errors import ObservationError

    model = NeuralModel([3], [2], [Bernoulli((2, 2)), Gaussian((2,))], reward_preference=1.0)
    assert model.categorical == [False, False] == aif_deep.categorical_modalities(model)
    with pytest.raises(ObservationError, match="pixel value 2"):
        aif_deep.infer_states(model, [torch.full((2, 2), 2), torch.zeros(2)])
    with pytest.raises(ObservationError, match="non-finite"):
        aif_deep.infer_states(model, [torch.zeros(2, 2, dtype=torch.long), torch.tensor([float("nan"), 0.0])])


def test_match_classes_finds_the_permutation():
    true = np.array([0, 0, 1, 1, 2, 2, 2])
    pred = np.array([2, 2, 0, 0, 1, 1, 0])  # class 2 is state 0, class 0 state 1, class 1 state 2; one error
    accuracy, state_of, counts = match_classes(pred, true, 3)
    assert accuracy == pytest.approx(6 / 7) and list(state_of) == [1, 2, 0] and counts.sum() == 7
    with pytest.raises(aif.errors.ParameterError, match="0 to 2"):
        match_classes(pred, true + 1, 3)


def test_belief_pool_holds_the_filtered_posteriors_corners_and_mixtures():
    model = TabularModel.from_aif(GridWorld((2, 2)).generative_model(), device="cpu")
    buffer = ReplayBuffer()
    rng = np.random.default_rng(0)
    for length in (3, 3, 5):  # episodes of two lengths
        buffer.add([rng.integers(4, size=length + 1)], rng.integers(5, size=(length, 1)))
    pool = aif_deep.belief_pool(model, buffer, np.random.default_rng(1), copies=2)
    assert len(pool) == 1 and pool[0].shape == (4 + 4 + 6 + 2 * 2 * 4, 4)
    torch.testing.assert_close(pool[0].sum(-1), torch.ones(len(pool[0]), dtype=pool[0].dtype))
    # The first rows: the first episode filtered as an Agent does (infer, then predict under the action taken).
    obs, actions, _ = buffer.episodes[0]
    prior = model.prior()
    for t in range(2):
        qs = aif_deep.infer_states(model, [torch.as_tensor(obs[0][t:t + 1])], [p[None] for p in prior])
        torch.testing.assert_close(pool[0][2 * t], qs[0][0])  # rows alternate between the two 3-step episodes
        prior = [q[0] for q in aif_deep.predict(model, qs, torch.as_tensor(actions[t:t + 1]))]
    corners = pool[0][-16:-8]
    assert torch.equal(corners, torch.eye(4, dtype=corners.dtype).repeat(2, 1))
