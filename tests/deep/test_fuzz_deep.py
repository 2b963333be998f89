"""Fuzz: the rest of ``aif_deep``'s public API (beyond the cycle functions of tests/test_fuzz.py) driven with
malformed inputs, and the regressions of the tensor-level parity audit with ``aif``.

As tests/test_fuzz.py: each case starts from a valid call and replaces one argument by a malformed value; the
call returns a finite result or raises the library's error (``AifError``); any other exception fails the test.
"""

import functools

import numpy as np
import pytest
from hypothesis import strategies as st

import aif
from aif.errors import BeliefError, ModelError, ObservationError, ParameterError, PolicyError, StrategyError

torch = pytest.importorskip("torch")
from _fuzz import check, run  # noqa: E402

import aif_deep  # noqa: E402
from aif_deep import learning  # noqa: E402
from aif_deep.neural import Bernoulli, Categorical, Gaussian, NeuralModel  # noqa: E402

torch.set_num_threads(1)

MODEL = aif.random_model(np.random.default_rng(0), [3, 2], [3, 2], [2, 2], [[0, 1], [1]], [[0], [1]],
                         dirichlet=True)
TM = aif_deep.TabularModel.from_aif(MODEL, device="cpu")
QS = [torch.tensor([0.2, 0.3, 0.5], dtype=torch.float64), torch.tensor([0.6, 0.4], dtype=torch.float64)]
BAD_SCALARS = [np.nan, np.inf, -np.inf, -1.0, 0.0, 1e308, 2.5, -3, 10**12, "x", None, True, [], [0, 1],
               torch.tensor(float("nan")), np.array([1.0, 2.0])]
BAD_SIZES = [0, -1, 2.5, "3", None, True, [3]]
HUGE = [10**12, [10**12]]  # refused by a byte budget before anything is allocated
SMALL = [x for x in BAD_SCALARS if not (isinstance(x, (int, float)) and abs(x) > 1e6)]  # where huge means slow


def bad_beliefs():
    return st.one_of(
        st.sampled_from(BAD_SCALARS),
        st.builds(lambda v, f: [torch.full_like(q, v) if g == f else q for g, q in enumerate(QS)],
                  st.sampled_from([float("nan"), -0.5, 2.0, 0.0]), st.integers(0, 1)),
        st.just([QS[0]]), st.just([QS[0], torch.ones(3, dtype=torch.float64) / 3]), st.just([q.numpy() for q in QS]),
        st.just([QS[0].float(), QS[1]]), st.just([QS[0].to("meta"), QS[1]]), st.just([QS[0].long(), QS[1]]))


def _neural(**kwargs):
    return NeuralModel(**{"num_states": [3], "num_controls": [2], "observations": [Categorical(3)], "hidden": 8,
                          "info_gain_samples": 4, **kwargs})


BAD_HEADS = [Categorical(0), Categorical(2.5), Categorical("3"), Bernoulli(()), Bernoulli((0, 4)), Bernoulli("ab"),
             Bernoulli((2.5, 2)), Gaussian((3,), min_std=-1.0), Gaussian((3,), min_std="x"), "categorical", 3, None]

