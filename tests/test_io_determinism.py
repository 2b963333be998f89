"""State that survives and runs that repeat: save/load of models and agents, seeded determinism (in one process
and across processes), and a short soak run of online learning (benchmarks/soak.py).
"""

import copy
import hashlib
import importlib.util
import json
import os
import subprocess
import sys
import zipfile
from io import BytesIO
from pathlib import Path

import numpy as np
import pytest

import aif
from aif import efe, io
from aif.envs import AgentWrapper, CueChaining, GridWorld, TMaze
from aif.io import FormatError, load_agent, load_model, save_agent, save_model
from aif.rollout import rollout

REPO = Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------------------------------------------------
# Save and load


def assert_models_identical(a, b):
    for name in ("A", "B", "C", "D", "pA", "pB", "pD"):
        x, y = getattr(a, name), getattr(b, name)
        assert (x is None) == (y is None), name
        if x is not None:
            assert len(x) == len(y), name
            for i, (u, v) in enumerate(zip(x, y, strict=False)):
                assert u.dtype == v.dtype and np.array_equal(u, v), f"{name}[{i}]"
    assert (a.E is None) == (b.E is None) and (a.E is None or np.array_equal(a.E, b.E))
    assert a.A_dependencies == b.A_dependencies and a.B_dependencies == b.B_dependencies
    assert a.num_states == b.num_states and a.num_obs == b.num_obs and a.num_controls == b.num_controls


def full_model(rng):
    """Every optional part set: counts, sparse dependencies, time-varying C, a policy prior E."""
    model = aif.random_model(rng, [3, 2, 4], [4, 3], [2, 1, 3], A_dependencies=[[0, 2], [1]],
                             B_dependencies=[[0, 1], [1], [2, 0]], dirichlet=True)
    E = rng.dirichlet(np.ones(6))
    return model.replace(C=[rng.normal(size=(4, 3)), np.array([0.0, -1e3, 1e3])], E=E)


def test_model_round_trip_is_bit_identical(tmp_path, rng):
    model = full_model(rng)
    save_model(tmp_path / "m.npz", model)
    assert_models_identical(model, load_model(tmp_path / "m.npz"))
    # the environments' models too (pA differs from A's mean on purpose in the T-maze's learn_A)
    tmaze = TMaze().generative_model(learn_A=True, learn_B=True)
    save_model(tmp_path / "t.npz", tmaze)
    assert_models_identical(tmaze, load_model(tmp_path / "t.npz"))


def test_files_hold_no_pickles_and_one_metadata_entry(tmp_path, rng):
    agent = aif.Agent(full_model(rng), rng=np.random.default_rng(1))
    save_agent(tmp_path / "a.npz", agent)
    with zipfile.ZipFile(tmp_path / "a.npz") as zf:
        names = zf.namelist()
    assert io.META_KEY + ".npy" in names
    with np.load(tmp_path / "a.npz", allow_pickle=False) as data:
        for key in data.files:
            assert data[key].dtype != object
        meta = json.loads(str(data[io.META_KEY][()]))
    assert meta["format"] == "aif" and meta["format_version"] == io.FORMAT_VERSION and meta["kind"] == "agent"


def run_steps(agent, env, obs, n):
    """``n`` agent-environment steps from ``obs``: (actions, q_pi, qs, observations), and the last obs."""
    record = []
    for _ in range(n):
        action = agent.step(obs)
        record.append((action.copy(), agent.q_pi.copy(), [q.copy() for q in agent.qs], list(obs)))
        obs, *_ = env.step(action)
    return record, obs


