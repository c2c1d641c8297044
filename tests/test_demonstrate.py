"""``tamer play --demonstrate``: the person drives the agent with keys, every step is logged, and
``tamer replay`` trains a behaviour-cloning policy from the session. Driven headless like tests/test_live.py:
real pygame key events posted into the loop, on a virtual clock advanced one frame (DT seconds) at a time."""

import os

os.environ["SDL_VIDEODRIVER"] = "dummy"
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

import types  # noqa: E402

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402
import pygame  # noqa: E402
import pytest  # noqa: E402

from tamer.cli import main, make_parser  # noqa: E402
from tamer.config import Config  # noqa: E402
from tamer.demos import load_demonstrations  # noqa: E402
from tamer.errors import ConfigError  # noqa: E402
from tamer.live import (  # noqa: E402
    ActionKeys,
    LiveConfig,
    SessionFolder,
    play,
    read_steps,
    replay_demonstrations,
    replay_session,
)
from tamer.session import build  # noqa: E402

DT = 0.01  # virtual seconds per frame
LEFT, RIGHT, UP, DOWN = pygame.K_LEFT, pygame.K_RIGHT, pygame.K_UP, pygame.K_DOWN


class FrameClock:
    def __init__(self, start=0.0):
        self.t = start

    def now(self):
        return self.t

    def tick(self):
        pass


def key(k, up=False, **attrs):
    return pygame.event.Event(pygame.KEYUP if up else pygame.KEYDOWN, key=k, **attrs)


def tap(k):
    return [key(k), key(k, up=True)]


def demo_live(**kw):
    return LiveConfig(fps=0, demonstrate=True, **kw)


def session(path, script=None, cfg=None, frames=300, hook=None, resume=False, live=None):
    """play() --demonstrate for ``frames`` frames, posting ``script[frame]`` at the start of those frames;
    frame i happens at start + i * DT (a resumed session's clock starts after what was logged)."""
    start = resume_start(path) if resume else 0.0
    clock, script = FrameClock(start), script or {}

    def on_frame(loop, frame):
        clock.t = start + frame * DT
        for event in script.get(frame, []):
            pygame.event.post(event)
        if hook is not None:
            hook(loop, frame)

    if cfg is None and not resume:
        cfg = Config(step_rate=10.0)
    return play(
        path, cfg, live or demo_live(), resume=resume, max_frames=frames, on_frame=on_frame, clock=clock
    )


def resume_start(path):
    times = [float(line.split(",")[4]) for line in (path / "steps.csv").read_text().splitlines()[1:]]
    return max(times, default=0.0) + 1.0


def steps_of(path, env="MountainCar-v0"):
    s = build(Config(env=env))
    s.env.close()
    return read_steps(path / "steps.csv", s.env.observation_space)


def frame_of(t, start=0.0):
    return round((t - start) / DT)


def test_held_keys_are_the_logged_actions_and_no_key_is_the_no_op(tmp_path):
    # Mountain Car: Right held over frames [20, 60), Left over [80, 120): each step takes the action of the
    # keys held when it starts; with no key, "no push". Nothing learns: no learner thread, no model.
    script = {20: [key(RIGHT)], 60: [key(RIGHT, up=True)], 80: [key(LEFT)], 120: [key(LEFT, up=True)]}
    seen = {}

    def hook(loop, frame):
        seen.setdefault("pool", loop.thread.pool)
        seen["title"], seen["bars"] = loop.st.title, loop.hud.n_actions
        if frame == 45:
            seen["shown"] = loop.st.actions[loop.st.action]

    summary = session(tmp_path, script, frames=160, hook=hook)
    steps = steps_of(tmp_path)
    assert summary.demonstrate and summary.steps == len(steps) >= 14
    expected = [
        2 if 20 <= frame_of(r.t_start) < 60 else 0 if 80 <= frame_of(r.t_start) < 120 else 1 for r in steps
    ]
    assert [r.action for r in steps] == expected
    assert expected.count(2) >= 3 and expected.count(0) >= 3 and expected.count(1) >= 3
    assert seen["pool"] is None and seen["bars"] == 0  # inline recorder, no Ĥ bars
    assert "demonstrating" in seen["title"] and seen["shown"] == "push right"
    assert LiveConfig.load(tmp_path / "live.json").demonstrate and SessionFolder(tmp_path).demonstration()
    assert not (tmp_path / "model.npz").exists()
    assert (tmp_path / "feedback.csv").read_text().splitlines() == ["time,step,episode,value"]
    header, row = ((tmp_path / "metrics.csv").read_text().splitlines()[i].split(",") for i in (0, 1))
    assert steps[-1].truncated and row[-2:] == ["quit", "0"]
    assert row[header.index("length")] == str(len(steps))
    if "demo_steps" in header:  # the effort columns: every step was demonstrated
        assert row[header.index("demo_steps")] == str(len(steps))