CASES = {
    "NeuralModel.num_states": (st.sampled_from(BAD_SIZES + [[s] for s in BAD_SIZES + [10**12]]),
                               lambda v: _neural(num_states=v)),
    "NeuralModel.num_controls": (st.sampled_from(BAD_SIZES + [[s] for s in BAD_SIZES]),
                                 lambda v: _neural(num_controls=v)),
    "NeuralModel.observations": (st.sampled_from([*BAD_HEADS, *([h] for h in BAD_HEADS)]),
                                 lambda v: _neural(observations=v)),
    "NeuralModel.hidden": (st.sampled_from(BAD_SIZES + [10**12]), lambda v: _neural(hidden=v)),
    "NeuralModel.other": (st.tuples(st.sampled_from(["unimix", "info_gain_samples", "seed", "max_bytes",
                                                     "reward_preference", "C"]), st.sampled_from(BAD_SCALARS)),
                          lambda kv: _neural(**{kv[0]: [kv[1]] if kv[0] == "C" else kv[1]})),
    "NeuralModel.infer_states": (st.sampled_from([[7], [-1], [2.5], [np.array([0.5, 0.6, 0.0])], ["a"], [None], 3,
                                                  [torch.ones(2, 4) / 4], [0, 0]]),
                                 lambda o: aif_deep.infer_states(_neural().eval(), o)),
    "PolicyEvaluator.horizon": (st.sampled_from(SMALL), lambda h: aif_deep.PolicyEvaluator(TM, h)),
    "PolicyEvaluator.terms": (st.sampled_from(["utility", (), [None], (aif.Utility,), 3]),
                              lambda t: aif_deep.PolicyEvaluator(TM, 1, t)),
    "PolicyEvaluator.control_factors": (st.sampled_from([[5], [-1], "0", [0.5], 3]),
                                        lambda c: aif_deep.PolicyEvaluator(TM, 1, control_factors=c)),
    "PolicyEvaluator.call": (bad_beliefs(), lambda q: aif_deep.PolicyEvaluator(TM, 1)(q)),
    "learning.update_A.pA": (st.sampled_from([*BAD_SCALARS, TM.pA[0], [-p for p in TM.pA], [TM.pA[0]]]),
                             lambda p: learning.update_A(p, [0, 1], QS)),
    "learning.update_A.qs": (bad_beliefs(), lambda q: learning.update_A(TM.pA, [0, 1], q)),
    "learning.update_A.lr": (st.sampled_from(BAD_SCALARS), lambda lr: learning.update_A(TM.pA, [0, 1], QS, lr=lr)),
    "learning.update_B.action": (st.sampled_from([*BAD_SCALARS, [0.5, 1.0], [2, 0], [0, -1], [0, 0, 0]]),
                                 lambda a: learning.update_B(TM.pB, QS, QS, a)),
    "learning.update_B.forgetting": (st.sampled_from(BAD_SCALARS),
                                     lambda f: learning.update_B(TM.pB, QS, QS, [0, 1], forgetting=f)),
    "learning.update_D.qs": (bad_beliefs(), lambda q: learning.update_D(TM.pD, q)),
    "rollout.steps": (st.sampled_from(SMALL), lambda s: aif_deep.rollout(
        aif_deep.Agent(TM, batch_shape=(1,)), [aif.envs.TMaze()], s)),
    "rollout.envs": (st.sampled_from([None, 3, "env", [], [None], [aif.envs.TMaze()] * 2]),
                     lambda e: aif_deep.rollout(aif_deep.Agent(TM, batch_shape=(1,)), e, 1)),
    "QFunction": (st.tuples(st.sampled_from(["num_states", "num_controls", "temperature", "hidden", "seed"]),
                            st.sampled_from(BAD_SIZES + SMALL + HUGE)),
                  lambda kv: aif_deep.QFunction(**{"num_states": [3], "num_controls": [2], "hidden": 8,
                                                   **dict([kv])})),
    "QSettings": (st.tuples(st.sampled_from(["steps", "batch_size", "lr", "discount", "tau"]),
                            st.sampled_from(BAD_SCALARS)), lambda kv: aif_deep.QSettings(**dict([kv]))),
    "TrainSettings": (st.tuples(st.sampled_from(["steps", "batch_size", "length", "lr", "usage_weight",
                                                 "checkpoint_every", "log_every"]), st.sampled_from(BAD_SCALARS)),
                      lambda kv: aif_deep.TrainSettings(**dict([kv]))),
    "online.settings": (st.tuples(st.sampled_from([
        (aif_deep.Softmax, "gamma"), (aif_deep.Softmax, "anneal_steps"), (aif_deep.EpsilonGreedy, "start"),
        (aif_deep.EpsilonGreedy, "decay_steps"), (aif_deep.RewardRisk, "preference"),
        (aif_deep.EnsembleInfoGain, "noise_sd"), (aif_deep.EpistemicCap, "cap"), (aif_deep.TDLearning, "lr"),
        (aif_deep.TDLearning, "batch_size"), (aif_deep.TDLearning, "discount"),
        (functools.partial(aif_deep.StateVectorModel, num_actions=2), "num_features"),
        (functools.partial(aif_deep.StateVectorModel, 4), "num_actions")]),
        st.sampled_from(BAD_SCALARS)), lambda kv: kv[0][0](**{kv[0][1]: kv[1]})),
    "Ensemble": (st.tuples(st.sampled_from(["num_features", "num_actions", "size", "hidden"]),
                           st.sampled_from(BAD_SIZES + HUGE)),
                 lambda kv: aif_deep.Ensemble(**{"num_features": 2, "num_actions": 2, "size": 2, "hidden": 4,
                                                 **dict([kv])})),
    "images": (st.tuples(st.sampled_from([aif_deep.NoisyGridImages, aif_deep.NoisyTMazeImages]),
                         st.sampled_from([{"image_shape": v} for v in [(0, 4), (4,), "ab", None, (2.5, 3), (-1, 3)]]
                                         + [{"flip": v} for v in BAD_SCALARS])),
               lambda ck: ck[0](aif.envs.GridWorld() if ck[0] is aif_deep.NoisyGridImages else aif.envs.TMaze(),
                                **ck[1])),
    "fit": (st.tuples(st.sampled_from(["params", "steps", "lr", "gamma", "sampling", "observations", "actions"]),
                      st.sampled_from([*SMALL, ["nope"], np.full((1, 2, 2), 9), np.zeros((1, 2, 5), int)])),
            lambda kv: aif_deep.fit(TM, **{"observations": np.zeros((1, 3, 2), int),
                                           "actions": np.zeros((1, 2, 2), int),
                                           "steps": 1, "progress": False, **dict([kv])})),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_deep_functions_raise_the_librarys_error_or_return_finite_values(name):
    run(*CASES[name], 15)


@pytest.mark.parametrize("save, load", [(aif_deep.save_agent, aif_deep.load_agent),
                                        (aif_deep.save_buffer, aif_deep.load_buffer)])
def test_checkpoints_refuse_objects_of_the_wrong_type(tmp_path, save, load):
    for bad in (None, "agent", 3, TM, aif.Agent(MODEL), aif_deep.ReplayBuffer() if save is aif_deep.save_agent
                else aif_deep.Agent(TM)):
        check(lambda bad=bad: save(tmp_path / "x.pt", bad))
    for path in (tmp_path / "missing.pt", tmp_path):
        check(lambda path=path: load(path), (OSError,))
    check(lambda: load(tmp_path / "x.pt", max_bytes=-1))
    model = _neural()
    opt = torch.optim.Adam(model.parameters())
    for bad in (None, "model", TM):
        check(lambda bad=bad: aif_deep.save_checkpoint(tmp_path / "c.pt", bad, opt, aif_deep.TrainResult(),
                                                       np.random.default_rng(0), torch.Generator()))
        check(lambda bad=bad: aif_deep.load_checkpoint(tmp_path / "c.pt", bad))


# ----------------------------------------------------------------------------------------------------------
# Regressions of the tensor-level parity audit with aif (each was silently accepted or a raw torch error)


def _with(**arrays):
    return TM.replace(**arrays)


def _D0(values):
    return [torch.tensor(values, dtype=torch.float64), TM.D[1]]


@pytest.mark.parametrize("build, match", [
    (lambda: aif_deep.Agent(_with(A=[TM.A[0].clone().fill_(float("nan")), TM.A[1]])),
     r"^A\[0\] has a non-finite entry nan at index \(0, 0, 0\)$"),
    (lambda: aif_deep.Agent(_with(D=_D0([1.2, -0.1, -0.1]))), r"^D\[0\] has a negative entry -0.1 at index \(1,\)$"),
    (lambda: aif_deep.Agent(_with(D=_D0([0.5, 0.2, 0.2]))), r"^columns of D\[0\] sum to 0.9 at index \(\)"),
    (lambda: aif_deep.Agent(_with(A_dependencies=[[0], [5]])), r"A_dependencies\[1\] names factor 5"),
])
def test_deep_agent_checks_the_model_values_as_aif(build, match):
    """aif.GenerativeModel refuses these; aif_deep.Agent ran on them."""
    with pytest.raises(ModelError, match=match):
        build()


def test_a_batched_models_bad_agent_is_named():
    tm = aif_deep.TabularModel.from_aif([MODEL, MODEL], device="cpu")
    D0 = tm.D[0].clone()
    D0[1] = torch.tensor([0.5, 0.2, 0.2])
    with pytest.raises(ModelError, match=r"^agent \(1,\) of the batch: columns of D\[0\] sum to 0.9"):
        aif_deep.Agent(tm.replace(D=[D0, tm.D[1]]))


@pytest.mark.parametrize("build, match", [
    (lambda: _with(A=[a.long() for a in TM.A]), r"A\[0\] has dtype torch.int64"),
    (lambda: _with(B=[TM.B[0].float(), TM.B[1]]), r"B\[0\] is torch.float32 on cpu but A\[0\] is torch.float64"),
    (lambda: _with(D=[TM.D[0].to("meta"), TM.D[1]]), r"D\[0\] is torch.float64 on meta but A\[0\] is .* on cpu"),
    (lambda: _with(D=[d.numpy() for d in TM.D]), r"D\[0\] is a ndarray, not a torch.Tensor"),
    (lambda: _with(A=TM.A[0]), r"A must be a list of tensors.*wrap it as \[A\]"),
    (lambda: TM.to("meta"), r"device is meta, which holds no values"),
    (lambda: aif_deep.TabularModel.from_aif(MODEL, device="gpu"), r"device must be a torch device"),
    (lambda: aif_deep.TabularModel.from_aif(MODEL, device="cpu", dtype=torch.int64), r"dtype must be a floating"),
    (lambda: aif_deep.TabularModel.from_aif(MODEL, device="cpu", dtype="float32"), r"dtype must be a floating"),
])
def test_tabular_model_refuses_bad_tensors_at_construction(build, match):
    """Integer, mixed, meta and NumPy arrays were accepted by TabularModel (and by from_aif / to) until an Agent
    or a step met them."""
    with pytest.raises(ModelError, match=match):
        build()


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is present here")
@pytest.mark.parametrize("build", [lambda: aif_deep.TabularModel.from_aif(MODEL, device="cuda"),
                                   lambda: TM.to("cuda:1")])
def test_a_missing_cuda_device_is_a_model_error(build):
    """Was torch's AssertionError "Torch not compiled with CUDA enabled"."""
    with pytest.raises(ModelError, match=r"device is cuda.* but no such CUDA device is available"):
        build()


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(gamma=torch.ones(2, dtype=torch.float64)), ParameterError,
     r"gamma has shape \(2,\), which does not fit the agents' batch shape \(\)"),  # was a silent batch of two
    (dict(gamma=torch.ones(5)), ParameterError, r"gamma has shape \(5,\)"),  # was a RuntimeError at the step
    (dict(gamma=torch.ones((), device="meta")), ParameterError, r"gamma is on meta but the model is on cpu"),
    (dict(gamma=torch.tensor(True)), ParameterError, r"gamma must be a positive number"),
    (dict(alpha=torch.tensor(1 + 1j)), ParameterError, r"alpha must be a non-negative number"),
    (dict(batch_shape=(0,)), ParameterError, r"batch_shape must be a tuple of positive integers"),
    (dict(batch_shape=(True,)), ParameterError, r"batch_shape must be a tuple of positive integers"),
    (dict(model="m"), StrategyError, r"model must implement aif_deep.BeliefModel"),
])
def test_deep_agent_settings_regressions(kwargs, error, match):
    kwargs = {"model": TM, **kwargs}
    with pytest.raises(error, match=match):
        aif_deep.Agent(**kwargs).step([0, 1])


