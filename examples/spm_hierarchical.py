"""Reading as a deep temporal model: a story inferred from words, each word from the saccades that read it.

    python examples/spm_hierarchical.py                        # the four stories, one trial each
    python examples/spm_hierarchical.py --quick                # story 3 only, as in the tests
    python examples/spm_hierarchical.py --model reading        # DEM_demo_MDP_reading's own model, its stories 1 and 4
    python examples/spm_hierarchical.py --out some/where.png   # default: examples/output/spm_hierarchical[_reading].png

A miniature of SPM's DEM_demo_MDP_reading (toolbox/DEM; Friston et al. 2017, "Deep temporal models and active
inference"), the model of tests/reference/spm/make_spm_hierarchical.m, which SPM12 ran to make the reference the
tests compare against to 1e-8. Two ``aif.Agent``s with SPM's settings (``SequenceOptions.spm()``: policies over the
trial, precision inferred under beta = 1) composed by ``aif.Hierarchy``:

- higher (semantic) level, three steps: four two-page stories (flee-feed and wait-feed are happy, flee-wait and
  wait-flee sad), the page in view (stay or proceed) and a report (none, happy, sad) with feedback that it wants
  to be right (2 nats) and not wrong (-4); its "word" outcome is the lower level's conclusion;
- lower (lexical) level, three steps for every higher one: which word is on the page (flee, feed, wait: its prior
  is the higher level's prediction through the link) and where the eye is (centre, left, right). Flee shows seed
  on the left and a cat on the right, feed seed and bird, wait nothing and bird: a look left tells wait from the
  others, a look right flee. A lower trial ends as soon as the word is known (SPM's chi = 1/64), and what it
  concluded is the higher level's outcome.

The figure follows the layout of the demo's Figure 1 (``spm_MDP_VB_trial``: beliefs about the hidden story over
the higher steps, q(pi), precision and simulated dopamine) with the lower level's percepts under it (the belief
about the word after each saccade, as its Figure 3, ``spm_MDP_search_percept``). What it shows (the printed lines):
after page 1 two stories remain, so the agent proceeds to page 2, then reports correctly (all four stories);
the prior sent down for page 2 says where to look: between feed and wait (stories 1, 3 after "flee") it looks
left, between flee and feed (stories 2, 4 after "wait") right, and one look is enough unless the less probable
word is there (story 1: left, then right); on the third step the lower level knows the word from the prior sent
down and stops at once.

``--model reading`` runs DEM_demo_MDP_reading's own model (six four-word stories; words of two pictures in four
quadrants, possibly flipped; four saccades; moving policies at both levels, the precision fixed, as the demo has
them: ``SequenceOptions(start="prior")`` with SPM's iterations and its start of a moving trial from the prior
softened), which the tests compare with SPM12 to 1e-12. Stories 1 and 4 share their first
three words (flee, wait, feed), so both are read to the fourth page, each word in one saccade (to the quadrant that
tells the likely words apart, e.g. 3 for flee or wait). Then the demo's preferences make a right report worth no
more than none (C = 0 for both; only a wrong one costs, -4): for story 4 (seed 0) the agent reports sad, for story
1 turning the (last) page and reporting happy are equally good, and the draw turned the page (q(pi) 0.50 each; SPM's
R for this step in the tests' trial is 0.4955 for both).
"""

import argparse
from dataclasses import replace
from itertools import product
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import aif  # noqa: E402
from aif import SPM_EFE, SPM_TERMS  # noqa: E402

WORDS = ("flee", "feed", "wait")
SIGHTS = ("nothing", "bird", "seed", "cat")
REPORTS = ("nothing", "happy", "sad")

# the miniature (make_spm_hierarchical.m): two-page stories, a word's left and right
STORIES = ((0, 1), (2, 1), (0, 2), (2, 0))  # the words of each story; the first two are happy
SEEN = ((2, 3), (2, 1), (0, 1))  # what each word shows (left, right)
PLACES = ("centre", "left", "right")
T = 3  # steps of a trial, at both levels of the miniature