@pytest.mark.parametrize("preset", ["default", "pymdp_legacy", "pymdp", "learning"])
def test_loaded_agent_continues_the_rollout_identically(tmp_path, preset):
    """Save mid-episode; the loaded agent (same rng state, beliefs, prior, learned counts and learning record)
    matches the original step for step."""
    env_model = TMaze(reward_prob=0.8, cue_validity=0.9)
    model = env_model.generative_model(learn_A=True)
    rng = np.random.default_rng(7)
    if preset == "default":
        agent = aif.Agent(model, policy_horizon=2, selection=aif.Selection("stochastic"), rng=rng)
    elif preset == "learning":
        agent = aif.Agent(model, policy_horizon=2, selection=aif.Selection("stochastic"), rng=rng,
                          learning=aif.Learning(lr=0.5, forgetting=0.95, learn_B=False),
                          efe_terms=(aif.Utility(), aif.InfoGain(), aif.Novelty("A")))
    else:
        agent = getattr(aif.Agent, preset)(model, policy_horizon=2, mode="stochastic", rng=rng)
    env = AgentWrapper.for_model(env_model, model)
    obs, _ = env.reset(seed=3)
    _, obs = run_steps(agent, env, obs, 3)
    save_agent(tmp_path / "agent.npz", agent)
    loaded = load_agent(tmp_path / "agent.npz")
    assert loaded.rng is not agent.rng
    assert loaded.rng.bit_generator.state == agent.rng.bit_generator.state
    assert loaded.t == agent.t and np.array_equal(loaded.action, agent.action)
    for p, q in zip(loaded.prior, agent.prior, strict=False):
        assert np.array_equal(p, q)
    assert loaded.inference == agent.inference and loaded.efe == agent.efe and loaded.selection == agent.selection
    assert loaded.learning == agent.learning
    assert_models_identical(agent.model, loaded.model)
    env_copy = copy.deepcopy(env)
    original, _ = run_steps(agent, env, obs, 12)
    resumed, _ = run_steps(loaded, env_copy, obs, 12)
    for (a1, p1, qs1, o1), (a2, p2, qs2, o2) in zip(original, resumed, strict=False):
        assert np.array_equal(a1, a2) and np.array_equal(p1, p2) and o1 == o2
        assert all(np.array_equal(x, y) for x, y in zip(qs1, qs2, strict=False))


def _time_and_planner_settings(name):
    from aif.planning import SoftQPlanner
    from aif.planning.base import PolicyEnumeration
    from aif.planning.sophisticated import SophisticatedInference
    from aif.sequence import MarginalMessagePassing, VariationalMessagePassing

    return {"mmp": dict(inference=MarginalMessagePassing(), inference_horizon=2, policy_horizon=2),
            "vmp": dict(inference=VariationalMessagePassing(), inference_horizon=2, policy_horizon=2),
            "enumeration": dict(planner=PolicyEnumeration(horizon=2)),
            "soft-q": dict(planner=SoftQPlanner(horizon=2)),
            "sophisticated": dict(planner=SophisticatedInference(depth=2))}[name]


@pytest.mark.parametrize("name", ["mmp", "vmp", "enumeration", "soft-q", "sophisticated"])
def test_loaded_agent_with_sequence_inference_or_a_planner_continues_identically(tmp_path, name):
    """The running state of inference over a window (observations, actions, qs_seq, F) and planners' settings."""
    env_model = TMaze(reward_prob=0.8, cue_validity=0.9)
    model = env_model.generative_model()
    agent = aif.Agent(model, selection=aif.Selection("stochastic"), rng=np.random.default_rng(0),
                      **_time_and_planner_settings(name))
    env = AgentWrapper.for_model(env_model, model)
    obs, _ = env.reset(seed=1)
    _, obs = run_steps(agent, env, obs, 3)
    save_agent(tmp_path / "agent.npz", agent)
    loaded = load_agent(tmp_path / "agent.npz")
    env_copy = copy.deepcopy(env)
    original, _ = run_steps(agent, env, obs, 6)
    resumed, _ = run_steps(loaded, env_copy, obs, 6)
    for (a1, p1, qs1, o1), (a2, p2, qs2, o2) in zip(original, resumed, strict=False):
        assert np.array_equal(a1, a2) and np.array_equal(p1, p2) and o1 == o2
        assert all(np.array_equal(x, y) for x, y in zip(qs1, qs2, strict=False))


def test_agent_with_a_learned_model_and_legacy_generator_round_trips(tmp_path, rng):
    """A model rebuilt from counts after learning, and a generator other than PCG64 (MT19937: array state)."""
    env = GridWorld((3, 3))
    model = env.generative_model(learn_B=True)
    pB = aif.learning.update_B(model.pB, [np.eye(9)[1]], [np.eye(9)[0]], np.array([3]), forgetting=0.9)
    model = model.replace(pB=pB, B=None)
    agent = aif.Agent(model, selection=aif.Selection("stochastic", "marginal"),
                      rng=np.random.Generator(np.random.MT19937(5)))
    agent.step([0])
    save_agent(tmp_path / "a.npz", agent)
    loaded = load_agent(tmp_path / "a.npz")
    assert_models_identical(agent.model, loaded.model)
    assert isinstance(loaded.rng.bit_generator, np.random.MT19937)
    assert np.array_equal(loaded.rng.random(5), agent.rng.random(5))
    assert loaded.terms.keys() == agent.terms.keys()


