"""Reading as a deep temporal model: a story inferred from words, each word from the saccades that read it.

    python examples/spm_hierarchical.py                        # the four stories, one trial each
    python examples/spm_hierarchical.py --quick                # story 3 only, as in the tests
    python examples/spm_hierarchical.py --out some/where.png   # default: examples/output/spm_hierarchical.png

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
"""

import argparse
from dataclasses import replace
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import aif  # noqa: E402
from aif import SPM_EFE, SPM_TERMS  # noqa: E402

WORDS = ("flee", "feed", "wait")
SIGHTS = ("nothing", "bird", "seed", "cat")
PLACES = ("centre", "left", "right")
STORIES = ((0, 1), (2, 1), (0, 2), (2, 0))  # the two words of each story
HAPPY = (True, True, False, False)
SEEN = ((2, 3), (2, 1), (0, 1))  # what each word shows (left, right)
REPORTS = ("nothing", "happy", "sad")
T = 3  # steps of a trial, at both levels


def lexical():
    """The lower level: word x eye position; outcomes what is seen and where."""
    what, where = np.zeros((4, 3, 3)), np.zeros((3, 3, 3))
    for w, (left, right) in enumerate(SEEN):
        what[[0, left, right], w, [0, 1, 2]] = 1  # the centre shows nothing
        where[[0, 1, 2], w, [0, 1, 2]] = 1
    saccade = np.zeros((3, 3, 3))
    for k in range(3):
        saccade[k, :, k] = 1  # go to place k
    return aif.GenerativeModel(A=[what, where], B=[np.eye(3)[:, :, None], saccade],
                               D=[np.full(3, 1 / 3), np.eye(3)[0]])


def semantic():
    """The higher level: story x page x report; outcomes the word, the page and feedback (none, right, wrong)."""
    word, page, feedback = np.zeros((3, 4, 2, 3)), np.zeros((2, 4, 2, 3)), np.zeros((3, 4, 2, 3))
    for s, words in enumerate(STORIES):
        for p in range(2):
            word[words[p], s, p, :] = 1
            page[p, s, p, :] = 1
            feedback[0, s, p, 0] = 1
            feedback[1 if HAPPY[s] else 2, s, p, 1] = 1
            feedback[2 if HAPPY[s] else 1, s, p, 2] = 1
    turn = np.stack([np.eye(2), [[0, 0], [1, 1]]], axis=-1)  # stay, proceed
    report = np.zeros((3, 3, 3))
    for k in range(3):
        report[k, :, k] = 1
    return aif.GenerativeModel(A=[word, page, feedback], B=[np.eye(4)[:, :, None], turn, report],
                               C=[np.zeros(3), np.zeros(2), np.array([0.0, 2.0, -4.0])],
                               D=[np.full(4, 1 / 4), np.eye(2)[0], np.eye(3)[0]])


# policies over the trial (P, T - 1, factors): read on and report happy, sad or nothing; report happy or sad at once
HIGH_POLICIES = np.array([[[0, 1, 0], [0, 0, 1]], [[0, 1, 0], [0, 0, 2]], [[0, 1, 0], [0, 0, 0]],
                          [[0, 0, 1], [0, 0, 1]], [[0, 0, 2], [0, 0, 2]]])
LOW_POLICIES = np.array([[[0, a], [0, b]] for b in range(3) for a in range(3)])  # every pair of saccades


class Page:
    """The lower level's world: a word on the page and an eye that moves (Gymnasium's reset/step)."""

    def __init__(self, word):
        self.word = word

    def observe(self):
        return [0 if self.place == 0 else SEEN[self.word][self.place - 1], self.place]

    def reset(self, *, seed=None, options=None):
        self.place = 0
        return self.observe(), {}

    def step(self, action):
        self.place = int(action[1])
        return self.observe(), 0.0, False, False, {}


class Book:
    """The higher level's world: the story, the page in view and the report (the word is read by the lower level)."""

    def __init__(self, story):
        self.story = story

    def observe(self):
        right = HAPPY[self.story] == (self.report == 1)
        return [None, self.page, 0 if self.report == 0 else 1 if right else 2]

    def reset(self):
        self.page, self.report = 0, 0
        return self.observe()

    def step(self, action):
        self.page = max(self.page, int(action[1]))  # proceed stays on the last page
        self.report = int(action[2])
        return self.observe()

    def word(self):
        return STORIES[self.story][self.page]


