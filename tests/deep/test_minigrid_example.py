"""examples/minigrid.py: the view's encoding, and the --quick run of both agents (the RSSM filter feeding the
actor-critic, and DQN) in MiniGrid-Empty-8x8 from the partial egocentric view."""

import importlib.util
import pathlib
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("minigrid")

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def example():
    spec = importlib.util.spec_from_file_location("minigrid_example", ROOT / "examples" / "minigrid.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # its dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


def test_encode_is_one_hot_per_cell(example):
    rng = np.random.default_rng(0)
    image = np.stack([rng.integers(11, size=(7, 7)), rng.integers(6, size=(7, 7)), rng.integers(3, size=(7, 7))], -1)
    x = example.encode(image).reshape(7, 7, 14)
    assert x.dtype == np.uint8 and example.PIXELS == 686
    assert (x[..., :11].sum(-1) == 1).all() and (x[..., 11:].sum(-1) == 1).all()
    assert (x[..., :11].argmax(-1) == image[..., 0]).all() and (x[..., 11:].argmax(-1) == image[..., 2]).all()


def test_quick_run(example):
    results = example.main(["--quick", "--agents", "rssm-sac", "dqn"])
    assert [r["agent"] for r in results] == ["rssm-sac", "dqn"]
    for r in results:
        assert len(r["returns"]) == len(r["goal"]) == example.QUICK.episodes and r["steps"] > 0
        assert 0.0 <= r["success_rate"] <= r["goal_rate"] <= 1.0
        assert all((ret > 0) == g for ret, g in zip(r["returns"], r["goal"], strict=True))  # a reward only at the goal
    assert results[0]["world_model"] is not None and results[1]["world_model"] is None


def test_filter_carries_the_view(example):
    """The filter's features are [h, E_q onehot z]; after an action h changes and the belief is the Agent's formula."""
    s = example.QUICK
    rssm = example.world_model(s, 0)
    filt = example.Filter(rssm)
    pixels = np.zeros(example.PIXELS, np.uint8)
    x0 = filt.reset(pixels)
    assert x0.shape == (s.deter + s.latents * s.classes,) and x0.dtype == torch.float32
    assert torch.all(x0[: s.deter] == 0)  # h_0 = 0
    x1 = filt.step(2, pixels)
    assert not torch.equal(x1[: s.deter], x0[: s.deter])
    torch.testing.assert_close(x1[s.deter:].reshape(s.latents, s.classes).sum(-1), torch.ones(s.latents))


def test_view_beside_the_belief(example):
    """view-rssm-dqn's learner reads the encoded view and the RSSM features side by side."""
    from dataclasses import replace

    s = replace(example.QUICK, episodes=2)
    r = example.run("view-rssm-dqn", s, 0)
    assert len(r["returns"]) == 2 and r["world_model"] is not None


@pytest.mark.parametrize("agent", ["rssm-sac", "view-rssm-sac"])
def test_online_world_model_keeps_training(example, agent):
    """With wm_online the RSSM takes one Adam step per `every` environment steps after the warm-up (the frozen run
    none), on a replay that holds the agent's own episodes."""
    from dataclasses import replace

    from aif_deep.rssm import OnlineFit

    s = replace(example.QUICK, episodes=3, wm_online=OnlineFit(every=4, steps=1, batch_size=4, length=8))
    r = example.run(agent, s, 0)
    warmup, _, _ = example.random_episodes(example.make_env(s), s.warmup, 3, np.random.default_rng(0))  # run's draws
    online_steps = r["steps"] - warmup[0].num_steps
    assert online_steps > 0 and len(r["returns"]) == 3
    assert r["world_model"]["adam_steps"] == s.wm_steps + online_steps // 4
    frozen = example.run(agent, replace(s, wm_online=None), 0)
    assert frozen["world_model"]["adam_steps"] == s.wm_steps and frozen["world_model"]["online_s"] == 0.0


@pytest.mark.parametrize("latents", [1, 2])
def test_belief_info_gain_is_the_kl_of_the_filters_update(example, latents):
    """belief_info_gain reads KL[q(z | h, o) || p(z | h)] from the features: the filter's own KL for one latent
    variable, a lower bound on the joint KL for two (the sum over variables of their marginals' KL); the view beside
    the features is skipped by the offset."""
    from dataclasses import replace

    from aif_deep.rssm import categorical_kl

    s = replace(example.QUICK, latents=latents)
    rssm = example.world_model(s, 0)
    filt = example.Filter(rssm)
    rng = np.random.default_rng(0)
    pixels = [rng.integers(2, size=example.PIXELS).astype(np.uint8) for _ in range(3)]
    x = torch.stack([filt.reset(pixels[0]), filt.step(1, pixels[1]), filt.step(2, pixels[2])])
    joint_kl = categorical_kl(filt.qs[0], filt.view.prior()[0])  # the last update's, over the joint classes
    gain = example.belief_info_gain(rssm)(x)
    assert gain.shape == (3,) and (gain >= 0).all() and float(gain[-1]) > 0
    if latents == 1:
        torch.testing.assert_close(gain[-1], joint_kl.float(), rtol=1e-4, atol=1e-5)
    else:
        assert float(gain[-1]) <= float(joint_kl) + 1e-5
    with_view = torch.cat([torch.from_numpy(np.stack(pixels)).float(), x], -1)
    torch.testing.assert_close(example.belief_info_gain(rssm, example.PIXELS)(with_view), gain)


def test_info_gain_setting_adds_the_term(example):
    """--info-gain W gives the rssm agents' critic the RealisedInfoGain term, and the run reports the mean gain per
    episode; without it the critic learns the risk alone."""
    from dataclasses import replace

    from aif_deep.online import RealisedInfoGain

    s = replace(example.QUICK, episodes=3, info_gain=0.1)
    r = example.run("rssm-sac", s, 0)
    assert len(r["gain_per_episode"]) == s.episodes - s.warmup and all(g > 0 for g in r["gain_per_episode"])
    rssm = example.world_model(s, 0)
    terms = example.learner(s, 20, 3, "sac", 0, example.belief_info_gain(rssm)).efe_terms
    assert any(isinstance(t, RealisedInfoGain) and t.weight == 0.1 for t in terms)
    off = example.learner(replace(s, info_gain=0.0), 20, 3, "sac", 0, example.belief_info_gain(rssm))
    assert not any(isinstance(t, RealisedInfoGain) for t in off.efe_terms)
    assert example.run("rssm-sac", replace(s, info_gain=0.0), 0)["gain_per_episode"] == []


def test_doorkey_command_options_reach_the_settings(example, tmp_path):
    """The recorded DoorKey-5x5 command's options (benchmarks/results/minigrid.md), with --quick: a fixed entropy
    weight, 3-step twin critics, the uniform floor, the information gain with its baseline; the run records what each
    episode did."""
    out = tmp_path / "run.json"
    results = example.main(["--quick", "--agents", "view-rssm-sac", "--online", "--env", "MiniGrid-DoorKey-5x5-v0",
                            "--alpha", "0.01", "--target-entropy", "0", "--n-step", "3", "--twin", "--floor", "0.05",
                            "--info-gain", "0.1", "--info-gain-baseline", "1.0", "--json", str(out)])
    import json

    settings = json.loads(out.read_text())["settings"]
    for text in ("alpha=0.01", "target_entropy=None", "n_step=3", "twin=True", "floor=0.05", "info_gain=0.1",
                 "info_gain_baseline=1.0"):
        assert text in settings
    r = results[0]
    assert len(r["behaviour"]) == len(r["returns"]) - example.QUICK.warmup
    assert all(len(b["actions"]) == 6 and sum(b["actions"]) > 0 and isinstance(b["key"], bool) for b in r["behaviour"])
    assert len(r["gain_per_episode"]) == len(r["gain_events"]) == len(r["behaviour"])


def test_map_efe_finds_the_goal_in_four_rooms_and_needs_its_epistemic_term(example):
    """``map-efe`` (aif.maps) on FourRooms: with the information gain every quick episode reaches the goal; without
    it the agent has nothing to go by until it sees the goal, and takes more steps."""
    with_gain = example.main(["--quick", "--agents", "map-efe", "--env", "MiniGrid-FourRooms-v0", "--episodes", "3"])[0]
    without = example.main(["--quick", "--agents", "map-efe", "--env", "MiniGrid-FourRooms-v0", "--episodes", "3",
                            "--epistemic", "0"])[0]
    assert with_gain["goal"] == [True] * 3 and with_gain["plan_cpu_s"] > 0
    assert without["steps"] > with_gain["steps"]
    # on DoorKey it plans with pick up and toggle: every quick episode through the door to the goal
    door_key = example.main(["--quick", "--agents", "map-efe", "--env", "MiniGrid-DoorKey-5x5-v0", "--episodes", "3"])
    assert door_key[0]["goal"] == [True] * 3 and all(b["key"] and b["door_open"] for b in door_key[0]["behaviour"])


def _goal_of(u) -> tuple[int, int]:
    return next((i, j) for i in range(u.width) for j in range(u.height)
                if u.grid.get(i, j) is not None and u.grid.get(i, j).type == "goal")


def test_map_features_are_the_egocentric_map_and_the_views_gain(example):
    """map-sac's state on FourRooms: the crop is one-hot per cell and rotated to the heading (the cell ahead is the
    world's cell in front of the agent, wall or floor), the coarse crop holds shares, the goal vector points at the
    goal in the agent's frame once the map holds it, and the last feature is the cells the view showed first times
    the prior's entropy before it: turning round in place gains on the first three turns (new sides) and nothing on
    the fourth."""
    import gymnasium as gym

    from aif.maps import UNSEEN

    env = gym.make("MiniGrid-FourRooms-v0")
    rng = np.random.default_rng(1)
    f = example.MapFeatures(19)
    K, Kc, C = f.crop, f.coarse, f.CHANNELS
    assert f.num_features == C * (K * K + Kc * Kc) + 4
    goal_checked = 0
    for episode, seed in enumerate((10, 11, 23)):  # (23: the goal in the first view)
        obs, _ = env.reset(seed=seed)
        u = env.unwrapped
        x = f.reset(obs["image"])
        assert float(x[-1]) == 0.0
        gains = []
        for a in [0, 0, 0, 0] if episode == 0 else []:  # a full turn in place
            known, H = int((f.grid.types != UNSEEN).sum()), f.grid.entropy()
            obs, *_ = env.step(a)
            x = f.step(a, obs["image"])
            assert float(x[-1]) == pytest.approx((int((f.grid.types != UNSEEN).sum()) - known) * H)
            gains.append(float(example.last_feature(x[None])[0]))
        if gains:
            assert min(gains[:3]) > 0 and gains[3] == 0.0
        for _ in range(60):
            crop = x[:C * K * K].reshape(C, K, K)
            coarse = x[C * K * K:C * (K * K + Kc * Kc)].reshape(C, Kc, Kc)
            torch.testing.assert_close(crop.sum(0), torch.ones(K, K))
            torch.testing.assert_close(coarse.sum(0), torch.ones(Kc, Kc))
            # rows ahead, columns right: the cells in front of the agent and to its right (both always in view)
            for (i, j), cell in (((K // 2 + 1, K // 2), u.front_pos),
                                 ((K // 2, K // 2 + 1), u.agent_pos + u.right_vec)):
                obj = u.grid.get(*cell)
                assert int(crop[:, i, j].argmax()) == {None: 2, "wall": 1, "goal": 3}[None if obj is None else obj.type]
            gx, gy = _goal_of(u)
            seen, fwd, right = (float(v) for v in x[-4:-1])
            if seen:  # the world offset to the goal in the agent's frame (MiniGrid's dir_vec, right_vec)
                dx, dy = gx - u.agent_pos[0], gy - u.agent_pos[1]
                assert fwd == pytest.approx((dx * u.dir_vec[0] + dy * u.dir_vec[1]) / 10)
                assert right == pytest.approx((dx * u.right_vec[0] + dy * u.right_vec[1]) / 10)
                goal_checked += 1
            a = int(rng.integers(3))
            obs, _, terminated, truncated, _ = env.step(a)
            if terminated or truncated:
                break
            x = f.step(a, obs["image"])
            assert float(x[-1]) >= 0.0
    assert goal_checked > 0
    with pytest.raises(ValueError, match="odd"):
        example.MapFeatures(19, crop=10)


def test_map_sac_quick_run_learns_on_the_map_belief_with_the_views_gain(example):
    """--quick map-sac on FourRooms: with --info-gain W the critic's RealisedInfoGain stores each step's gain, read
    from the features (last_feature), so its mean per step times the episode's steps is the information the
    episode's views gave about the map (recorded whatever W); without it no gain is stored, the map's still is;
    --hindsight K adds relabelled transitions to the replay."""
    from aif_deep.online import RealisedInfoGain

    args = ["--quick", "--agents", "map-sac", "--env", "MiniGrid-FourRooms-v0", "--episodes", "3", "--alpha", "0.01",
            "--target-entropy", "0", "--n-step", "3", "--twin", "--floor", "0.05"]
    with_gain = example.main(args + ["--info-gain", "0.05", "--hindsight", "2"])[0]
    assert len(with_gain["returns"]) == 3 and with_gain["cpu_s"] > 0 and with_gain["world_model"] is None
    assert with_gain["transitions"] > with_gain["steps"]  # the relabelled episodes too
    for g, b in zip(with_gain["gain_per_episode"], with_gain["behaviour"], strict=True):
        assert b["map_gain"] > 0 and b["map_cells"] > 0 and isinstance(b["goal_seen"], bool)
        assert g * sum(b["actions"]) == pytest.approx(b["map_gain"], rel=1e-4)
    assert len(with_gain["gain_per_episode"]) == 3
    without = example.main(args + ["--info-gain", "0"])[0]
    assert without["gain_per_episode"] == [] and all(b["map_gain"] > 0 for b in without["behaviour"])
    assert without["transitions"] == without["steps"]
    s = replace_settings(example, info_gain=0.05)
    f = example.MapFeatures(19)
    agent = example.learner(s, f.num_features, 3, "sac", 0, example.last_feature)
    term = next(t for t in agent.efe_terms if isinstance(t, RealisedInfoGain))
    assert term.weight == 0.05 and term.of is example.last_feature
    with pytest.raises(SystemExit, match="left, right and forward"):
        example.main(["--quick", "--agents", "map-sac", "--env", "MiniGrid-DoorKey-5x5-v0"])


def replace_settings(example, **changes):
    from dataclasses import replace

    return replace(example.QUICK, **changes)


def test_map_hindsight_relabels_cells_entered_as_the_goal(example):
    """MapFeatures.hindsight replays the episode up to the first step into a cell it entered, with that cell as the
    goal: MiniGrid's goal reward and the episode's end there and nowhere before, the goal vector pointing at it once
    seen (on it at the end: [1, 0, 0]), one goal cell at most in the crop; the transitions follow one another."""
    import gymnasium as gym

    env = gym.make("MiniGrid-FourRooms-v0")
    obs, _ = env.reset(seed=3)
    f = example.MapFeatures(19)
    f.reset(obs["image"])
    rng, actions = np.random.default_rng(0), []
    for _ in range(40):
        a = int(rng.choice(3, p=[0.2, 0.2, 0.6]))
        obs, _, terminated, truncated, _ = env.step(a)
        f.step(a, obs["image"])
        actions.append(a)
        if terminated:
            break
    out = f.hindsight(actions, 3, 100, np.random.default_rng(1))
    ends = [i for i, tr in enumerate(out) if tr[4]]
    assert len(ends) == 3 and ends[-1] == len(out) - 1
    K, C = f.crop, f.CHANNELS
    start = 0
    for end in ends:
        episode = out[start:end + 1]
        assert all(r == 0.0 for _, _, r, _, _ in episode[:-1]) and episode[-1][2] == pytest.approx(
            1.0 - 0.9 * len(episode) / 100)
        assert [a for _, a, _, _, _ in episode] == actions[:len(episode)]
        for (_, _, _, x1, _), (x, _, _, _, _) in zip(episode[:-1], episode[1:], strict=True):
            assert torch.equal(x1, x)
        last = episode[-1][3]
        torch.testing.assert_close(last[-4:-1], torch.tensor([1.0, 0.0, 0.0]))
        assert all(float(tr[0][:C * K * K].reshape(C, K, K)[3].sum()) <= 1.0 for tr in episode)
        start = end + 1
