"""aif_deep.checkpoint: agents, replay buffers and training runs round-trip exactly; a flipped byte, a truncated
file, a file of another kind, a field the loader does not know and a file above max_bytes raise
aif.io.FormatError."""

import io
import zipfile

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import aif  # noqa: E402
import aif_deep  # noqa: E402
from aif.io import FormatError, encode, write_archive  # noqa: E402
from aif_deep.checkpoint import (  # noqa: E402
    TrainState,
    load_agent,
    load_buffer,
    load_checkpoint,
    save_agent,
    save_buffer,
    save_checkpoint,
)
from aif_deep.episodes import ReplayBuffer  # noqa: E402
from aif_deep.neural import Bernoulli, Categorical, NeuralModel  # noqa: E402

torch.set_num_threads(1)


def _agent():
    model = aif_deep.TabularModel.from_aif(aif.random_model(np.random.default_rng(0), [3, 4], [3, 2], [2, 3]),
                                           device="cpu")
    return aif_deep.Agent(model, policy_horizon=2, selection=aif.Selection("stochastic"), alpha=2.0,
                          rng=torch.Generator().manual_seed(5))


def _drive(agent, n, rng):
    return [agent.step([int(rng.integers(o)) for o in agent.model.num_obs]).tolist() for _ in range(n)]


def _buffer(seed=0, episodes=3, steps=5):
    rng = np.random.default_rng(seed)
    buffer = ReplayBuffer()
    for _ in range(episodes):
        buffer.add([rng.integers(0, 2, size=(steps + 1, 4, 4)), rng.integers(0, 3, size=steps + 1)],
                   rng.integers(0, 3, size=(steps, 1)), rng.normal(size=steps))
    return buffer


def _run(tmp_path):
    """A training checkpoint of a model with two modalities, after a few Adam steps."""
    model = NeuralModel([4], [3], [Bernoulli((4, 4)), Categorical(3)], seed=0)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    aif_deep.train(model, _buffer(), aif_deep.TrainSettings(steps=3, batch_size=4, length=3, progress=False))
    path = tmp_path / "run.ckpt"
    rng, gen = np.random.default_rng(7), torch.Generator().manual_seed(7)
    rng.random(3)
    save_checkpoint(path, model, opt, TrainState(3, [{"step": 3, "vfe": 1.5}]), rng, gen)
    return path, model, opt, rng, gen


def test_agent_round_trip_continues_with_the_same_actions(tmp_path):
    whole, first = _agent(), _agent()
    expected = _drive(whole, 9, np.random.default_rng(1))
    stream = np.random.default_rng(1)
    head = _drive(first, 4, stream)
    save_agent(tmp_path / "agent.ckpt", first)
    restored = load_agent(tmp_path / "agent.ckpt")
    assert head + _drive(restored, 5, stream) == expected
    assert torch.equal(restored.rng.get_state(), whole.rng.get_state())


def test_numpy_route_agent_saved_between_episodes_continues_and_mid_episode_is_refused(tmp_path):
    # A soft-Q planner runs in aif, one aif.Agent per batch member: their state is the prior at reset.
    model = aif_deep.TabularModel.from_aif(aif.random_model(np.random.default_rng(2), [3], [3], [2]), device="cpu")
    make = lambda: aif_deep.Agent(model, planner=aif.planning.SoftQPlanner(horizon=2))  # noqa: E731
    prior = [torch.tensor([0.2, 0.3, 0.5], dtype=torch.float64)]
    whole, saved = make(), make()
    whole.reset(prior)
    saved.reset(prior)
    save_agent(tmp_path / "si.ckpt", saved)
    restored = load_agent(tmp_path / "si.ckpt")
    torch.testing.assert_close(restored.prior, whole.prior)
    for o in (0, 2, 1):
        assert torch.equal(restored.step([o]), whole.step([o]))
        torch.testing.assert_close(restored.qs, whole.qs)
    with pytest.raises(aif.errors.ParameterError, match="between episodes"):
        save_agent(tmp_path / "si2.ckpt", restored)


def test_buffer_round_trip_keeps_dtypes_and_values(tmp_path):
    buffer = _buffer()
    save_buffer(tmp_path / "buffer.ckpt", buffer)
    back = load_buffer(tmp_path / "buffer.ckpt")
    for (o1, a1, r1), (o2, a2, r2) in zip(buffer.episodes, back.episodes, strict=True):
        assert all(np.array_equal(x, y) and x.dtype == y.dtype for x, y in zip(o1, o2, strict=True))
        assert np.array_equal(a1, a2) and a1.dtype == a2.dtype and np.array_equal(r1, r2)


