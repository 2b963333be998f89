"""examples/epistemic_ablation.py: weighted_targets scales one term of the TD target, the Q-function the
example trains walks to the goal, and acting from it alone counts actions and entropies consistently."""

import importlib.util
import pathlib

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import aif  # noqa: E402
import aif_deep  # noqa: E402
from aif.envs import GridWorld  # noqa: E402
from aif_deep.neural import Bernoulli, NeuralModel  # noqa: E402
from aif_deep.qfunction import QFunction  # noqa: E402

torch.set_num_threads(1)
ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def ex():
    spec = importlib.util.spec_from_file_location("epistemic_ablation", ROOT / "examples" / "epistemic_ablation.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def grid_model():
    # The true 3x3 model with an ambiguous observation (a noisy cell index), so the information gain is not 0.
    gm = GridWorld((3, 3)).generative_model(preference="goal", goal_preference=4.0)
    A = 0.8 * gm.A[0] + 0.2 / 9
    return aif_deep.TabularModel.from_aif(gm.replace(A=[A], D=[np.full(9, 1 / 9)]), device="cpu")


def _beliefs(n, concentration, seed):
    rng = np.random.default_rng(seed)
    return torch.as_tensor(rng.dirichlet(np.full(9, concentration), size=n))  # (n, 9) float64


def test_weighted_targets_scale_one_term_of_the_td_target(grid_model, ex):
    qs = _beliefs(16, 0.5, 0)
    target = QFunction([9], [5], temperature=1.0, seed=0)

    def y(weight):
        return ex.weighted_targets(grid_model, weight, 0.9)(target, [qs])

    full = aif_deep.td_targets(target, grid_model, [qs], 0.9, terms=(aif.Utility(), aif.InfoGain()))
    utility = aif_deep.td_targets(target, grid_model, [qs], 0.9, terms=(aif.Utility(),))
    torch.testing.assert_close(y(1.0), full)
    torch.testing.assert_close(y(0.0), utility)
    # Linear in the weight, and the information gain (utility - full) is not trivially 0.
    torch.testing.assert_close(y(10.0), utility + 10.0 * (full - utility))
    assert float((utility - full).min()) > 0.05


def test_trained_q_function_walks_to_the_goal(ex, grid_model):
    pool = torch.cat([torch.eye(9, dtype=torch.float64).repeat(8, 1), _beliefs(72, 0.3, 1)])
    qf, td = ex.train_weighted_q(grid_model, [pool], 0.0, 400, seed=0, progress=False)
    assert td < 0.1
    grid = GridWorld((3, 3))
    B = grid.generative_model().B[0]  # (next, prev, action), deterministic
    with torch.no_grad():
        best = qf([torch.eye(9, dtype=torch.float64)]).argmin(-1).numpy()  # greedy action per cell
    dist = grid.distances()
    for cell in np.flatnonzero(dist > 0):
        nxt = int(B[:, cell, best[cell]].argmax())
        assert dist[nxt] == dist[cell] - 1, (cell, best[cell])


def test_acting_from_q_alone_counts_every_step(ex):
    model = NeuralModel([9], [5], [Bernoulli((8, 8))], reward_preference=4.0, seed=0)  # untrained: any policy
    qf = QFunction([9], [5], temperature=1.0, seed=0)
    starts = np.array([0, 1, 3])
    reached, taken, H, counts = ex.act_from_q(qf, model, 3, 8, starts, 6, gamma=16.0, seed=0)
    assert reached.shape == taken.shape == (3,)
    assert counts.sum() == taken.sum() == len(H)
    assert ((H >= 0) & (H <= np.log(5) + 1e-9)).all()
    # A flat q(a | qs) (gamma -> 0) has entropy ln 5 at every step.
    _, _, H0, _ = ex.act_from_q(qf, model, 3, 8, starts, 3, gamma=1e-9, seed=0)
    np.testing.assert_allclose(H0, np.log(5), rtol=1e-6)