def test_acrobot_without_keys_takes_torque_zero(tmp_path):
    session(tmp_path, cfg=Config(env="Acrobot-v1", step_rate=20.0), frames=60)
    actions = [r.action for r in steps_of(tmp_path, "Acrobot-v1")]
    assert len(actions) >= 10 and set(actions) == {1}


def test_cartpole_has_no_no_op_so_it_waits_for_a_key_then_repeats_the_last_action(tmp_path):
    # No key: the first step waits for one; a tapped Right then repeats until the pole falls; the next
    # episode waits again (it does not inherit the last action) and Left drives it.
    seen = {}

    def hook(loop, frame):
        if frame == 20:
            seen["note"], seen["steps"] = loop.st.note, loop.s.steps

    script = {30: tap(RIGHT), 400: tap(LEFT)}
    session(tmp_path, script, cfg=Config(env="CartPole-v1", step_rate=10.0), frames=450, hook=hook)
    steps = steps_of(tmp_path, "CartPole-v1")
    assert seen["steps"] == 0 and seen["note"] == "press Left Right to start"
    first = [r for r in steps if r.episode == 0]
    assert frame_of(first[0].t_start) == 30 and {r.action for r in first} == {1} and first[-1].terminated
    second = [r for r in steps if r.episode == 1]
    assert second and frame_of(second[0].t_start) == 400 and {r.action for r in second} == {0}


def test_grid_world_arrows_and_a_tap_between_steps(tmp_path):
    # 1 step/s: a tap shorter than a step still drives the next one; Up then Right held together (a
    # combination the map lacks) takes the key pressed last.
    script = {50: tap(DOWN), 130: [key(UP)], 140: [key(RIGHT)], 260: [key(UP, up=True), key(RIGHT, up=True)]}
    cfg = Config(env="tamer/GridWorld-v0")
    session(tmp_path, script, cfg=cfg, frames=450)
    actions = [r.action for r in steps_of(tmp_path, "tamer/GridWorld-v0")]
    # no key at first: the episode waits; down (tapped at 0.5 s), right (held with up), right (repeated)
    assert actions[:4] == [2, 1, 1, 1]


def test_action_keys_of_every_env():
    pygame.init()
    mc = gym.make("MountainCar-v0")
    keys = ActionKeys.of_env(mc, "MountainCar-v0", ["push left", "no push", "push right"])
    # gymnasium's own map, in pygame 1's arrow codes (275, 276), read as pygame 2's
    assert "get_keys_to_action" in keys.source and keys.no_op == 1
    assert keys.table == {(LEFT,): 0, (RIGHT,): 2, tuple(sorted((LEFT, RIGHT))): 1}
    assert keys.legend() == [("Left", "push left"), ("Right", "push right"), ("no key", "no push")]
    cp = ActionKeys.of_env(gym.make("CartPole-v1"), "CartPole-v1", ["push left", "push right"])
    assert cp.no_op is None and cp.legend()[-1] == ("no key", "last action again")
    grid = ActionKeys.of_env(gym.make("tamer/GridWorld-v0"), "x", ["up", "right", "down", "left"])
    grid.press(UP)
    grid.press(RIGHT)
    assert grid.choose() == 1
    grid.release(RIGHT)
    assert grid.choose() == 0
    grid.release(UP)
    assert grid.choose() == 0  # nothing held, no no-op: the last action again
    grid.press(LEFT)
    grid.release(LEFT)
    assert grid.choose() == 3 and grid.choose() == 3  # a tap drives the next step, then repeats


def test_an_env_map_in_characters_and_a_key_bound_twice():
    # gymnasium's other spellings ("wa": w and a together) work; a key that is also a command is refused.
    class Own:
        spec = None

        def get_keys_to_action(self):
            return {"w": 1, "wa": 2, (ord(" "),): 3}

    env = types.SimpleNamespace(unwrapped=Own(), spec=None, action_space=gym.spaces.Discrete(4))
    keys = ActionKeys.of_env(env, "mine", ["a0", "a1", "a2", "fire"])
    assert (
        keys.table == {(ord("w"),): 1, (ord("a"), ord("w")): 2, (pygame.K_SPACE,): 3} and keys.no_op is None
    )
    from tamer.live import KeyMap

    with pytest.raises(ConfigError, match="'Space' drives an action .fire. and is bound to pause"):
        keys.check_free(KeyMap(demo_live()))
    keys.check_free(KeyMap(demo_live(keys_pause="p")))


def test_a_crash_mid_session_loses_no_logged_step(tmp_path):
    seen = {}

    def hook(loop, frame):
        if frame == 125:
            seen["closed"] = loop.s.steps
            raise RuntimeError("simulated crash")

    with pytest.raises(RuntimeError, match="simulated crash"):
        session(tmp_path, {20: [key(RIGHT)]}, frames=10_000, hook=hook)
    steps = steps_of(tmp_path)
    assert [r.step for r in steps] == list(range(1, seen["closed"] + 1)) and seen["closed"] == 12
    assert (tmp_path / "metrics.csv").read_text().splitlines()[1].endswith(",error,0")
    space = build(Config()).env.observation_space
    demos = load_demonstrations(tmp_path, space)
    assert len(demos) == 12 and list(demos.actions) == [r.action for r in steps]
    assert np.array_equal(demos.obs, np.stack([r.obs for r in steps]))