def test_a_fractional_or_boolean_observation_has_aifs_message():
    for obs, text in (([0.5, 0], "0.5"), ([True, 0], "True")):
        for agent in (aif.Agent(MODEL), aif_deep.Agent(TM)):
            with pytest.raises(ObservationError, match=rf"^obs\[0\] = {text} is not an outcome index"):
                agent.step(obs)


def test_an_unbatched_agent_refuses_a_batch_of_observations():
    agent = aif_deep.Agent(TM)
    for obs in ([np.array([0, 1]), np.array([1, 0])], torch.tensor([[0, 1], [1, 0]]), [np.ones((2, 3)) / 3, 0]):
        with pytest.raises(ObservationError, match="the agent is unbatched"):
            agent.step(obs)
    assert agent.t == 0 and agent.qs is None


@pytest.mark.parametrize("kwargs, match", [
    (dict(hidden=10**9), r"NeuralModel would take about [\d,]+ bytes, above max_bytes = 1,073,741,824; the "
                         r"largest part is transitions\[0\]"),
    (dict(num_states=[1000, 1000], num_controls=[2, 2]), r"largest part is transition table B\[0\]"),
    (dict(num_states=[3000], observations=[Gaussian((2,))], info_gain_samples=64),
     r"information-gain samples of modality 0"),
    (dict(hidden=64, max_bytes=1000), r"above max_bytes = 1,000"),
])
def test_neural_model_refuses_a_model_over_its_byte_budget_before_allocating(kwargs, match):
    with pytest.raises(ParameterError, match=match):
        _neural(**kwargs)
    assert _neural(hidden=64, max_bytes=10**6).num_states == [3]