def test_unsaveable_attribute_is_named(tmp_path, rng):
    agent = aif.Agent(aif.random_model(rng, [2], [2]))
    agent.qs = [object()]
    with pytest.raises(TypeError, match=r"agent\.qs\[0\]"):
        save_agent(tmp_path / "a.npz", agent)
    assert not (tmp_path / "a.npz").exists()
    assert list(tmp_path.iterdir()) == []  # no temporary file left behind


@pytest.fixture
def model_file(tmp_path, rng):
    path = tmp_path / "model.npz"
    save_model(path, full_model(rng))
    return path


def sealed(entries):
    """An aif file's bytes for these entries, with its whole-file checksum (a deliberate, consistent edit)."""
    buffer = BytesIO()
    np.savez(buffer, **entries)
    return io.seal(buffer.getvalue())


def rewrite_meta(src, dst, change):
    """Copy an aif file, editing its metadata with ``change(meta)``."""
    with np.load(src, allow_pickle=False) as data:
        entries = {k: data[k] for k in data.files}
    meta = json.loads(str(entries[io.META_KEY][()]))
    change(meta)
    entries[io.META_KEY] = np.array(json.dumps(meta))
    dst.write_bytes(sealed(entries))


def test_truncated_file_gives_format_error(model_file, tmp_path):
    data = model_file.read_bytes()
    for cut in (len(data) // 2, len(data) - 10, 30):
        bad = tmp_path / f"cut{cut}.npz"
        bad.write_bytes(data[:cut])
        with pytest.raises(FormatError, match=r"cut\d+\.npz is damaged or not an aif save file"):
            load_model(bad)


def test_corrupted_bytes_give_format_error(model_file, tmp_path):
    data = bytearray(model_file.read_bytes())
    # flip bytes inside the first stored member's compressed data (past its 30-byte local header and name)
    for offset in range(60, 80):
        data[offset] ^= 0xFF
    bad = tmp_path / "flipped.npz"
    bad.write_bytes(bytes(data))
    with pytest.raises(FormatError, match="flipped.npz is damaged"):
        load_model(bad)


def test_random_bytes_and_foreign_files_give_format_error(tmp_path):
    junk = tmp_path / "junk.npz"
    junk.write_bytes(np.random.default_rng(0).bytes(500))
    with pytest.raises(FormatError, match="junk.npz is damaged or not an aif save file"):
        load_model(junk)
    plain = tmp_path / "plain.npz"
    np.savez(plain, x=np.zeros(3))
    with pytest.raises(FormatError, match="not an aif save file: it has no '__aif_meta__' entry"):
        load_model(plain)
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, **{io.META_KEY: np.array(["x", None], dtype=object)})
    with pytest.raises(FormatError, match="pickled.npz is damaged or not an aif save file.*allow_pickle"):
        load_model(pickled)
    single = tmp_path / "single.npy"
    np.save(single, np.zeros(3))
    with pytest.raises(FormatError, match="single .npy array"):
        load_model(single)
    with pytest.raises(FileNotFoundError):
        load_model(tmp_path / "absent.npz")


def test_incompatible_version_gives_format_error(model_file, tmp_path):
    newer = tmp_path / "newer.npz"
    rewrite_meta(model_file, newer, lambda m: m.update(format_version=io.FORMAT_VERSION + 1))
    with pytest.raises(FormatError, match=rf"format version {io.FORMAT_VERSION + 1}.*reads format version "
                                          rf"{io.FORMAT_VERSION} only"):
        load_model(newer)