def pump(loop, frame):
    """A demonstrator at the keyboard: Right while the car moves right, else Left (energy pumping)."""
    obs = loop.open_step.next_obs if loop.open_step is not None else loop.obs
    want = RIGHT if obs[1] >= 0 else LEFT
    if want not in loop.held:
        other = LEFT if want == RIGHT else RIGHT
        for event in ([key(other, up=True)] if other in loop.held else []) + [key(want)]:
            pygame.event.post(event)


def test_replay_trains_the_identical_policy_twice(tmp_path, capsys):
    session(tmp_path, cfg=Config(step_rate=20.0, seed=4), frames=600, hook=pump)
    first, second = replay_demonstrations(tmp_path), replay_demonstrations(tmp_path)
    assert np.array_equal(first.policy.w, second.policy.w) and first.policy.w.any()
    assert first.accuracy == second.accuracy and first.accuracy > 0.8  # the demonstrator was consistent
    assert first.steps == len(steps_of(tmp_path)) and set(first.counts) == {"push left", "push right"}
    out = tmp_path / "policy.npz"
    assert main(["replay", str(tmp_path), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "demonstration session" in text and f"{first.accuracy:.1%}" in text
    with np.load(out) as saved:
        assert np.array_equal(saved["w"], first.policy.w)
    with pytest.raises(ConfigError, match="demonstration session"):
        replay_session(tmp_path)


def test_resume_appends_and_stays_a_demonstration(tmp_path):
    session(tmp_path, {20: [key(RIGHT)], 70: [key(pygame.K_ESCAPE)]}, frames=10_000)
    logged = (tmp_path / "steps.csv").read_text()
    first = steps_of(tmp_path)
    with pytest.raises(ConfigError, match="is a demonstration session.*drop --no-demonstrate"):
        session(tmp_path, frames=10, resume=True, live=LiveConfig(fps=0))
    assert (tmp_path / "steps.csv").read_text() == logged  # refused before anything was written
    summary = session(tmp_path, {10: [key(LEFT)]}, frames=60, resume=True)
    steps = steps_of(tmp_path)
    assert summary.run == 1 and (tmp_path / "steps.csv").read_text().startswith(logged)
    assert len(steps) > len(first)
    assert [r.step for r in steps] == list(range(1, len(steps) + 1)) and {r.run for r in steps} == {0, 1}
    assert steps[len(first)].t_start > first[-1].t_end  # one time axis
    assert {r.action for r in steps[len(first) + 1 :]} == {0}
    report = replay_demonstrations(tmp_path)
    assert report.runs == 2 and report.steps == len(steps)
    assert main(["play", "--resume", str(tmp_path), "--no-demonstrate"]) == 2
    teaching = tmp_path / "teaching"
    play(teaching, Config(), LiveConfig(fps=0), max_frames=3)
    with pytest.raises(ConfigError, match="is a teaching session.*drop --demonstrate"):
        session(teaching, frames=3, resume=True)


def test_reset_pause_and_save_keys(tmp_path):
    seen = {}

    def hook(loop, frame):
        seen[frame] = (loop.s.steps, loop.st.note)

    script = {30: tap(pygame.K_r), 50: tap(pygame.K_SPACE), 120: tap(pygame.K_SPACE)}
    script[130] = [key(pygame.K_s, mod=pygame.KMOD_LCTRL), key(pygame.K_s, up=True)]
    session(tmp_path, script, frames=160, hook=hook)
    metrics = (tmp_path / "metrics.csv").read_text().splitlines()
    assert ",reset," in metrics[1] and ",quit," in metrics[2]
    assert seen[60][0] == seen[120][0]  # paused: no step
    assert seen[131][1] == "log saved"
    assert {r.episode for r in steps_of(tmp_path)} == {0, 1}


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--env", "CliffWalking-v1"], "CliffWalking-v1 has no keys for --demonstrate"),
        (["--keys-reset", "left"], "'Left' drives an action (push left) and is bound to reset"),
    ],
)
def test_play_refuses_in_one_line_before_writing_anything(tmp_path, capsys, argv, message):
    out = tmp_path / "s"
    assert main(["play", "--demonstrate", "--out", str(out), *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err
    assert not out.exists()


def test_help_explains_the_demonstration_keys(capsys):
    with pytest.raises(SystemExit):
        make_parser().parse_args(["play", "--help"])
    text = capsys.readouterr().out
    assert "--demonstrate" in text and "CartPole has no" in text and "no push" in text
