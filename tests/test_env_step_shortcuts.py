"""``GridWorld.step`` and ``TMaze.step`` take shortcuts for speed (benchmarks/bench_loop.py times them in every loop):
they must give ``POMDPEnv.step``'s results and leave the generator where it leaves it, to the bit, and hand every
unusual case to it."""

import copy
import pickle

import numpy as np
import pytest

from aif.envs import GridWorld, TMaze
from aif.envs.pomdp import POMDPEnv
from aif.errors import PolicyError

WALLS = ((1, 1), (1, 2), (3, 1), (3, 2), (3, 3))


def twins(make, seed, options=None):
    """Two environments after the same reset: one steps with its own ``step``, the other with ``POMDPEnv.step``."""
    a, b = make(), make()
    out_a, out_b = a.reset(seed=seed, options=options), b.reset(seed=seed, options=options)
    np.testing.assert_array_equal(out_a[0], out_b[0])
    return a, b


def assert_same_step(a, b, action):
    got, want = a.step(action), POMDPEnv.step(b, action)
    assert type(got[0]) is np.ndarray and got[0].dtype == want[0].dtype == np.int64
    np.testing.assert_array_equal(got[0], want[0], strict=True)
    assert got[1:4] == want[1:4] and type(got[1]) is float and type(got[2]) is bool
    assert got[4] == want[4] and a.state == b.state
    np.testing.assert_array_equal(a.obs, b.obs)
    if isinstance(a.np_random.bit_generator, np.random.PCG64):
        assert a.np_random.bit_generator.state == b.np_random.bit_generator.state
    else:  # states holding arrays: the generators' next draws
        assert copy.deepcopy(a.np_random).random(4).tolist() == copy.deepcopy(b.np_random).random(4).tolist()


MAKERS = {
    "grid": lambda: GridWorld((5, 5), goals=[(4, 4)], walls=WALLS, terminate_at_goal=False),
    "grid, ends at the goal": lambda: GridWorld((3, 3), goals=[(2, 2)]),
    "grid, slippery": lambda: GridWorld((4, 4), goals=[(3, 3)], slip=0.3, terminate_at_goal=False),
    "grid, two goals and a cue": lambda: GridWorld((4, 4), goals=[(3, 3), (0, 3)], cue_location=(2, 0)),
    "tmaze": TMaze,
    "tmaze, noisy cue": lambda: TMaze(reward_prob=0.7, cue_validity=0.8),
}


@pytest.mark.parametrize("name", MAKERS)
def test_shortcut_equals_pomdp_step(name):
    """Random actions over several episodes (plain ints, which take the shortcut, NumPy integers and ``None``, which
    do not), arrays given to a reset (which do not either), and an episode's end."""
    make = MAKERS[name]
    rng = np.random.default_rng(0)
    steps = 0
    for seed in range(6):
        a, b = twins(make, seed)
        n = a.action_space.n
        for t in range(60):
            action = int(rng.integers(n))
            action = np.int64(action) if t % 7 == 3 else None if t % 11 == 5 else action
            assert_same_step(a, b, action)
            steps += 1
    assert steps == 360
    a, b = twins(make, 7, options={"B": [x.copy() for x in make().B]})
    for _ in range(20):
        assert_same_step(a, b, int(rng.integers(a.action_space.n)))


@pytest.mark.parametrize("name", ["grid", "tmaze"])
def test_shortcut_refuses_what_pomdp_step_refuses(name):
    env = MAKERS[name]()
    with pytest.raises(Exception, match="reset"):
        env.step(0)
    env.reset(seed=0)
    for bad in (-1, env.action_space.n, 1.0, "0"):
        with pytest.raises(PolicyError):
            env.step(bad)


def test_subclass_with_its_own_reward_takes_the_general_step():
    class Paid(GridWorld):
        def reward(self, state, obs):
            return 5.0

    env = Paid((3, 3), goals=[(2, 2)], terminate_at_goal=False)
    env.reset(seed=0)
    assert not env._walk and env.step(4)[1] == 5.0


@pytest.mark.parametrize("name", ["grid", "grid, ends at the goal", "grid, slippery", "tmaze", "tmaze, noisy cue"])
def test_plain_steps_take_the_shortcut(monkeypatch, name):
    """So that the tests above compare the shortcut, not ``POMDPEnv.step`` with itself."""
    env = MAKERS[name]()
    env.reset(seed=1)

    def general(self, action):
        raise AssertionError("POMDPEnv.step was called")

    monkeypatch.setattr(POMDPEnv, "step", general)
    for action in (0, 1, 2, 3):
        env.step(action)


def test_grid_draws_equal_other_bit_generators():
    """The grid's shortcut reads PCG64's raw draws (Gymnasium's generator); another bit generator takes its
    ``random()``: both give ``POMDPEnv.step``'s results."""
    for bits in (np.random.PCG64, np.random.MT19937, np.random.Philox):
        a, b = twins(MAKERS["grid, slippery"], 0)
        a.np_random, b.np_random = np.random.Generator(bits(5)), np.random.Generator(bits(5))
        for action in [0, 1, 2, 3, 4] * 40:
            assert_same_step(a, b, action)
    uniforms = np.random.Generator(np.random.PCG64(9)).random(10_000).tolist()
    raw = np.random.PCG64(9).random_raw
    assert uniforms == [(raw() >> 11) * (1.0 / 9007199254740992.0) for _ in range(10_000)]


@pytest.mark.parametrize("name", ["grid", "tmaze"])
def test_method_replaced_on_the_instance_takes_the_general_step(name):
    """A reward (or terminal, or sampling) set on the instance is what ``POMDPEnv.step`` calls: from the next reset
    the shortcut, which writes these out, steps aside."""
    env = MAKERS[name]()
    env.reward = lambda state, obs: 7.0
    env.reset(seed=0)
    assert env.step(0)[1] == 7.0
    del env.reward
    env.reset(seed=0)
    assert env.step(0)[1] != 7.0 and env._walk


def test_grid_observation_array_cannot_change_in_place():
    """The grid's shortcut observes the cell without reading ``A`` (the identity): ``A`` is read-only, so an edit in
    place cannot leave the shortcut and ``POMDPEnv.step`` observing different things; so are every environment's
    arrays (the column tables are made from them once), in copies too."""
    for name in ("grid", "grid, two goals and a cue"):
        env = MAKERS[name]()
        for copied in (env, copy.deepcopy(env), pickle.loads(pickle.dumps(env))):
            for array in (copied.A[0], copied.B[0], copied.D[0]):
                with pytest.raises(ValueError, match="read-only"):
                    array[0] = 0.5