def test_training_checkpoint_restores_weights_optimiser_and_random_states(tmp_path):
    path, model, opt, rng, gen = _run(tmp_path)
    probe = NeuralModel([4], [3], [Bernoulli((4, 4)), Categorical(3)], seed=9)
    probe_opt = torch.optim.Adam(probe.parameters(), lr=1e-2)
    probe_rng, probe_gen = np.random.default_rng(0), torch.Generator().manual_seed(0)
    state = load_checkpoint(path, probe, probe_opt, probe_rng, probe_gen)
    assert state == TrainState(3, [{"step": 3, "vfe": 1.5}]) and state.step == 3
    for (name, p), q in zip(model.state_dict().items(), probe.state_dict().values(), strict=True):
        assert torch.equal(p, q), name
    assert probe_opt.state_dict()["param_groups"][0]["lr"] == opt.state_dict()["param_groups"][0]["lr"]
    assert probe_rng.random() == rng.random()
    assert torch.equal(torch.rand(4, generator=probe_gen), torch.rand(4, generator=gen))
    with pytest.raises(FormatError, match="do not fit"):
        load_checkpoint(path, NeuralModel([5], [3], [Bernoulli((4, 4)), Categorical(3)]))


def _entries(data):
    """(start, end) of each zip entry's stored bytes."""
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as archive:
        infos = archive.infolist()
    starts = [i.header_offset + 30 + int.from_bytes(data[i.header_offset + 26:i.header_offset + 28], "little")
              + int.from_bytes(data[i.header_offset + 28:i.header_offset + 30], "little") for i in infos]
    return [(s, s + i.compress_size) for s, i in zip(starts, infos, strict=True)]


@pytest.mark.parametrize("damage", ["flip", "truncate", "empty"])
def test_damaged_files_raise_format_error(tmp_path, damage):
    path = _run(tmp_path)[0]
    save_buffer(tmp_path / "buffer.ckpt", _buffer())
    save_agent(tmp_path / "agent.ckpt", _agent())
    model = NeuralModel([4], [3], [Bernoulli((4, 4)), Categorical(3)], seed=0)
    for good, load in ((path, lambda p: load_checkpoint(p, model)), (tmp_path / "buffer.ckpt", load_buffer),
                       (tmp_path / "agent.ckpt", load_agent)):
        data = bytearray(good.read_bytes())
        if damage == "flip":  # one byte in the middle of each stored entry (arrays and metadata), one at a time
            variants = []
            for start, end in _entries(data):
                variants.append(bytearray(data))
                variants[-1][(start + end) // 2] ^= 0x01
        else:
            variants = [data[: len(data) // 2] if damage == "truncate" else bytearray()]
        for variant in variants:
            bad = tmp_path / f"bad_{good.name}"
            bad.write_bytes(bytes(variant))
            with pytest.raises(FormatError, match=bad.name):
                load(bad)


def test_a_file_of_another_kind_is_refused(tmp_path):
    save_buffer(tmp_path / "buffer.ckpt", _buffer())
    with pytest.raises(FormatError, match="not a 'aif_deep.agent'; read it with aif_deep.load_buffer"):
        load_agent(tmp_path / "buffer.ckpt")
    with pytest.raises(FormatError, match="aif_deep.training"):
        load_checkpoint(tmp_path / "buffer.ckpt", NeuralModel([4], [3], [Bernoulli((4, 4))]))


def test_a_field_the_loader_does_not_know_is_refused(tmp_path):
    arrays: dict = {}
    fields = encode({"episodes": [], "note": "extra"}, arrays)
    write_archive(tmp_path / "extra.npz", "aif_deep.replay_buffer", {"fields": fields}, arrays)
    with pytest.raises(FormatError, match="note"):
        load_buffer(tmp_path / "extra.npz")


def test_an_oversized_file_is_refused_before_its_arrays_are_read(tmp_path, monkeypatch):
    buffer = ReplayBuffer()
    buffer.add([np.zeros((301, 100, 100))], np.zeros((300, 1), dtype=np.int64), np.zeros(300))  # 24 MB unpacked
    save_buffer(tmp_path / "big.npz", buffer)
    assert (tmp_path / "big.npz").stat().st_size < 1_000_000  # zeros compress: the limit is on the unpacked size

    def refuse(*args, **kwargs):
        raise AssertionError("np.load called on an oversized file")

    monkeypatch.setattr(np, "load", refuse)
    with pytest.raises(FormatError, match="max_bytes=1000000"):
        load_buffer(tmp_path / "big.npz", max_bytes=1_000_000)
