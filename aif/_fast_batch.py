"""The compiled step of ``aif.fast`` for many agents at once: one numba call steps ``N`` agents of one model.

Imported only when the batched kernel is made (``aif_deep.fast.compile``; importing numba takes about half a
second). Each agent's step is ``aif._fast_kernels.step`` itself, called in a compiled loop over the agents: the
agents share the model's tables (``aif.fast.Tables``: ``ix``, ``fx``) and each has its own row of outcome
indices, prior and output. So there is one definition of the computation (the single-agent kernel, checked against
the NumPy path by tests/test_fast.py), and the batch costs one call from Python instead of ``N`` (a call unboxes its
arrays: about 1 us of the 3 us a T-maze step takes from Python; benchmarks/results/bench_batched.md). Agents whose
inputs (outcome indices and prior) are equal to the bit are stepped once when asked (``once``): many copies of one
agent in one task meet a handful of distinct beliefs, and a deterministic function of equal inputs gives equal
outputs.

Caching. numba keeps compiled code in ``__pycache__`` (``cache=True``) keyed on the source file of the function
compiled, so a function that calls a kernel of another file would keep the old kernel after that file changes
(numba checks only its own file). The loops here are therefore made by a closure over a fingerprint of the source
of ``aif._fast_kernels`` and ``aif.fast`` (whose table layout the kernels read): numba hashes a closure's values
into its cache key, and a change in either file compiles them again.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numba
import numpy as np

from . import _fast_kernels as kernels


def _fingerprint() -> int:
    """A number that changes when the source of the kernels or of their table layout changes."""
    digest = hashlib.sha256()
    for name in ("_fast_kernels.py", "fast.py"):
        digest.update((Path(__file__).with_name(name)).read_bytes())
    return int(digest.hexdigest()[:15], 16)


def _make(fingerprint: int):
    # (the kernel is read as a global, not a closure's value: numba's cache key pickles a closure's values)
    def step_batch(obs, prior, prior_bits, ix, fx, out, action, once):
        """``aif._fast_kernels.step`` for every agent ``i``: outcome indices ``obs[i]`` ``(M,)``, flat prior
        ``prior[i]`` (``prior_bits``: the same array viewed as int64), written into ``out[i]`` (``aif.fast.Tables``'
        layout) and ``action[i]`` ``(F,)``. Returns the number of agents stepped (``N`` unless ``once``), or ``-1 - i``
        for the first agent ``i`` with an outcome index out of range (the agents before it were stepped, the others
        not: the caller raises the checks' error).

        ``once``: an agent whose outcome indices and prior equal, bit for bit, those of an agent before it is not
        stepped again: it gets that agent's output (the step is a function of these inputs and the shared tables,
        so its output is the same to the bit). Agents are matched by a hash table of their inputs, with every match
        confirmed word by word."""
        if fingerprint < 0:  # never: ties numba's cache to the kernels' source (module docstring)
            return 0
        N, M, n = obs.shape[0], obs.shape[1], prior.shape[1]
        size = 1
        while size < 2 * N:
            size *= 2
        seen = np.full(size if once else 0, -1)  # open addressing: the first agent with each input, or -1
        stepped = 0
        for i in range(N):
            if once:
                h = -3750763034362895579  # FNV-1a over the input's words (int64 arithmetic wraps)
                for k in range(M):
                    h = (h ^ obs[i, k]) * 1099511628211
                for k in range(n):
                    h = (h ^ prior_bits[i, k]) * 1099511628211
                slot = (h ^ (h >> 29)) & (size - 1)
                first = -1
                while seen[slot] >= 0:
                    r = seen[slot]
                    same = True
                    for k in range(M):
                        same = same and obs[r, k] == obs[i, k]
                    for k in range(n):
                        same = same and prior_bits[r, k] == prior_bits[i, k]
                    if same:
                        first = r
                        break
                    slot = (slot + 1) & (size - 1)
                if first >= 0:
                    out[i] = out[first]
                    action[i] = action[first]
                    continue
                seen[slot] = i
            if not kernels.step(obs[i], prior[i], ix, fx, out[i], action[i]):
                return -1 - i
            stepped += 1
        return stepped

    jit = numba.njit(cache=True, nogil=True)
    return jit(step_batch)


step_batch = _make(_fingerprint())