@pytest.mark.parametrize("build, match", [
    (lambda: aif_deep.QFunction([3], [2], hidden=10**9), r"^QFunction would take about [\d,]+ bytes, above max_bytes = "
                                                          r"1,073,741,824; the largest part is net\[2\]"),
    (lambda: aif_deep.QFunction([10**12], [2]), r"largest part is net\[0\]"),
    (lambda: aif_deep.QFunction([3], [10**6, 10**6]), r"largest part is net\[4\]"),
    (lambda: aif_deep.Ensemble(10**12, 2), r"^Ensemble would take about [\d,]+ bytes, .* largest part is weights\[2\]"),
    (lambda: aif_deep.Ensemble(4, 2, hidden=10**9), r"largest part is weights\[1\]"),
    (lambda: aif_deep.Ensemble(4, 2, size=10**9), r"above max_bytes"),
    (lambda: aif_deep.Ensemble(4, 2, max_bytes=1000), r"above max_bytes = 1,000"),
])
def test_qfunction_and_ensemble_refuse_a_network_over_their_byte_budget_before_allocating(build, match):
    """Each tried to allocate (terabytes for these sizes): refused from the sizes alone, as NeuralModel is."""
    with pytest.raises(ParameterError, match=match):
        build()
    assert aif_deep.QFunction([3], [2], hidden=8, max_bytes=10**4).num_states == [3]
    assert len(aif_deep.Ensemble(4, 2, hidden=8, max_bytes=10**4).weights) == 3


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(num_states=[2.5]), ModelError, r"num_states\[0\] is 2.5"),  # was silently int(2.5) == 2
    (dict(num_states=["3"]), ModelError, r"num_states\[0\] is '3'"),
    (dict(hidden=-1), ParameterError, r"NeuralModel.hidden must be at least 1"),  # was a raw RuntimeError
    (dict(hidden=2.5), ParameterError, r"NeuralModel.hidden must be at least 1, got 2.5"),
    (dict(observations=[Categorical(2.5)]), ModelError, r"observations\[0\] is Categorical\(num_obs=2.5\)"),
    (dict(unimix="x"), ParameterError, r"unimix must be in \[0, 1\]"),  # was a raw ValueError
])
def test_neural_model_names_bad_sizes(kwargs, error, match):
    with pytest.raises(error, match=match):
        _neural(**kwargs)


