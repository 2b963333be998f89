"""aif_deep reliability: bad input names its culprit; agents, buffers and training runs checkpoint and resume
exactly on the CPU; damaged checkpoints raise aif.io.FormatError."""

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import aif  # noqa: E402
import aif_deep  # noqa: E402
from aif.errors import BeliefError, ModelError, ObservationError, ParameterError, PolicyError  # noqa: E402
from aif.io import FormatError, encode, write_archive  # noqa: E402
from aif_deep.checkpoint import load_agent, load_buffer, save_agent, save_buffer  # noqa: E402
from aif_deep.neural import Bernoulli, Categorical, Gaussian, NeuralModel  # noqa: E402
from aif_deep.training import ReplayBuffer, TrainSettings, load_checkpoint, save_checkpoint, train  # noqa: E402

torch.set_num_threads(1)


def _tabular(seed=0):
    # On the CPU also where a GPU is present: load_agent restores agents on the CPU, and these tests compare
    # the restored agent with the original.
    return aif_deep.TabularModel.from_aif(aif.random_model(np.random.default_rng(seed), [3, 4], [3, 2], [2, 3]),
                                          device="cpu")


def _drive(agent, n, seed):
    """``n`` steps on observations drawn from a fixed stream; returns the actions (ints)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        obs = [int(rng.integers(o)) for o in agent.model.num_obs]
        out.append(agent.step(obs).tolist())
    return out


# ----------------------------------------------------------------------------------------------------------
# Input checks: type and culprit named


def test_neural_model_rejects_images_of_the_wrong_shape():
    model = NeuralModel([9], [5], [Bernoulli((8, 8))], seed=0).eval()
    assert aif_deep.infer_states(model, [np.zeros((3, 8, 8), dtype=int)])[0].shape == (3, 9)
    for bad in (np.zeros((7, 8), dtype=int), np.zeros((2, 8, 7), dtype=int), np.zeros(64, dtype=int)):
        with pytest.raises(ObservationError, match=r"obs\[0\] has shape .*Bernoulli.*\(\*lead, 8, 8\)"):
            aif_deep.infer_states(model, [bad])


def test_neural_model_rejects_gaussian_vectors_of_the_wrong_length():
    """Gaussian modalities do not pass ``infer_states`` yet (neural.py's docstring): the model's own
    ``log_likelihood`` and ``messages`` check them."""
    model = NeuralModel([3], [2], [Categorical(4), Gaussian((5,))], seed=0).eval()
    assert model.log_likelihood([torch.tensor([1, 2]), torch.zeros(2, 5)])[1].shape == (2, 3)
    with pytest.raises(ObservationError, match=r"obs\[1\] has shape \(2, 4\).*Gaussian.*\(\*lead, 5\)"):
        model.log_likelihood([torch.tensor([1, 2]), torch.zeros(2, 4)])
    with pytest.raises(ObservationError, match=r"obs\[1\] has shape \(\).*Gaussian"):
        model.messages([torch.tensor(1), torch.tensor(0.5)])


def test_neural_model_rejects_categorical_outcomes_out_of_range_and_wrong_modality_count():
    model = NeuralModel([3], [2], [Categorical(4)], seed=0).eval()
    with pytest.raises(ObservationError, match=r"observation 7 .*modality 0 .*4 outcomes"):
        aif_deep.infer_states(model, [7])
    with pytest.raises(ObservationError, match=r"obs\[0\] has shape \(5,\)"):
        aif_deep.infer_states(model, [torch.ones(5) / 5])
    with pytest.raises(ObservationError, match=r"obs has 2 entries .*1 modalities"):
        aif_deep.infer_states(model, [1, 2])


def test_neural_model_checks_training_windows_too():
    """``sequence_vfe`` encodes through ``messages``: a wrong image shape is named there as well."""
    model = NeuralModel([9], [5], [Bernoulli((8, 8))], seed=0)
    batch = {"observations": [np.zeros((2, 3, 8, 7), dtype=int)], "actions": np.zeros((2, 2, 1), dtype=int),
             "rewards": np.zeros((2, 2)), "first": np.array([True, False])}
    with pytest.raises(ObservationError, match=r"obs\[0\] has shape \(6, 8, 7\).*\(\*lead, 8, 8\)"):
        aif_deep.sequence_vfe(model, batch)


def test_agent_and_rollout_settings_are_checked():
    model = _tabular()
    with pytest.raises(ParameterError, match="stochastic selection needs rng"):
        aif_deep.Agent(model, selection=aif.Selection("stochastic"))
    with pytest.raises(TypeError, match="model must implement"):
        aif_deep.Agent("not a model")
    with pytest.raises(PolicyError):
        aif_deep.Agent(model, policies=np.zeros((2, 1, 5), dtype=int))  # 5 factors for a 2-factor model
    with pytest.raises(ParameterError, match="steps must be at least 1"):
        aif_deep.rollout(aif_deep.Agent(model, batch_shape=(1,)), [], 0)


@pytest.mark.parametrize("make, error, message", [
    (lambda: NeuralModel([0], [2], [Categorical(3)]), aif.ModelError, r"num_states\[0\] is 0"),
    (lambda: NeuralModel([3], [2, 0], [Categorical(3)]), aif.ModelError, r"num_states \[3\] and num_controls"),
    (lambda: NeuralModel([3, 2], [2, 0], [Categorical(3)]), aif.ModelError, r"num_controls\[1\] is 0"),
    (lambda: NeuralModel([3], [2], [Categorical(3), Bernoulli((0, 4))]), aif.ModelError,
     r"observations\[1\] is Bernoulli"),
    (lambda: NeuralModel([3], [2], [Categorical(3)], unimix=1.5), ParameterError, r"unimix must be in \[0, 1\]"),
    (lambda: NeuralModel([3], [2], [Categorical(3)], info_gain_samples=0), ParameterError, r"info_gain_samples"),
    (lambda: aif_deep.unimix(torch.ones(3) / 3, -0.1), ParameterError, r"eps must be in \[0, 1\], got -0.1"),
    (lambda: TrainSettings(steps=-1), ParameterError, r"TrainSettings.steps must be at least 0, got -1"),
    (lambda: TrainSettings(batch_size=0), ParameterError, r"TrainSettings.batch_size must be at least 1"),
    (lambda: TrainSettings(lr=0.0), ParameterError, r"TrainSettings.lr must be positive"),
    (lambda: TrainSettings(checkpoint_every=0), ParameterError, r"TrainSettings.checkpoint_every"),
    (lambda: aif_deep.QSettings(tau=2.0), ParameterError, r"QSettings.tau must be in \[0, 1\], got 2.0"),
    (lambda: aif_deep.QSettings(lr=float("nan")), ParameterError, r"QSettings.lr"),
    (lambda: aif_deep.Agent(_tabular(), gamma=-1.0), ParameterError, r"gamma must be positive and finite, got -1.0"),
    (lambda: aif_deep.Agent(_tabular(), alpha=torch.tensor([1.0, float("inf")])), ParameterError, r"alpha must be"),
])
def test_constructors_name_the_bad_setting(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_replay_buffer_names_the_bad_argument():
    buffer = ReplayBuffer()
    with pytest.raises(ParameterError, match=r"observations\[0\] has 3 steps; an episode of 3 actions needs 4"):
        buffer.add([np.zeros(3)], np.zeros((3, 1)))
    with pytest.raises(ParameterError, match=r"actions must have shape \(T, num_factors\)"):
        buffer.add([np.zeros(3)], np.zeros(2))
    with pytest.raises(ParameterError, match=r"rewards has shape \(3,\), expected \(2,\)"):
        buffer.add([np.zeros(3)], np.zeros((2, 1)), np.zeros(3))


# ----------------------------------------------------------------------------------------------------------
# Agent checkpoints


@pytest.mark.parametrize("mode", ["deterministic", "stochastic"])
def test_restored_tabular_agent_continues_with_identical_actions(tmp_path, mode):
    def make():
        return aif_deep.Agent(_tabular(), policy_horizon=2, selection=aif.Selection(mode, "full"), alpha=2.0,
                              rng=torch.Generator().manual_seed(5))

    whole = make()
    expected = _drive(whole, 12, seed=1)
    first = make()
    head = _drive(first, 5, seed=1)
    path = tmp_path / "agent.pt"
    save_agent(path, first)
    restored = load_agent(path)
    assert restored.t == 5 and restored is not first
    # continue on the same observation stream: skip the first 5 draws of it
    rng = np.random.default_rng(1)
    for _ in range(5):
        [int(rng.integers(o)) for o in restored.model.num_obs]
    tail = [restored.step([int(rng.integers(o)) for o in restored.model.num_obs]).tolist() for _ in range(7)]
    assert head + tail == expected
    for a, b in zip(restored.qs, whole.qs, strict=True):
        assert torch.equal(a, b)
    assert torch.equal(restored.q_pi, whole.q_pi)
    if mode == "stochastic":  # the random generator's state travelled too
        assert torch.equal(restored.rng.get_state(), whole.rng.get_state())


def test_restored_neural_agent_continues_with_identical_actions(tmp_path):
    def make(seed):
        return NeuralModel([4], [2], [Categorical(3)], C=[torch.tensor([0.0, 1.0, 2.0])], seed=seed).eval()

    agent = aif_deep.Agent(make(0), policy_horizon=2, selection=aif.Selection("stochastic"), alpha=4.0,
                           rng=torch.Generator().manual_seed(2))
    with torch.no_grad():
        _drive(agent, 3, seed=4)
        path = tmp_path / "neural.pt"
        save_agent(path, agent)
        expected = _drive(agent, 6, seed=9)
        restored = load_agent(path, model=make(7))  # other weights, replaced by the saved ones
        assert _drive(restored, 6, seed=9) == expected
    with pytest.raises(ParameterError, match="model: this file holds the weights"):
        load_agent(path)


@pytest.mark.parametrize("make", [lambda m: aif_deep.Agent.pymdp_legacy(m, 2), lambda m: aif_deep.Agent.pymdp(m, 1),
                                  lambda m: aif_deep.Agent(m, inference=aif.Exact())])
def test_agent_settings_round_trip(tmp_path, make):
    agent = make(_tabular(3))
    agent.step([0, 1])
    save_agent(tmp_path / "a.pt", agent)
    back = load_agent(tmp_path / "a.pt")
    assert type(back.inference) is type(agent.inference) and back.inference == agent.inference
    assert back.efe == agent.efe and back.selection == agent.selection and back.efe_terms == agent.efe_terms
    assert torch.equal(back.step([1, 1]), agent.step([1, 1])) and torch.equal(back.G, agent.G)


def test_batched_agent_round_trips_its_whole_state(tmp_path):
    model = aif_deep.TabularModel.from_aif([aif.random_model(np.random.default_rng(s), [3], [4], [2])
                                            for s in range(3)], device="cpu")
    agent = aif_deep.Agent(model, gamma=torch.tensor([1.0, 4.0, 16.0], dtype=torch.float64))
    agent.step(np.array([[0], [1], [3]]))
    save_agent(tmp_path / "batch.pt", agent)
    back = load_agent(tmp_path / "batch.pt")
    assert back.batch_shape == (3,) and torch.equal(back.gamma, agent.gamma)
    assert torch.equal(back.G, agent.G) and all(torch.equal(back.terms[k], v) for k, v in agent.terms.items())
    assert np.array_equal(back.policies, agent.policies)
    assert all(torch.equal(a, b) for a, b in zip(back.model.A, model.A, strict=True))
    assert torch.equal(back.step(np.array([[2], [2], [0]])), agent.step(np.array([[2], [2], [0]])))


def test_save_agent_refuses_what_it_cannot_store(tmp_path):
    agent = aif_deep.Agent(_tabular(), efe_terms=(aif.Utility(), aif.TerminalValue(lambda qs: 0.0)))
    with pytest.raises(TypeError, match=r"efe_terms'\]\[1\].value"):
        save_agent(tmp_path / "x.pt", agent)
    with pytest.raises(TypeError, match="aif_deep.Agent"):
        save_agent(tmp_path / "x.pt", aif.Agent(aif.random_model(np.random.default_rng(0), [2], [2], [2])))


# ----------------------------------------------------------------------------------------------------------
# Replay buffers and training runs


def _grid_buffer(seed, episodes=4, steps=6):
    rng = np.random.default_rng(seed)
    buffer = ReplayBuffer()
    for _ in range(episodes):
        buffer.add([rng.integers(0, 2, size=(steps + 1, 4, 4))], rng.integers(0, 3, size=(steps, 1)),
                   rng.normal(size=steps))
    return buffer


def test_buffer_round_trips_exactly(tmp_path):
    buffer = _grid_buffer(0)
    save_buffer(tmp_path / "buffer.pt", buffer)
    back = load_buffer(tmp_path / "buffer.pt")
    assert len(back) == len(buffer) and back.num_steps == buffer.num_steps
    for (o1, a1, r1), (o2, a2, r2) in zip(buffer.episodes, back.episodes, strict=True):
        assert all(np.array_equal(x, y) and x.dtype == y.dtype for x, y in zip(o1, o2, strict=True))
        assert np.array_equal(a1, a2) and np.array_equal(r1, r2)
    s1 = buffer.sample(5, 3, np.random.default_rng(1))
    s2 = back.sample(5, 3, np.random.default_rng(1))
    assert all(np.array_equal(s1[k], s2[k]) for k in ("actions", "rewards", "first"))


def test_training_resumed_from_a_checkpoint_and_reloaded_buffer_equals_an_uninterrupted_run(tmp_path):
    """Interrupted at step 6, buffer saved and reloaded, model rebuilt with other weights: bit for bit equal
    weights, optimiser moments and history after 12 steps."""
    settings = dict(batch_size=4, length=3, seed=2, progress=False, log_every=3)
    buffer = _grid_buffer(1)

    def make(seed):
        return NeuralModel([4], [3], [Bernoulli((4, 4))], seed=seed)

    whole = make(0)
    ref = train(whole, buffer, TrainSettings(steps=12, **settings))
    path = str(tmp_path / "run.pt")
    part = make(0)
    train(part, buffer, TrainSettings(steps=6, checkpoint=path, **settings))
    save_buffer(tmp_path / "buffer.pt", buffer)
    resumed_model = make(11)
    resumed = train(resumed_model, load_buffer(tmp_path / "buffer.pt"),
                    TrainSettings(steps=12, checkpoint=path, **settings))
    assert resumed.history == ref.history and resumed.step == 12
    for (name, p), q in zip(whole.state_dict().items(), resumed_model.state_dict().values(), strict=True):
        assert torch.equal(p, q), name
    # the final checkpoint holds the optimiser state of the uninterrupted run as well
    gen = torch.Generator().manual_seed(0)
    rng = np.random.default_rng(0)
    probe = make(3)
    opt = torch.optim.Adam(probe.parameters(), lr=1e-2)
    assert load_checkpoint(path, probe, opt, rng, gen).step == 12
    assert opt.state_dict()["state"][0]["step"] == 12


# ----------------------------------------------------------------------------------------------------------
# Damaged files


def _damaged_copies(path, tmp_path):
    data = path.read_bytes()
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(data[: len(data) // 2])
    flipped = bytearray(data)
    for i in range(len(data) // 3, len(data) // 3 + 64):
        flipped[i] ^= 0xFF
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(bytes(flipped))
    text = tmp_path / "text.pt"
    text.write_text("not a checkpoint")
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    return [truncated, corrupt, text, empty]


def test_damaged_agent_files_raise_format_error(tmp_path):
    agent = aif_deep.Agent(_tabular())
    agent.step([0, 1])
    path = tmp_path / "agent.pt"
    save_agent(path, agent)
    for bad in _damaged_copies(path, tmp_path):
        with pytest.raises(FormatError, match=str(bad.name)):
            load_agent(bad)
    save_buffer(tmp_path / "buffer.pt", _grid_buffer(0, episodes=1))
    with pytest.raises(FormatError, match="holds a 'aif_deep.replay_buffer', not a 'aif_deep.agent'"):
        load_agent(tmp_path / "buffer.pt")
    meta = {"format": "aif", "format_version": 99, "kind": "aif_deep.agent", "sha256": {}}
    with open(tmp_path / "future.pt", "wb") as f:
        np.savez(f, __aif_meta__=np.array(json.dumps(meta)))
    with pytest.raises(FormatError, match="version"):
        load_agent(tmp_path / "future.pt")


def test_checkpoint_holding_pickled_code_is_refused(tmp_path):
    """weights_only loading: a file that would build an arbitrary object is refused, not executed."""
    torch.save({"format": "aif_deep.agent", "format_version": 1, "evil": np.random.default_rng(0)},
               tmp_path / "evil.pt")
    with pytest.raises(FormatError, match="evil.pt"):
        load_agent(tmp_path / "evil.pt")


def test_damaged_training_checkpoints_raise_format_error(tmp_path):
    model = NeuralModel([4], [3], [Bernoulli((4, 4))], seed=0)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    path = tmp_path / "run.pt"
    save_checkpoint(path, model, opt, aif_deep.TrainResult(step=3), np.random.default_rng(0),
                    torch.Generator().manual_seed(0))
    assert load_checkpoint(path, NeuralModel([4], [3], [Bernoulli((4, 4))], seed=1)).step == 3
    for bad in _damaged_copies(path, tmp_path):
        with pytest.raises(FormatError, match=str(bad.name)):
            load_checkpoint(bad, model)
    with pytest.raises(FormatError, match="weights do not fit"):
        load_checkpoint(path, NeuralModel([5], [3], [Bernoulli((4, 4))]))
    with pytest.raises(FormatError, match="lacks the entries"):
        arrays: dict = {}
        fields = encode({"step": 3}, arrays, "aif_deep.training")
        write_archive(tmp_path / "partial.pt", "aif_deep.training", {"fields": fields}, arrays)
        load_checkpoint(tmp_path / "partial.pt", model)
    for bad in _damaged_copies(tmp_path / "run.pt", tmp_path):
        with pytest.raises(FormatError):
            load_buffer(bad)


def _with(tm, **arrays):
    return tm.replace(**arrays)


@pytest.mark.parametrize("build, error, match", [
    (lambda tm: aif_deep.Agent(tm).reset([torch.tensor([float("nan"), 0.5, 0.5]), torch.ones(4) / 4]),
     BeliefError, r"prior\[0\] is not a probability vector: entry 0 is nan"),
    (lambda tm: aif_deep.Agent(tm).reset([torch.ones(3), torch.ones(4) / 4]),
     BeliefError, r"prior\[0\] is not a probability vector: it sums to 3, not 1"),
    (lambda tm: aif_deep.Agent(tm).reset([torch.tensor([1.5, -0.5, 0.0]), torch.ones(4) / 4]),
     BeliefError, r"prior\[0\] is not a probability vector: entry 1 is -0.5"),
    (lambda tm: aif_deep.Agent(tm).reset([torch.ones(3) / 3]), BeliefError, r"prior has 1 vectors .* 2 factors"),
    (lambda tm: aif_deep.infer_states(tm, [0, 0], [torch.ones(3) / 3, torch.ones(5) / 5]),
     BeliefError, r"prior\[1\] has shape \(5,\), expected \(\.\.\., 4\)"),
    (lambda tm: aif_deep.Agent(_with(tm, E=torch.full((6,), -1.0, dtype=torch.float64))), ModelError,
     r"E has a negative entry -1.0 at index \(0,\)"),  # aif's class and message (E is part of the model)
    (lambda tm: aif_deep.Agent(_with(tm, E=torch.full((5,), 0.2, dtype=torch.float64))), ParameterError,
     r"model.E has 5 entries but the agent has 6 policies"),
    (lambda tm: aif_deep.Agent(_with(tm, A=[tm.A[0].long(), tm.A[1]])), ModelError, r"A\[0\] has dtype torch.int64"),
    (lambda tm: aif_deep.Agent(_with(tm, B=[tm.B[0].float(), tm.B[1]])), ModelError,
     r"B\[0\] is torch.float32 on cpu but A\[0\] is torch.float64"),
    (lambda tm: aif_deep.Agent(_with(tm, D=[tm.D[0].numpy(), tm.D[1]])), ModelError, r"D\[0\] is a ndarray, not a"),
    (lambda tm: aif_deep.Agent(tm).infer_states([np.array([0, 1]), np.array([1, 1])]), ObservationError,
     r"obs\[0\] has the batch shape \(2,\) but the agent is unbatched"),
    (lambda tm: aif_deep.Agent(tm).infer_states([torch.tensor([0.5, 0.6, 0.0]), 0]), ObservationError,
     r"obs\[0\] is not a probability vector: it sums to 1.1, not 1"),
])
def test_aif_deep_rejects_what_aif_rejects(build, error, match):
    """NaN, negative and unnormalised beliefs, a bad E, integer, mixed and NumPy arrays in a model, and a batch of
    observations given to one agent: the same error classes and messages as aif, at the public boundary."""
    with pytest.raises(error, match=match):
        build(_tabular())


def test_tensors_on_another_device_are_refused():
    tm = _tabular()
    with pytest.raises(BeliefError, match=r"prior\[0\] is on meta but the model is on cpu"):
        aif_deep.infer_states(tm, [0, 0], [torch.ones(3, device="meta") / 3, torch.ones(4) / 4])


@pytest.mark.parametrize("route", ["torch", "numpy"])
def test_a_failed_step_leaves_the_deep_agent_and_its_aif_agents_as_they_were(route):
    model = aif.envs.TMaze().generative_model(learn_A=True)
    settings = dict(learning=aif.Learning(learn_B=False, online=route == "torch"))
    make = lambda: aif_deep.Agent(aif_deep.TabularModel.from_aif(model, device="cpu"), batch_shape=(2,),  # noqa: E731
                                  **settings)
    agent, twin = make(), make()
    obs = np.array([[0, 0, 0], [3, 0, 1]])
    agent.step(obs)
    twin.step(obs)
    run = agent._run
    real = run.infer_policies
    run.infer_policies = lambda: 1 / 0
    with pytest.raises(ZeroDivisionError):
        agent.step(obs[::-1].copy())
    run.infer_policies = real
    assert agent.t == 1
    torch.testing.assert_close(agent.step(obs[::-1].copy()), twin.step(obs[::-1].copy()))
    for a, b in zip(agent.model.pA, twin.model.pA, strict=True):
        torch.testing.assert_close(a, b)
    if route == "numpy":
        assert [len(g.history) for g in run.agents] == [len(g.history) for g in twin._run.agents] == [2, 2]
