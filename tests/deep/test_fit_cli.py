"""``aif fit`` and ``aif recover`` over a CSV of choices and a saved model file."""

import sys

import numpy as np
import pytest

import aif
from aif.cli import main
from aif.envs import TMaze


def write_csv(path, observations, actions):
    """One row per step: subject, trial, step, obs_m..., action_f... (empty after the trial's last action)."""
    M, F = observations.shape[-1], actions.shape[-1]
    lines = ["subject,trial,step," + ",".join(f"obs_{m}" for m in range(M)) + "," +
             ",".join(f"action_{f}" for f in range(F))]
    for i, k, t in np.ndindex(*observations.shape[:3]):
        act = actions[i, k, t] if t < actions.shape[2] else [""] * F
        lines.append(f"{10 + i},{k},{t}," + ",".join(map(str, observations[i, k, t])) + "," + ",".join(map(str, act)))
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def choices(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fit_cli")
    model = TMaze(0.8).generative_model()
    aif.save_model(folder / "tmaze.npz", model)
    rng = np.random.default_rng(0)
    obs, act = [], []
    for gamma in (2.0, 8.0):
        agent = aif.Agent(model, gamma=gamma, alpha=1.0, inference=aif.Exact(),
                          selection=aif.Selection("stochastic", "full"), rng=rng)
        runs = [aif.rollout(agent, TMaze(0.8), 2, seed=int(rng.integers(1000)), progress=False) for _ in range(15)]
        obs.append([r.observations for r in runs])
        act.append([r.actions for r in runs])
    write_csv(folder / "choices.csv", np.array(obs), np.array(act))
    return folder


def test_aif_fit_writes_posteriors_and_figures(choices, capsys):
    out = choices / "fit"
    code = main(["fit", str(choices / "choices.csv"), "--model", str(choices / "tmaze.npz"), "--alpha", "1",
                 "--exact", "--out", str(out)])
    assert code == 0
    rows = (out / "posterior.csv").read_text().splitlines()
    assert rows[0] == "subject,parameter,mean,lower,upper,log_evidence"
    assert [r.split(",")[:2] for r in rows[1:]] == [["10", "gamma"], ["11", "gamma"]]
    means = [float(r.split(",")[2]) for r in rows[1:]]
    assert means[0] < means[1]  # the second subject chose with the higher precision
    assert (out / "posterior.png").stat().st_size > 0 and (out / "posterior.nc").stat().st_size > 0
    assert "gamma[0]" in (out / "summary.csv").read_text()


def test_aif_recover_and_errors(choices, capsys, monkeypatch):
    out = choices / "recover"
    code = main(["recover", "--model", str(choices / "tmaze.npz"), "--alpha", "1", "--exact", "--subjects", "3",
                 "--trials", "6", "--steps", "1", "--chunk", "3", "--out", str(out)])
    assert code == 0
    assert "| model | gamma | 3 |" in (out / "recovery.md").read_text()
    assert (out / "recovery_parameters.png").exists() and (out / "recovery_models.png").exists()
    # A refused setting: one line, exit code 2.
    capsys.readouterr()
    code = main(["fit", str(choices / "choices.csv"), "--model", str(choices / "tmaze.npz"), "--params", "lr",
                 "--out", str(out)])
    assert code == 2 and capsys.readouterr().err.strip().endswith("(what the agents learn)")
    # Without the fit extra (aif_deep.cli not importable): one line naming the extra, exit code 2.
    monkeypatch.setitem(sys.modules, "aif_deep.cli", None)
    assert main(["fit", "x.csv", "--model", "m.npz", "--out", str(out)]) == 2
    assert "pip install 'aif[fit]'" in capsys.readouterr().err
