"""Training tricks that make the learned latent states the same across training seeds: the encoder's input
noise (``EncoderFlip``), the carried message without gradient (``DetachCarriedMessage``) and split-merge moves
of the latent classes (``split_merge``, ``SplitMerge``; they live in examples/gridworld_from_images.py)."""

import importlib.util
import pathlib

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from aif.errors import ParameterError  # noqa: E402
from aif_deep.episodes import ReplayBuffer  # noqa: E402
from aif_deep.images import cell_templates, flip_pixels  # noqa: E402
from aif_deep.neural import Bernoulli, Categorical, Gaussian, NeuralModel  # noqa: E402
from aif_deep.training import DetachCarriedMessage, EncoderFlip, TrainSettings, match_classes, sequence_vfe, train  # noqa: E402

_spec = importlib.util.spec_from_file_location(
    "gridworld_from_images", pathlib.Path(__file__).resolve().parents[2] / "examples" / "gridworld_from_images.py")
_example = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_example)
SplitMerge, fit_classes, fit_transitions, split_merge = (_example.SplitMerge, _example.fit_classes,
                                                         _example.fit_transitions, _example.split_merge)

torch.set_num_threads(1)


def _batch(rng, B=16, L=3):
    images = rng.integers(2, size=(B, L + 1, 4, 4))
    return {"observations": [images, rng.integers(3, size=(B, L + 1))], "actions": np.zeros((B, L, 1), dtype=np.int64),
            "rewards": np.zeros((B, L)), "first": np.ones(B, dtype=bool)}


def test_encoder_flip_flips_the_encoders_pixels_only():
    model = NeuralModel([3], [1], [Bernoulli((4, 4)), Categorical(3)], seed=0)
    batch = _batch(np.random.default_rng(0))
    seen = []
    encode = model.joint_message
    model.joint_message = lambda obs: seen.append(obs) or encode(obs)
    gen = torch.Generator().manual_seed(0)
    _, plain = sequence_vfe(model, batch, gen)
    _, flipped = sequence_vfe(model, batch, gen, tricks=(EncoderFlip(0.25),))
    images, rewards = (torch.as_tensor(o).flatten(0, 1) for o in batch["observations"])
    assert (seen[0][0] == images).all() and (seen[0][1] == rewards).all()
    changed = (seen[1][0] != images).float().mean()
    assert 0.18 < changed < 0.32 and set(seen[1][0].unique().tolist()) <= {0, 1}
    assert (seen[1][1] == rewards).all()  # a categorical modality is never flipped
    # the decoder still scores the observed images: with the encoder's input fixed, flipping changes nothing
    # but the draws it takes from the generator
    model.joint_message = lambda obs: encode([images, rewards])
    _, with_flip = sequence_vfe(model, batch, torch.Generator().manual_seed(0), tricks=(EncoderFlip(0.25),))
    gen = torch.Generator().manual_seed(0)
    torch.rand(batch["observations"][0].shape, generator=gen)  # the flip's draws
    _, without = sequence_vfe(model, batch, gen)
    assert with_flip["reconstruction"] == pytest.approx(without["reconstruction"], rel=1e-6)
    assert with_flip["reconstruction"] != pytest.approx(plain["reconstruction"], rel=1e-6)


@pytest.mark.parametrize("detach", [True, False])
def test_detach_carried_message_leaves_the_encoder_its_own_steps_gradient(detach):
    # Real-valued observations carry gradients: with the carried message detached, an observation reaches
    # the loss through its own step's terms only, so the gradient of a 4-step window's loss with respect to
    # the first observation is that of the first step alone (divided by the window's 5 steps).
    model = NeuralModel([3, 2], [2, 1], [Gaussian((2,))], seed=0).double()
    rng = np.random.default_rng(0)
    obs = torch.as_tensor(rng.normal(size=(6, 5, 2))).requires_grad_()
    actions = rng.integers(2, size=(6, 4, 2)) * np.array([1, 0])

    def grad(length):
        batch = {"observations": [obs[:, : length + 1]], "actions": actions[:, :length],
                 "rewards": np.zeros((6, length)), "first": np.ones(6, dtype=bool)}
        loss, _ = sequence_vfe(model, batch, torch.Generator().manual_seed(0), usage_weight=0.0,
                               tricks=(DetachCarriedMessage(),) if detach else ())
        return torch.autograd.grad(loss, obs)[0][:, 0]

    window, first = grad(4), grad(0)
    assert first.abs().max() > 1e-3
    assert torch.allclose(window * 5, first) == detach