def spm_agent(model, policies, rng):
    return aif.Agent(model, policies=policies, alpha=512.0, inference=aif.MarginalMessagePassing.spm(),
                     inference_horizon=T, trial_length=T, efe_terms=SPM_TERMS, efe=SPM_EFE,
                     sequence=replace(aif.SequenceOptions.spm(), record=True),
                     selection=aif.Selection("stochastic", "marginal"), rng=rng)


def read(story, rng):
    """One higher trial on ``story``: the hierarchy after it, with the story beliefs and q(pi) at each step."""
    hierarchy = aif.Hierarchy(spm_agent(semantic(), HIGH_POLICIES, rng), spm_agent(lexical(), LOW_POLICIES, rng),
                              [aif.Link(modality=0, factor=0, matrix=np.eye(3))])
    book = Book(story)
    obs = book.reset()
    beliefs, q_pi = [], []
    for t in range(T):
        page = book.page
        action = hierarchy.step(obs, Page(book.word()))
        high, trial = hierarchy.high, hierarchy.lower[-1]
        beliefs.append(high.qs[0])
        q_pi.append(high.q_pi)
        looks = [PLACES[int(a[1])] for a in trial.agent.actions_window] or ["nowhere"]
        print(f"  step {t + 1}: page {page + 1}, prior over the word {np.round(trial.prior[0], 2)}; looked "
              f"{', '.join(looks)} in {trial.steps} step(s) and read {WORDS[int(trial.outcome[0].argmax())]} "
              f"(p = {trial.outcome[0].max():.3f}); beliefs over the stories {np.round(high.qs[0], 3)}")
        if action is not None:
            obs = book.step(action)
    print(f"story {story + 1} ({'happy' if HAPPY[story] else 'sad'}): reported {REPORTS[book.report]}")
    return hierarchy, np.array(beliefs), np.array(q_pi)


def percepts(hierarchy):
    """The lower level's belief about the word after each of its steps (last iteration, policies averaged), all the
    lower trials side by side: (3 words, steps), and where each trial starts."""
    columns, starts = [], []
    for trial in hierarchy.lower:
        xn, _ = aif.neuronal_responses(trial.agent.traces, trial.q_pi)
        starts.append(len(columns))
        columns += [xn[0][-1, :, 0, k] for k in range(trial.steps)]
    return np.array(columns).T, starts


def plot(runs, out):
    fig, axes = plt.subplots(4, len(runs), figsize=(3.6 * len(runs) + 1, 9), squeeze=False)
    for col, (story, (hierarchy, beliefs, q_pi)) in enumerate(runs):
        ax = axes[0, col]
        ax.imshow(beliefs.T, cmap="gray_r", vmin=0, vmax=1, aspect="auto")
        ax.plot(range(T), [story] * T, "r.", markersize=10)
        ax.set(title=f"story {story + 1}: beliefs (red: true)", xticks=range(T), xticklabels=range(1, T + 1),
               yticks=range(4), yticklabels=[f"{WORDS[a]}-{WORDS[b]}" for a, b in STORIES])
        ax = axes[1, col]
        ax.imshow(q_pi.T, cmap="gray_r", vmin=0, vmax=1, aspect="auto")
        ax.set(title="q(pi), higher level", xticks=range(T), xticklabels=range(1, T + 1), yticks=range(5),
               yticklabels=["read, happy", "read, sad", "read", "happy", "sad"])
        ax = axes[2, col]
        words, starts = percepts(hierarchy)
        ax.imshow(words, cmap="gray_r", vmin=0, vmax=1, aspect="auto")
        for s in starts[1:]:
            ax.axvline(s - 0.5, color="r")
        ax.set(title="lower level: beliefs about the word", yticks=range(3), yticklabels=WORDS,
               xlabel="lower steps (red lines: next higher step)")
        ax = axes[3, col]
        wn = np.concatenate(hierarchy.high.gamma_trace)
        ax.plot(aif.dopamine(wn), label="dopamine (higher)")
        ax.plot(wn, label="precision (higher)")
        ax.set(title="precision and simulated dopamine", xlabel="iterations")
        ax.legend(fontsize=7)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    plt.close(fig)
    print(f"figure: {out}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="story 3 only")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "output" / "spm_hierarchical.png")
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    stories = [2] if args.quick else range(4)
    plot([(story, read(story, rng)) for story in stories], args.out)


if __name__ == "__main__":
    main()