# DEM_demo_MDP_reading: four-word stories (the first three happy), a word's four quadrants, possibly flipped
TALES = ((0, 2, 1, 2), (2, 2, 2, 1), (2, 0, 2, 1), (0, 2, 1, 0), (2, 2, 2, 0), (2, 0, 2, 0))
PICTURES = ((("bird", "cat"), ("nothing", "nothing")), (("bird", "seed"), ("nothing", "nothing")),
            (("bird", "nothing"), ("nothing", "seed")))  # the 2 x 2 grid of each word
QUADRANTS = ((0, 0), (1, 0), (0, 1), (1, 1))  # the demo numbers the grid's cells down its columns


def choose(n):
    """B of an action that sets a factor of n states: control k goes to state k, from any state."""
    B = np.zeros((n, n, n))
    for u in range(n):
        B[u, :, u] = 1
    return B


def semantic(stories=STORIES, wrong=-4.0, right=2.0):
    """The higher level: story x page x report; outcomes the word, the page and feedback (none, right, wrong)."""
    num_stories, num_pages = len(stories), len(stories[0])
    happy = [s < num_stories // 2 for s in range(num_stories)]  # the first half of the stories
    shape = (num_stories, num_pages, 3)
    word, page, feedback = np.zeros((3, *shape)), np.zeros((num_pages, *shape)), np.zeros((3, *shape))
    for s, p in product(range(num_stories), range(num_pages)):
        word[stories[s][p], s, p, :] = 1
        page[p, s, p, :] = 1
        feedback[[0, 1 if happy[s] else 2, 2 if happy[s] else 1], s, p, [0, 1, 2]] = 1
    turn = np.stack([np.eye(num_pages), np.eye(num_pages, k=-1)], axis=-1)  # stay, next page
    turn[-1, -1, 1] = 1  # the last page stays
    return aif.GenerativeModel(A=[word, page, feedback], B=[np.eye(num_stories)[:, :, None], turn, choose(3)],
                               C=[np.zeros(3), np.zeros(num_pages), np.array([0.0, right, wrong])],
                               D=[np.full(num_stories, 1 / num_stories), np.eye(num_pages)[0], np.eye(3)[0]])


def lexical():
    """The miniature's lower level: word x eye position (centre, left, right); outcomes what is seen and where."""
    what, where = np.zeros((4, 3, 3)), np.zeros((3, 3, 3))
    for w, (left, right) in enumerate(SEEN):
        what[[0, left, right], w, [0, 1, 2]] = 1  # the centre shows nothing
        where[[0, 1, 2], w, [0, 1, 2]] = 1
    return aif.GenerativeModel(A=[what, where], B=[np.eye(3)[:, :, None], choose(3)],
                               D=[np.full(3, 1 / 3), np.eye(3)[0]])


def reading_lexical():
    """DEM_demo_MDP_reading's lower level: word x quadrant x flipped up-down x flipped left-right."""
    what, where = np.zeros((4, 3, 4, 2, 2)), np.zeros((4, 3, 4, 2, 2))
    for w, ud, lr in product(range(3), range(2), range(2)):
        grid = np.array(PICTURES[w])[:: -1 if ud else 1, :: -1 if lr else 1]
        for q, (row, col) in enumerate(QUADRANTS):
            what[SIGHTS.index(grid[row, col]), w, q, ud, lr] = 1
            where[q, w, q, ud, lr] = 1
    flip = np.eye(2)[:, :, None]
    return aif.GenerativeModel(A=[what, where], B=[np.eye(3)[:, :, None], choose(4), flip, flip],
                               D=[np.full(3, 1 / 3), np.eye(4)[0], np.full(2, 0.5), np.array([8.0, 1.0]) / 9])


# the miniature's policies over the trial (P, T - 1, factors): read on and report happy, sad or nothing; report at once
HIGH_POLICIES = np.array([[[0, 1, 0], [0, 0, 1]], [[0, 1, 0], [0, 0, 2]], [[0, 1, 0], [0, 0, 0]],
                          [[0, 0, 1], [0, 0, 1]], [[0, 0, 2], [0, 0, 2]]])
LOW_POLICIES = np.array([[[0, a], [0, b]] for b in range(3) for a in range(3)])  # every pair of saccades


class Page:
    """The lower level's world: a word (and its flips) on the page and an eye that moves (Gymnasium's reset/step); it
    shows what the lower model's A says of its state."""

    def __init__(self, model, state):
        self.model, self.state = model, list(state)

    def observe(self):
        return [int(A_m[(slice(None), *self.state)].argmax()) for A_m in self.model.A]

    def reset(self, *, seed=None, options=None):
        self.state[1] = 0
        return self.observe(), {}

    def step(self, action):
        self.state[1] = int(action[1])
        return self.observe(), 0.0, False, False, {}


class Book:
    """The higher level's world: the story, the page in view and the report (the word is read by the lower level)."""

    def __init__(self, model, story):
        self.model, self.story = model, story

    def observe(self):
        feedback = int(self.model.A[2][:, self.story, self.page, self.report].argmax())
        return [None, self.page, feedback]

    def reset(self):
        self.page, self.report = 0, 0
        return self.observe()

    def step(self, action):
        self.page = int(self.model.B[1][:, self.page, action[1]].argmax())
        self.report = int(action[2])
        return self.observe()

    def word(self):
        return int(self.model.A[0][:, self.story, self.page, 0].argmax())


def spm_agent(model, policies, rng):
    """spm_MDP_VB_X with policies over the trial (MDP.V), the precision inferred."""
    return aif.Agent(model, policies=policies, alpha=512.0, inference=aif.MarginalMessagePassing.spm(),
                     inference_horizon=T, trial_length=T, efe_terms=SPM_TERMS, efe=SPM_EFE,
                     sequence=replace(aif.SequenceOptions.spm(), record=True),
                     selection=aif.Selection("stochastic", "marginal"), rng=rng)


def moving_agent(model, policies, steps, tau, rng):
    """spm_MDP_VB_X with moving policies (MDP.U): the precision fixed at 1, 16 iterations of step ``tau`` (SPM's
    1/MDP.tau)."""
    method = aif.MarginalMessagePassing(num_iter=16, tau=tau, early_stop=True, spm_backward=True)
    return aif.Agent(model, policies=policies, gamma=1.0, alpha=512.0, inference=method, inference_horizon=steps,
                     trial_length=steps, efe_terms=SPM_TERMS, efe=SPM_EFE, sequence=aif.SequenceOptions(start="prior"),
                     selection=aif.Selection("stochastic", "marginal"), rng=rng)


def build(name, rng):
    """The hierarchy of the miniature or of DEM_demo_MDP_reading, how a page's hidden state is drawn, and the names
    of the places the eye goes to."""
    link = [aif.Link(modality=0, factor=0, matrix=np.eye(3))]
    if name == "mini":
        high, low = spm_agent(semantic(), HIGH_POLICIES, rng), spm_agent(lexical(), LOW_POLICIES, rng)
        return aif.Hierarchy(high, low, link), lambda word: [word, 0], PLACES
    next_page, happy, sad = [[0, 1, 0]], [[0, 0, 1]], [[0, 0, 2]]
    high = moving_agent(semantic(TALES, wrong=-4.0, right=0.0), np.array([next_page, happy, sad]), 5, 1 / 4, rng)
    low = moving_agent(reading_lexical(), np.array([[[0, q, 0, 0]] for q in range(4)]), 3, 1 / 2, rng)
    D = low.model.D
    flips = lambda word: [word, 0, rng.choice(2, p=D[2]), rng.choice(2, p=D[3])]  # noqa: E731
    return aif.Hierarchy(high, low, link), flips, [f"quadrant {q + 1}" for q in range(4)]


def read(name, story, rng):
    """One higher trial on ``story``: the hierarchy after it, the beliefs (one (steps, S_f) per factor) and q(pi) at
    each step."""
    hierarchy, page_state, places = build(name, rng)
    low_model = hierarchy.low.model
    book = Book(hierarchy.high.model, story)
    obs = book.reset()
    beliefs, q_pi = [], []
    for t in range(hierarchy.high.trial_length):
        page = book.page
        action = hierarchy.step(obs, Page(low_model, page_state(book.word())))
        high, trial = hierarchy.high, hierarchy.lower[-1]
        beliefs.append(high.qs)
        q_pi.append(high.q_pi)
        looks = [places[int(a[1])] for a in trial.agent.actions_window] or ["nowhere"]
        print(f"  step {t + 1}: page {page + 1}, prior over the word {np.round(trial.prior[0], 2)}; looked at "
              f"{', '.join(looks)} in {trial.steps} step(s) and read {WORDS[int(trial.outcome[0].argmax())]} "
              f"(p = {trial.outcome[0].max():.3f}); beliefs over the stories {np.round(high.qs[0], 3)}")
        if action is not None:
            obs = book.step(action)
    mood = "happy" if book.model.A[2][1, story, 0, 1] else "sad"
    print(f"story {story + 1} ({mood}): reported {REPORTS[book.report]}")
    return hierarchy, [np.array(q) for q in zip(*beliefs, strict=True)], np.array(q_pi)


def percepts(hierarchy):
    """The lower level's belief about the word after each of its steps, all the lower trials side by side: (3 words,
    steps), and where each trial starts."""
    columns, starts = [], []
    for trial in hierarchy.lower:
        starts.append(len(columns))
        columns += list(trial.first[0])
    return np.array(columns).T, starts


def plot(runs, out):
    fig, axes = plt.subplots(4, len(runs), figsize=(3.8 * len(runs) + 1, 10), squeeze=False)
    for col, (story, (hierarchy, beliefs, q_pi)) in enumerate(runs):
        steps, (num_stories, num_pages) = len(q_pi), hierarchy.high.model.num_states[:2]
        stories = TALES if num_pages == 4 else STORIES
        ticks = {"xticks": range(steps), "xticklabels": range(1, steps + 1)}
        ax = axes[0, col]
        ax.imshow(beliefs[0].T, cmap="gray_r", vmin=0, vmax=1, aspect="auto")
        ax.plot(range(steps), [story] * steps, "r.", markersize=10)
        ax.set(title=f"story {story + 1}: beliefs (red: true)", yticks=range(num_stories),
               yticklabels=["-".join(WORDS[w] for w in words) for words in stories], **ticks)
        ax = axes[1, col]
        ax.imshow(q_pi.T, cmap="gray_r", vmin=0, vmax=1, aspect="auto")
        labels = (["read, happy", "read, sad", "read", "happy", "sad"] if num_pages == 2 else
                  ["next page", "happy", "sad"])
        ax.set(title="q(pi), higher level", yticks=range(len(labels)), yticklabels=labels, **ticks)
        ax = axes[2, col]
        words, starts = percepts(hierarchy)
        ax.imshow(words, cmap="gray_r", vmin=0, vmax=1, aspect="auto")
        for s in starts[1:]:
            ax.axvline(s - 0.5, color="r")
        ax.set(title="lower level: beliefs about the word", yticks=range(3), yticklabels=WORDS,
               xlabel="lower steps (red lines: next higher step)")
        ax = axes[3, col]
        if hierarchy.high.sequence.precision is not None:
            wn = np.concatenate(hierarchy.high.gamma_trace)
            ax.plot(aif.dopamine(wn), label="dopamine (higher)")
            ax.plot(wn, label="precision (higher)")
            ax.set(title="precision and simulated dopamine", xlabel="iterations")
            ax.legend(fontsize=7)
        else:  # moving policies: the precision is fixed; the beliefs about the report instead
            ax.imshow(beliefs[2].T, cmap="gray_r", vmin=0, vmax=1, aspect="auto")
            ax.set(title="beliefs about the report", yticks=range(3), yticklabels=REPORTS, **ticks)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    plt.close(fig)
    print(f"figure: {out}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=("mini", "reading"), default="mini",
                        help="the miniature of the tests, or DEM_demo_MDP_reading's own model")
    parser.add_argument("--quick", action="store_true", help="one story only")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    suffix = "" if args.model == "mini" else "_reading"
    out = args.out or Path(__file__).parent / "output" / f"spm_hierarchical{suffix}.png"
    stories = ([2] if args.quick else range(4)) if args.model == "mini" else ([0] if args.quick else [0, 3])
    plot([(story, read(args.model, story, rng)) for story in stories], out)


if __name__ == "__main__":
    main()