def _bad_clustering(seed=0):
    """Images of four cells of a 2x2 grid (6x6 pixels, 5% flipped), and a model fitted to the clustering
    optimum that split-merge escapes: class 0 holds cells 0 and 1, cell 2 is split over classes 2 and 3 (by a
    corner pixel), class 1 holds cell 3."""
    rng = np.random.default_rng(seed)
    templates = cell_templates((2, 2), (6, 6), [(0, 0), (0, 1), (1, 0), (1, 1)])
    cells = rng.integers(4, size=1200)
    images = flip_pixels(templates[cells], 0.05, rng)
    bad = np.select([cells <= 1, cells == 3, images[:, 5, 0] == 1], [0, 1, 3], 2)
    model = NeuralModel([4], [1], [Bernoulli((6, 6))], seed=seed)
    fit_classes(model, [torch.as_tensor(images)], torch.as_tensor(bad), steps=150)
    buffer = ReplayBuffer()
    for k in range(0, len(cells), 20):  # episodes of 19 steps
        buffer.add([images[k: k + 20]], np.zeros((19, 1), dtype=np.int64))
    return model, buffer, images, cells


def _accuracy(model, images, cells):
    with torch.no_grad():
        pred = model.messages([torch.as_tensor(images)])[0].argmax(-1).numpy()
    return match_classes(pred, cells, 4)[0]


def test_split_merge_gives_a_split_state_s_class_to_the_shared_one():
    model, buffer, images, cells = _bad_clustering()
    assert _accuracy(model, images, cells) < 0.8  # the optimum it starts in
    move = split_merge(model, buffer, np.random.default_rng(1))
    assert move is not None and move["split"] == 0 and move["merge"] in (2, 3) and move["gain"] > 2.0
    assert _accuracy(model, images, cells) > 0.97
    # with every state its own class, no move gains enough
    assert split_merge(model, buffer, np.random.default_rng(2)) is None


def test_fit_transitions_moves_a_confident_transition_to_the_observed_successor():
    # Two controls on four cells: control 0 moves to the next cell, control 1 stays. The transition network is
    # first fitted, confidently, to "two cells on"; 100 steps on the true successors replace it.
    rng = np.random.default_rng(0)
    templates = cell_templates((2, 2), (6, 6), [(0, 0), (0, 1), (1, 0), (1, 1)])
    cells, actions = rng.integers(4, size=400), rng.integers(2, size=(400, 1))
    image = lambda c: torch.as_tensor(flip_pixels(templates[c], 0.05, rng))  # noqa: E731
    model = NeuralModel([4], [2], [Bernoulli((6, 6))], seed=0)
    fit_classes(model, [image(cells)], torch.as_tensor(cells), steps=100)
    wrong = np.where(actions[:, 0] == 0, (cells + 2) % 4, cells)
    fit_transitions(model, [image(cells)], torch.as_tensor(actions), [image(wrong)], steps=200)
    model.eval()
    assert (model.tables()["B"][0][:, :, 0].argmax(0) == torch.tensor([2, 3, 0, 1])).all()
    right = np.where(actions[:, 0] == 0, (cells + 1) % 4, cells)
    fit_transitions(model, [image(cells)], torch.as_tensor(actions), [image(right)], steps=100)
    B = model.tables()["B"][0]  # (next, current, control)
    assert (B[:, :, 0].argmax(0) == torch.tensor([1, 2, 3, 0])).all()
    assert (B[:, :, 1].argmax(0) == torch.arange(4)).all()
    assert B[:, :, 0].max(0).values.min() > 0.9


def test_train_with_split_merge_records_its_moves():
    model, buffer, images, cells = _bad_clustering()
    settings = TrainSettings(steps=20, batch_size=8, length=4, progress=False)
    result = train(model, buffer, settings, tricks=(SplitMerge(every=10, until=0.5),))
    assert [m["step"] for m in result.moves] == [10] and result.moves[0]["split"] == 0
    assert _accuracy(model, images, cells) > 0.95


@pytest.mark.parametrize("make, match", [
    (lambda: EncoderFlip(0.5), r"EncoderFlip.flip must lie in \[0, 0.5\)"),
    (lambda: SplitMerge(every=0), "SplitMerge.every must be at least 1"),
    (lambda: SplitMerge(every=10, until=1.5), r"SplitMerge.until must lie in \[0, 1\]"),
    (lambda: split_merge(NeuralModel([2], [1], [Gaussian((2,))]), ReplayBuffer(), np.random.default_rng(0)),
     "Bernoulli and Categorical"),
])
def test_bad_arguments_raise(make, match):
    with pytest.raises(ParameterError, match=match):
        make()
