"""How many intra-op threads torch uses inside ``aif_deep``'s hot calls: one for small work, and for large work no
more than the cores the machine has free.

A batched tabular step is a few hundred operations on tensors of a few thousand numbers. On a quiet machine a
second thread gains nothing there: torch splits an elementwise operation only above 32,768 elements
(``at::internal::GRAIN_SIZE``). On a busy one it costs a great deal, because the operations that do open a
parallel region wait at its end for a thread that the scheduler has put aside. Measured on the 2-core development
CPU (``benchmarks/bench_batched.py``; the run in ``benchmarks/results/bench_batched.md``), with two busy processes
beside it: 256 T-maze agents ran 21,000 agent-steps/s on torch's default two threads against 59,000 on one, and
``Agent.step`` took up to 2x longer on two threads than on one at every batch up to 16,384 agents (30-45x in earlier
runs, with other jobs on the machine as well); with only the other jobs' load, two threads first paid at about
16,384 agents (work 1.1 million elements: 23 ms against 40 ms).

So the Agent's calls and the ``PolicyEvaluator`` run with one thread while their work (the elements of their
largest intermediate tensors) is below ``SMALL_WORK``; above it with the caller's setting, lowered to the cores
that the load average leaves free (``os.getloadavg``: a one-minute average, so a load that has just started is
seen late). ``torch.set_num_threads`` is process-wide: a call changes it for its duration and puts the caller's
value back afterwards (also when it raises); code running torch on other Python threads at the same time sees
the change.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import torch

SMALL_WORK = 1 << 20  # elements; below this a call runs on one intra-op thread (crossover: bench_batched.md)


def free_cores() -> int:
    """Cores the load average leaves free to this process (its own running thread counted back), at least 1; the
    CPU count where the platform has no load average."""
    cores = os.cpu_count() or 1
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):  # no load average (Windows)
        return cores
    return max(1, int(cores - load + 1))


@contextmanager
def threads_for(work: int) -> Iterator[None]:
    """Run the body with one intra-op thread when ``work`` (elements of the call's largest intermediates) is below
    ``SMALL_WORK``, else with the caller's setting capped at ``free_cores()``; the caller's setting is restored
    afterwards."""
    before = torch.get_num_threads()
    wanted = 1 if work < SMALL_WORK or before == 1 else min(before, free_cores())
    if wanted == before:
        yield
        return
    torch.set_num_threads(wanted)
    try:
        yield
    finally:
        torch.set_num_threads(before)