def test_wrong_kind_and_tampered_content_give_format_error(model_file, tmp_path, rng):
    with pytest.raises(FormatError, match="holds a 'model', not a 'agent'; read it with aif.io.load_model"):
        load_agent(model_file)
    foreign = tmp_path / "foreign.npz"
    rewrite_meta(model_file, foreign, lambda m: m["root"].update({"__dataclass__": "os:system"}))
    with pytest.raises(FormatError, match="'os:system', which is not an aif class"):
        load_model(foreign)
    malformed = tmp_path / "malformed.npz"
    rewrite_meta(model_file, malformed, lambda m: m["root"].pop("fields"))
    with pytest.raises(FormatError, match=r"malformed\.npz: malformed metadata \(KeyError"):
        load_model(malformed)
    unknown_field = tmp_path / "field.npz"
    rewrite_meta(model_file, unknown_field, lambda m: m["root"]["fields"].update(F=None))
    with pytest.raises(FormatError, match=r"sets \['F'\] on GenerativeModel.*incompatible version"):
        load_model(unknown_field)
    # arrays that fail the model's own checks: the ModelError's message is carried over
    bad_arrays = tmp_path / "bad.npz"
    with np.load(model_file, allow_pickle=False) as data:
        entries = {k: data[k] for k in data.files}
    meta = json.loads(str(entries[io.META_KEY][()]))
    key = meta["root"]["fields"]["A"][0]["__array__"]
    entries[key] = entries[key] * 0.5
    bad_arrays.write_bytes(sealed(entries))
    with pytest.raises(FormatError, match=rf"bad\.npz: the array '{key}' fails its sha256 checksum"):
        load_model(bad_arrays)
    meta["sha256"][key] = io.digest(entries[key])  # an edit that also rewrites the checksum reaches the model
    entries[io.META_KEY] = np.array(json.dumps(meta))
    bad_arrays.write_bytes(sealed(entries))
    with pytest.raises(FormatError, match=r"invalid GenerativeModel: columns of A\[0\] sum to 0\.5"):
        load_model(bad_arrays)
    missing = tmp_path / "missing.npz"
    del entries[key]
    missing.write_bytes(sealed(entries))
    with pytest.raises(FormatError, match=rf"missing\.npz: the array '{key}' is missing from the file"):
        load_model(missing)


def test_archive_api_bounds_and_unknown_state(model_file, tmp_path):
    arrays = {"x": np.arange(6.0).reshape(2, 3), "n": np.array([1, 2], dtype=np.int64)}
    io.write_archive(tmp_path / "c.npz", "thing", {"step": 3, "note": "a"}, arrays)
    meta, back = io.read_archive(tmp_path / "c.npz", "thing")
    assert meta == {"step": 3, "note": "a"} and set(back) == {"x", "n"}
    assert all(np.array_equal(back[k], v) and back[k].dtype == v.dtype for k, v in arrays.items())
    with pytest.raises(FormatError, match="holds a 'thing', not a 'model'"):
        io.read_archive(tmp_path / "c.npz", "model")
    size = (tmp_path / "c.npz").stat().st_size
    with pytest.raises(FormatError, match=rf"is {size} bytes, above the limit max_bytes=100"):
        io.read_archive(tmp_path / "c.npz", "thing", max_bytes=100)
    with pytest.raises(FormatError, match=r"entries of \d+ bytes unpacked, above the limits"):
        io.read_archive(tmp_path / "c.npz", "thing", max_bytes=size + 1)
    with pytest.raises(TypeError, match="not numeric"):
        io.write_archive(tmp_path / "d.npz", "thing", {}, {"o": np.array([None], dtype=object)})
    nodes: dict = {}
    settings = (efe.EFEOptions.pymdp_legacy(), aif.Selection(), efe.InfoGain(joint=True), efe.Novelty("B"))
    node = io.encode(settings, nodes)
    assert io.decode(json.loads(json.dumps(node)), nodes) == settings
    agent = aif.Agent(aif.random_model(np.random.default_rng(0), [2], [2]))
    save_agent(tmp_path / "a.npz", agent)
    rewrite_meta(tmp_path / "a.npz", tmp_path / "b.npz", lambda m: m["root"]["state"].update(__class__=None))
    with pytest.raises(FormatError, match=r"state sets \['__class__'\], which an aif.Agent does not have"):
        load_agent(tmp_path / "b.npz")