def test_settings_refuse_strings_bools_and_fractions():
    for make in (lambda: aif_deep.TrainSettings(batch_size=2.5), lambda: aif_deep.QSettings(lr="x"),
                 lambda: aif_deep.TrainSettings(steps=True)):
        with pytest.raises(ParameterError):
            make()


def test_beliefs_on_another_device_or_dtype_are_refused_by_the_evaluator():
    with pytest.raises(BeliefError, match=r"qs\[0\] is on meta but the model is on cpu"):
        aif_deep.PolicyEvaluator(TM, 1)([QS[0].to("meta"), QS[1]])
    with pytest.raises(PolicyError):
        aif_deep.PolicyEvaluator(TM, 0)


@pytest.mark.parametrize("E, error, match", [
    (np.full(3, 1 / 3), ParameterError, r"^model.E has 3 entries but the agent has 4 policies$"),
    (np.array([-1.0, 1.0, 0.5, 0.5]), ModelError, r"^E has a negative entry -1.0 at index \(0,\)$"),
    (np.array([np.nan, 0.5, 0.25, 0.25]), ModelError, r"^E has a non-finite entry nan at index \(0,\)$"),
    (np.full(4, 0.3), ModelError, r"^E sums to 1.2; it must sum to 1 within 1e-06$"),
])
def test_a_bad_E_gets_the_same_error_from_both_agents(E, error, match):
    """aif_deep gave a PolicyError ("model.E has shape ...", "model.E is not a probability vector") for each."""
    for build in (lambda: aif.Agent(MODEL.replace(E=E)), lambda: aif_deep.Agent(TM.replace(E=torch.tensor(E)))):
        with pytest.raises(error, match=match):
            build()


def test_both_agents_refuse_a_model_of_the_wrong_type_with_a_strategy_error():
    for agent in (aif.Agent, aif_deep.Agent):  # aif's was a plain TypeError
        with pytest.raises(StrategyError,
                           match="^model must (be an aif.GenerativeModel|implement aif_deep.BeliefModel), "
                                                "got str$"):
            agent("m")


def test_the_policy_evaluator_checks_belief_values_unless_told_not_to():
    """NaN or unnormalised beliefs gave a NaN G silently; the Agent's own call passes check_values=False."""
    ev, nan = aif_deep.PolicyEvaluator(TM, 1), [torch.full_like(QS[0], float("nan")), QS[1]]
    with pytest.raises(BeliefError, match=r"^qs\[0\] is not a probability vector: entry 0 is nan$"):
        ev(nan)
    with pytest.raises(BeliefError, match=r"^qs\[1\] is not a probability vector: it sums to 2, not 1$"):
        ev.posterior([QS[0], 2 * QS[1]])
    assert torch.isnan(ev(nan, check_values=False)[0]).any()  # shapes only: no host synchronisation


def test_neural_model_counts_its_information_gain_noise():
    """The noise drawn for the information-gain estimator (info_gain_samples per modality) is in the budget."""
    with pytest.raises(ParameterError, match="information-gain noise of modality 0"):
        NeuralModel([2], [2], [Categorical(3)], info_gain_samples=10**12)
