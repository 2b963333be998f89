"""Single-byte flips of saved files: how many load without an error (the goal is none).

    python benchmarks/bitflips.py                 # every byte of each file (a few minutes on a laptop CPU)
    python benchmarks/bitflips.py --stride 7      # every 7th byte

Saves four files (an ``aif`` model, an ``aif`` agent mid-episode, an ``aif_deep`` agent and an ``aif_deep``
training checkpoint), then for each byte position writes a copy with that byte inverted (``b ^ 0xFF``) and loads
it with the matching loader. Each flip is counted as refused (``aif.io.FormatError``), another exception (an
obscure error: listed by type), or loaded without an error (silent: the defect this measures).
"""

from __future__ import annotations

import argparse
import collections
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

import aif
import aif_deep
from aif.io import FormatError


def files(folder: Path) -> dict:
    """name -> (path, loader) of the four saved files."""
    model = aif.envs.TMaze().generative_model()
    aif.io.save_model(folder / "model.npz", model)
    agent = aif.Agent(model, policy_horizon=2, selection=aif.Selection("stochastic"), rng=np.random.default_rng(0))
    agent.step([0, 0, 0])
    aif.io.save_agent(folder / "agent.npz", agent)
    deep = aif_deep.Agent(aif_deep.TabularModel.from_aif(model, device="cpu"), policy_horizon=2)
    deep.step([0, 0, 0])
    aif_deep.save_agent(folder / "deep_agent.npz", deep)
    net = aif_deep.NeuralModel([3], [2], [aif_deep.neural.Categorical(3)], hidden=8, seed=0)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    aif_deep.save_checkpoint(folder / "training.npz", net, opt, aif_deep.TrainState(0, []))

    def load_checkpoint(path):
        fresh = aif_deep.NeuralModel([3], [2], [aif_deep.neural.Categorical(3)], hidden=8, seed=1)
        return aif_deep.load_checkpoint(path, fresh, torch.optim.Adam(fresh.parameters(), lr=1e-3))

    return {"aif model": (folder / "model.npz", aif.io.load_model),
            "aif agent": (folder / "agent.npz", aif.io.load_agent),
            "aif_deep agent": (folder / "deep_agent.npz", aif_deep.load_agent),
            "aif_deep training checkpoint": (folder / "training.npz", load_checkpoint)}


def flips(path: Path, load, stride: int, scratch: Path) -> collections.Counter:
    data = path.read_bytes()
    out: collections.Counter = collections.Counter()
    for i in range(0, len(data), stride):
        copy = bytearray(data)
        copy[i] ^= 0xFF
        scratch.write_bytes(bytes(copy))
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                load(scratch)
            out["loaded silently"] += 1
        except FormatError:
            out["refused (FormatError)"] += 1
        except Exception as err:  # noqa: BLE001 -- what is measured is which exceptions escape
            out[f"other: {type(err).__name__}"] += 1
    return out


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--stride", type=int, default=1, help="flip every stride-th byte (default every byte)")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for name, (path, load) in files(folder).items():
            start = time.perf_counter()
            counts = flips(path, load, args.stride, folder / "flipped.npz")
            total = sum(counts.values())
            parts = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
            print(f"{name:30s} {path.stat().st_size:7,d} bytes, {total:6,d} flips: {parts} "
                  f"({time.perf_counter() - start:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