def test_save_rejects_the_wrong_object(tmp_path, rng):
    with pytest.raises(TypeError, match="model must be an aif.GenerativeModel"):
        save_model(tmp_path / "x.npz", [np.eye(2)])
    with pytest.raises(TypeError, match="agent must be an aif.Agent"):
        save_agent(tmp_path / "x.npz", aif.random_model(rng, [2], [2]))


# ----------------------------------------------------------------------------------------------------------
# Determinism: the same seed gives the same trajectory, in this process and in another one.

STEPS = 15


def _env(name):
    return {"tmaze": lambda: TMaze(reward_prob=0.8, cue_validity=0.9),
            "grid": lambda: GridWorld((4, 4), walls=[(1, 1)], slip=0.2),
            "grid-cued": lambda: GridWorld((4, 4), goals=[(0, 3), (3, 0)], cue_location=(2, 2)),
            "cue-chaining": lambda: CueChaining()}[name]()


def _agent(preset, model, seed):
    rng = np.random.default_rng(seed)
    if preset == "default":
        return aif.Agent(model, selection=aif.Selection("stochastic"), rng=rng)
    if preset == "default-H2-marginal":
        return aif.Agent(model, policy_horizon=2, selection=aif.Selection("stochastic", "marginal"), rng=rng)
    if preset in ("pymdp_legacy", "pymdp"):
        return getattr(aif.Agent, preset)(model, mode="stochastic", rng=rng)
    return aif.Agent(model, selection=aif.Selection("stochastic"), rng=rng, **_time_and_planner_settings(preset))


CASES = [(p, e) for p in ("default", "pymdp_legacy", "pymdp") for e in ("tmaze", "grid", "grid-cued", "cue-chaining")]
CASES += [("default-H2-marginal", "tmaze"), ("mmp", "tmaze"), ("vmp", "grid-cued"), ("enumeration", "grid"),
          ("soft-q", "grid"), ("sophisticated", "tmaze")]


def trajectory_digest(preset, env_name, seed):
    """SHA-256 of everything a seeded rollout records (observations, states, actions, beliefs, q(pi), G)."""
    env = _env(env_name)
    model = env.generative_model()
    traj = rollout(_agent(preset, model, seed), env, STEPS, seed=seed, progress=False)
    h = hashlib.sha256()
    for arr in (traj.observations, traj.states, traj.actions, traj.q_pi, traj.G, traj.rewards, *traj.qs,
                *(traj.terms[k] for k in sorted(traj.terms))):
        h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()


def all_digests(seed=11):
    return {f"{p}/{e}": trajectory_digest(p, e, seed) for p, e in CASES}


@pytest.fixture(scope="module")
def digests():
    return all_digests()


def test_same_seed_same_trajectory_in_one_process(digests):
    assert all_digests() == digests


def test_different_seeds_give_different_trajectories(digests):
    """The digests cover the random parts: another seed changes every stochastic run."""
    other = all_digests(seed=12)
    assert all(other[k] != digests[k] for k in digests)


def test_same_seed_same_trajectory_across_processes(digests):
    code = ("import json, sys; sys.path.insert(0, sys.argv[1]); "
            "from test_io_determinism import all_digests; print(json.dumps(all_digests()))")
    env = dict(os.environ, PYTHONHASHSEED="12345")  # a different string hashing than this process's
    out = subprocess.run([sys.executable, "-c", code, str(Path(__file__).parent)], capture_output=True, text=True,
                         env=env, cwd=REPO, timeout=120, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == digests


def test_soft_q_planner_is_deterministic():
    from aif.planning import SoftQPlanner

    model = _env("grid-cued").generative_model()
    planner = SoftQPlanner(horizon=3)
    (G1, a1), (G2, a2) = ((p.G, p.action) for p in (planner.plan(model, model.D), planner.plan(model, model.D)))
    assert np.array_equal(G1, G2) and np.array_equal(a1, a2)


# ----------------------------------------------------------------------------------------------------------
# Soak: online learning for a while, finite, bounded, no growth of live memory after the warm-up


def _load_soak():
    spec = importlib.util.spec_from_file_location("soak", REPO / "benchmarks" / "soak.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SOAK_GROWTH_LIMIT = 128 * 1024  # bytes of live memory gained after the warm-up; a leak of 90 B/step exceeds it


def test_short_soak_run_stays_finite_bounded_and_flat():
    """The Agent's own online learning of B with forgetting, episodes restarted: finite, counts bounded, flat."""
    out = _load_soak().soak(steps=2000, seed=0, warmup=500)
    assert out["error"] is None and out["nonfinite"] == 0 and out["steps"] == 2000
    assert 0 < out["min_count"] and out["max_count"] <= out["count_bound"] * (1 + 1e-12)
    assert out["memory_end"] - out["memory_warmup"] < SOAK_GROWTH_LIMIT, out["memory_checkpoints"]


def test_short_soak_forgetting_towards_the_prior_keeps_counts_at_the_prior():
    out = _load_soak().soak(steps=1000, seed=1, learner="manual", trace=False)
    assert out["error"] is None and out["nonfinite"] == 0
    assert out["min_count"] >= 1.0 - 1e-12 and out["max_count"] <= out["count_bound"] * (1 + 1e-12)
    assert out["max_abs_G"] < 10  # novelty stays of the order of the preferences (3.5 in 5000 steps)


def test_agent_forgetting_keeps_counts_away_from_zero():
    out = _load_soak().soak(steps=1500, seed=0, trace=False)
    assert out["error"] is None and out["nonfinite"] == 0
    assert out["min_count"] >= 1e-3, out["min_count"]
    assert out["max_abs_G"] < 1e3, out["max_abs_G"]


def test_continuing_task_with_online_learning_does_not_grow():
    out = _load_soak().soak(steps=600, seed=0, warmup=100, checkpoints=2, max_episode_steps=0)
    assert out["error"] is None and out["nonfinite"] == 0
    assert out["memory_end"] - out["memory_warmup"] < SOAK_GROWTH_LIMIT, out["memory_checkpoints"]


def test_a_flipped_byte_anywhere_in_the_file_is_refused(model_file, tmp_path):
    # The zip's own headers (timestamps, flags, sizes, the compression method) are covered by the whole-file
    # sha256 in the zip comment; before it, about one flip in five loaded without an error.
    data = model_file.read_bytes()
    bad = tmp_path / "flipped.npz"
    for i in range(0, len(data), 3):
        bad.write_bytes(data[:i] + bytes([data[i] ^ 0xFF]) + data[i + 1:])
        with pytest.raises(FormatError):
            load_model(bad)


def test_reading_is_bounded_for_a_device_that_reports_no_size(tmp_path):
    if not Path("/dev/zero").exists():
        pytest.skip("no /dev/zero")
    with pytest.raises(FormatError, match="more than max_bytes=1000"):
        io.read_archive("/dev/zero", "model", max_bytes=1000)


@pytest.mark.parametrize("depth", [600, 5000])
def test_deeply_nested_metadata_is_a_format_error(tmp_path, depth):
    # A sealed file (its checksums consistent) whose metadata nests lists `depth` deep: JSON's parser or the
    # decoder runs out of stack; either way the reader says the file is not an aif file.
    header = ('{"format": "aif", "format_version": %d, "aif_version": "0", "kind": "model", "sha256": {}, '
              '"root": %s}' % (io.FORMAT_VERSION, "[" * depth + "]" * depth))
    path = tmp_path / "deep.npz"
    path.write_bytes(sealed({io.META_KEY: np.array(header)}))
    with pytest.raises(FormatError):
        load_model(path)


def test_saves_are_atomic_and_concurrent_saves_all_succeed(tmp_path, rng):
    from concurrent.futures import ThreadPoolExecutor

    model = aif.random_model(rng, [3, 2], [3, 2], [2, 2], [[0, 1], [1]], [[0], [1]])
    target = tmp_path / "m.npz"
    (tmp_path / "m.npz.tmp").write_text("the user's own file")  # a fixed temporary name would clobber this
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda _: save_model(target, model), range(64)))
    assert_models_identical(model, load_model(target))
    assert (tmp_path / "m.npz.tmp").read_text() == "the user's own file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.npz", "m.npz.tmp"]  # no temporary left behind
    assert target.stat().st_mode & 0o777 == 0o644
    before = target.read_bytes()
    with pytest.raises(TypeError):  # a save that fails while encoding leaves the old file as it was
        aif.io.write_archive(target, "model", {}, {"x": np.array(["not a number"])})
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.npz", "m.npz.tmp"]
