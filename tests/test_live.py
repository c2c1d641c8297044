"""The live loop, driven headless by posting real pygame key events into it.

Most sessions run on a virtual clock advanced one frame at a time by the test (``FrameClock``) with the frame
rate uncapped, so keypress stamps and step intervals are exact and a session of many seconds takes a fraction
of one. The learner thread is on unless a test says otherwise.
"""

import os

os.environ["SDL_VIDEODRIVER"] = "dummy"
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

import dataclasses  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from concurrent import futures  # noqa: E402

import numpy as np  # noqa: E402
import pygame  # noqa: E402
import pytest  # noqa: E402

from tamer import live as live_module  # noqa: E402
from tamer.callbacks import Callback  # noqa: E402
from tamer.cli import main, make_parser  # noqa: E402
from tamer.config import Config  # noqa: E402
from tamer.errors import ConfigError  # noqa: E402
from tamer.feedback import read_feedback_log  # noqa: E402
from tamer.hud import GOOD  # noqa: E402
from tamer.live import (  # noqa: E402
    COMMANDS,
    KeyboardSource,
    Learner,
    LiveConfig,
    LiveLearner,
    LivePlay,
    SessionFolder,
    compare_agents,
    play,
    read_feedback_steps,
    read_steps,
    replay_session,
)
from tamer.stepper import Stepper  # noqa: E402
from tamer.train import build, train  # noqa: E402

DT = 0.01  # virtual seconds per frame


class FrameClock:
    """The session clock, advanced by the test: frame i happens at i * DT seconds."""

    def __init__(self):
        self.t = 0.0

    def now(self) -> float:
        return self.t

    def tick(self) -> None:
        pass


def key(k, up=False, **attrs):
    return pygame.event.Event(pygame.KEYUP if up else pygame.KEYDOWN, key=k, **attrs)


def tap(k):
    return [key(k), key(k, up=True)]


def session(path, script=None, cfg=None, live=None, frames=300, hook=None, resume=False, clock=True):
    """Run play() for ``frames`` frames, posting ``script[frame]`` events at the start of those frames;
    ``hook(loop, frame)`` runs after them."""
    fake = FrameClock() if clock else None
    start = resume_time(path) if resume else 0.0
    script = script or {}

    def on_frame(loop, frame):
        if (
            fake is not None
        ):  # virtual time must not outrun the learner thread: let it keep up, as it does live
            futures.wait([f for f in (loop.think, *loop.chores) if f is not None])
            fake.t = start + frame * DT
        for event in script.get(frame, []):
            pygame.event.post(event)
        if hook is not None:
            hook(loop, frame)

    if cfg is None and not resume:
        cfg = Config(step_rate=10.0)
    return play(
        path, cfg, live or LiveConfig(fps=0), resume=resume, max_frames=frames, on_frame=on_frame, clock=fake
    )


def resume_time(path):
    """Where a resumed session's virtual clock starts: after everything already logged, as play's own does."""
    times = [float(line.split(",")[4]) for line in (path / "steps.csv").read_text().splitlines()[1:]]
    times += [fb.time for fb in read_feedback_log(path / "feedback.csv")]
    return max(times, default=0.0) + 1.0


def h_of(path, obs, cfg=None):
    """Ĥ(obs, ·) of the model a session saved."""
    cfg = cfg or Config.load(path / "config.json")
    s = build(cfg)
    s.agent.load(path / "model.npz")
    values = s.agent.h_values(s.agent.encode(obs))
    s.env.close()
    return values


def assert_replays_exactly(path):
    report = replay_session(path)
    assert report.h_diff == 0.0
    assert report.same_actions == report.steps  # the replayed agent makes the same choices
    return report


@pytest.mark.parametrize("value", [1.0, -1.0])
def test_key_on_a_chosen_action_moves_h_of_that_state_action(tmp_path, value):
    # A delay window of [0, 0.04] s and a keypress 0.05 s into a 0.1 s step credit exactly that step: Ĥ of the
    # (state, action) on screen moves from 0 to h_lr * value, and no other action's Ĥ in that state moves.
    cfg = Config(step_rate=10.0, delay_min=0.0, delay_max=0.04, seed=3)
    target = 2 if value > 0 else 0
    pressed = {}

    def hook(loop, frame):
        step = loop.open_step
        if pressed or step is None or step.action != target or loop.s.steps < 3:
            return
        if loop.clock.now() >= step.t_start + 0.05 - 1e-9:
            pygame.event.post(key(pygame.K_UP if value > 0 else pygame.K_DOWN))
            pressed.update(obs=np.array(loop.obs), step=loop.s.steps + 1)

    session(tmp_path, cfg=cfg, hook=hook, frames=400)
    assert pressed, "the agent never took the chosen action"
    lines = read_feedback_steps(tmp_path / "feedback.csv")
    assert [(fb.value, step) for fb, step in lines] == [(value, pressed["step"])]
    h = h_of(tmp_path, pressed["obs"])
    assert h[target] == pytest.approx(0.2 * value)
    assert np.delete(h, target) == pytest.approx(0.0)
    assert_replays_exactly(tmp_path)


@pytest.mark.parametrize("threaded", [True, False])
def test_escape_ends_the_session_with_log_and_model_on_disk(tmp_path, threaded):
    script = {40: tap(pygame.K_UP), 90: tap(pygame.K_w), 130: tap(pygame.K_DOWN), 200: [key(pygame.K_ESCAPE)]}
    summary = session(tmp_path, script, live=LiveConfig(fps=0, learn_in_thread=threaded), frames=10_000)
    assert summary.frames < 300  # Esc ended it, not max_frames
    for name in ("config.json", "live.json", "feedback.csv", "steps.csv", "metrics.csv", "model.npz"):
        assert (tmp_path / name).is_file()
    assert [fb.value for fb in read_feedback_log(tmp_path / "feedback.csv")] == [1.0, 1.0, -1.0]
    assert Config.load(tmp_path / "config.json").teacher == "none"
    metrics = (tmp_path / "metrics.csv").read_text().splitlines()
    assert metrics[1].endswith(",quit,0") and len(metrics) == 2
    steps = read_steps(tmp_path / "steps.csv", build(Config()).env.observation_space)
    assert steps[-1].truncated and summary.steps == len(steps) == 20  # 10 steps/s for 2 s
    report = assert_replays_exactly(tmp_path)
    assert report.feedback == 3 and report.orphans == 0 and report.checkpoint_step == steps[-1].step
    assert all(d == 0.0 for d in report.diffs.values())


def test_closing_the_window_ends_the_session(tmp_path):
    summary = session(tmp_path, {50: tap(pygame.K_UP), 80: [pygame.event.Event(pygame.QUIT)]}, frames=10_000)
    assert summary.frames < 100 and (tmp_path / "model.npz").is_file()
    assert_replays_exactly(tmp_path)


def test_ctrl_c_in_the_terminal_quits_like_escape(tmp_path):
    def hook(loop, frame):
        if frame == 60:
            os.kill(os.getpid(), signal.SIGINT)

    before = signal.getsignal(signal.SIGINT)
    summary = session(tmp_path, {30: tap(pygame.K_UP)}, hook=hook, frames=10_000)
    assert summary.frames < 100
    assert signal.getsignal(signal.SIGINT) is before
    assert_replays_exactly(tmp_path)


def test_a_crash_mid_episode_loses_no_logged_feedback(tmp_path):
    # Keys at 0.3 s and 0.8 s are handed over; the one at 1.23 s is pressed in the step that never ends.
    script = {30: tap(pygame.K_UP), 80: tap(pygame.K_DOWN), 123: tap(pygame.K_UP)}

    def hook(loop, frame):
        if frame == 125:
            raise RuntimeError("simulated crash")

    with pytest.raises(RuntimeError, match="simulated crash"):
        session(tmp_path, script, hook=hook, frames=10_000)
    assert [fb.value for fb in read_feedback_log(tmp_path / "feedback.csv")] == [1.0, -1.0, 1.0]
    assert (tmp_path / "model.npz").is_file()
    assert (tmp_path / "metrics.csv").read_text().splitlines()[1].endswith(",error,0")
    report = assert_replays_exactly(tmp_path)
    assert report.feedback == 2 and report.orphans == 1


def test_a_crash_in_the_learner_saves_the_model_and_replays(tmp_path, monkeypatch):
    real = Stepper.end_step

    def flaky(self, r, feedback=(), ended=None):
        if r.step == 15:
            raise RuntimeError("model blew up")
        return real(self, r, feedback, ended)

    monkeypatch.setattr(Stepper, "end_step", flaky)
    with pytest.raises(RuntimeError, match="model blew up"):
        session(tmp_path, {50: tap(pygame.K_UP), 200: tap(pygame.K_UP)}, frames=10_000)
    monkeypatch.setattr(Stepper, "end_step", real)
    assert len(read_feedback_log(tmp_path / "feedback.csv")) == 1  # the loop stopped at step 15 (1.5 s)
    assert_replays_exactly(tmp_path)


def test_resume_continues_the_session_and_replay_spans_both_runs(tmp_path):
    session(tmp_path, {40: tap(pygame.K_UP), 70: [key(pygame.K_ESCAPE)]}, frames=10_000)
    first = len((tmp_path / "steps.csv").read_text().splitlines()) - 1
    summary = session(tmp_path, {30: tap(pygame.K_DOWN), 60: tap(pygame.K_UP)}, frames=100, resume=True)
    assert summary.run == 1 and summary.feedback == 2
    space = build(Config()).env.observation_space
    steps = read_steps(tmp_path / "steps.csv", space)
    assert [r.step for r in steps] == list(range(1, len(steps) + 1)) and len(steps) > first
    assert {r.run for r in steps} == {0, 1} and steps[first].episode == steps[first - 1].episode + 1
    assert steps[first].t_start > steps[first - 1].t_end  # one time axis for the whole session
    read_feedback_log(tmp_path / "feedback.csv")  # times never go backwards
    report = assert_replays_exactly(tmp_path)
    assert report.runs == 2 and report.feedback == 3


def test_resume_past_the_tamer_phase_acts_with_the_rl_blend(tmp_path):
    cfg = Config(
        step_rate=10.0,
        agent="tamer+rl",
        blend="action_biasing",
        mode="sequential",
        h_episodes=1,
        max_steps=10,
    )
    session(tmp_path, {5: tap(pygame.K_UP), 300: [key(pygame.K_ESCAPE)]}, cfg=cfg, frames=10_000)
    blends = []
    session(
        tmp_path,
        {20: [key(pygame.K_ESCAPE)]},
        frames=10_000,
        resume=True,
        hook=lambda loop, frame: blends.append(type(loop.s.agent.blend).__name__),
    )
    assert set(blends) == {"ActionBiasing"}
    assert_replays_exactly(tmp_path)


def test_resume_after_a_kill_rebuilds_the_model_from_the_log(tmp_path, capsys):
    session(tmp_path, {40: tap(pygame.K_UP), 90: [key(pygame.K_ESCAPE)]}, frames=10_000)
    (tmp_path / "checkpoint.json").write_text('{"step": 2}\n')  # as if killed after an early checkpoint
    (tmp_path / "model.npz").unlink()
    session(tmp_path, {20: tap(pygame.K_UP), 40: [key(pygame.K_ESCAPE)]}, frames=10_000, resume=True)
    assert "rebuilding the agent by replaying the log" in capsys.readouterr().err
    assert_replays_exactly(tmp_path)


def test_resume_after_a_crash_teaches_the_keypress_of_the_step_that_never_ended(tmp_path):
    # The key at 1.23 s was pressed during the step open at the crash: the resumed run teaches it before
    # its first step, credited over the crashed run's last steps (tests/test_sessions.py checks the credit).
    def crash(loop, frame):
        if frame == 125:
            raise RuntimeError("crash")

    with pytest.raises(RuntimeError):
        session(tmp_path, {30: tap(pygame.K_UP), 123: tap(pygame.K_DOWN)}, hook=crash, frames=10_000)
    session(tmp_path, {30: tap(pygame.K_UP), 50: [key(pygame.K_ESCAPE)]}, frames=10_000, resume=True)
    steps = [step for _, step in read_feedback_steps(tmp_path / "feedback.csv")]
    assert steps[1] < steps[2] and len(set(steps)) == 3
    report = assert_replays_exactly(tmp_path)
    assert report.orphans == 0 and report.late == 1 and report.feedback == 3


def test_a_held_key_does_not_repeat(tmp_path):
    script = {
        20: [key(pygame.K_UP)],
        21: [key(pygame.K_UP)],
        40: [key(pygame.K_UP)],
        41: [key(pygame.K_UP, up=True)],
    }
    script[50] = [key(pygame.K_UP)]
    session(tmp_path, script, frames=80)
    assert len(read_feedback_log(tmp_path / "feedback.csv")) == 2


def test_keys_are_remappable_and_ctrl_s_saves_without_giving_feedback(tmp_path):
    live = LiveConfig(fps=0, keys_good="k", keys_bad="j")
    seen = {}

    def hook(loop, frame):
        if frame == 60:
            seen["saved"] = (tmp_path / "model.npz").is_file()

    script = {10: tap(pygame.K_UP), 20: tap(pygame.K_k), 30: tap(pygame.K_j)}
    script[40] = [key(pygame.K_s, mod=pygame.KMOD_LCTRL), key(pygame.K_s, up=True)]
    session(tmp_path, script, live=live, hook=hook, frames=80)
    assert seen["saved"]
    assert [fb.value for fb in read_feedback_log(tmp_path / "feedback.csv")] == [1.0, -1.0]
    assert LiveConfig.load(tmp_path / "live.json").keys_good == "k"


@pytest.mark.parametrize("keys_good, message", [("nokey", "unknown key 'nokey'"), ("up,down", "bound twice")])
def test_bad_key_bindings_are_refused_before_anything_is_written(tmp_path, keys_good, message):
    with pytest.raises(ConfigError, match=message):
        session(tmp_path / "s", live=LiveConfig(fps=0, keys_good=keys_good), frames=5)
    assert not (tmp_path / "s").exists()


def test_pause_freezes_the_agent_and_the_rate_keys_change_its_pace(tmp_path):
    seen = {}

    def hook(loop, frame):
        seen[frame] = (loop.s.steps, loop.pace.rate, loop.pace.paused)

    script = {50: tap(pygame.K_SPACE), 150: tap(pygame.K_SPACE), 200: tap(pygame.K_RIGHTBRACKET)}
    script[210] = tap(pygame.K_LEFTBRACKET) + tap(pygame.K_LEFTBRACKET)
    session(tmp_path, script, hook=hook, frames=260)
    assert seen[60][2] and seen[60][0] == seen[150][0]  # paused: no step between 0.6 s and 1.5 s
    assert seen[190][0] > seen[150][0]
    assert seen[201][1] == 15.0 and seen[212][1] == 7.5


def test_keys_during_a_pause_are_credited_to_the_frozen_step(tmp_path):
    cfg = Config(step_rate=10.0, delay_min=0.2, delay_max=0.8)
    script = {
        52: tap(pygame.K_SPACE),
        150: tap(pygame.K_UP),
        160: tap(pygame.K_SPACE),
        200: [key(pygame.K_ESCAPE)],
    }
    session(tmp_path, script, cfg=cfg, frames=10_000)
    steps = read_steps(tmp_path / "steps.csv", build(Config()).env.observation_space)
    frozen = next(r for r in steps if r.t_start <= 0.52 < r.t_end)
    assert frozen.t_end - frozen.t_start > 1.0
    ((fb, step),) = read_feedback_steps(tmp_path / "feedback.csv")
    assert step == frozen.step and fb.time == pytest.approx(1.5)
    h = h_of(tmp_path, frozen.obs)
    assert h[frozen.action] == pytest.approx(0.2)  # the whole window [0.7, 1.3] s lies in the frozen step


def test_reset_key_ends_the_episode(tmp_path):
    session(tmp_path, {50: tap(pygame.K_r)}, frames=120)
    metrics = (tmp_path / "metrics.csv").read_text().splitlines()
    assert ",reset," in metrics[1] and ",quit," in metrics[2]
    steps = read_steps(tmp_path / "steps.csv", build(Config()).env.observation_space)
    assert {r.episode for r in steps} == {0, 1}
    assert_replays_exactly(tmp_path)


def test_a_keypress_flashes_the_border(tmp_path):
    seen = {}

    def hook(loop, frame):
        seen[frame] = tuple(loop.screen.get_at((1, 1)))[:3]

    session(tmp_path, {30: tap(pygame.K_UP)}, hook=hook, frames=90)
    assert GOOD not in (seen[f] for f in range(25, 31))
    assert GOOD in (seen[f] for f in range(31, 34))  # drawn within a frame or two of the keypress
    assert GOOD not in (seen[f] for f in range(80, 90))  # and gone after FLASH_SECONDS


def test_event_timestamps_are_used_when_pygame_gives_them(tmp_path, monkeypatch):
    # pygame 2.6 passes no event timestamps; an event carrying one (SDL's ms ticks) is stamped by it.
    monkeypatch.setattr(pygame.time, "get_ticks", lambda: 100_000)

    def hook(loop, frame):
        if frame == 30:
            pygame.event.post(key(pygame.K_UP, timestamp=100_000 - 300))
            seen["now"] = loop.clock.now()

    seen = {}
    session(tmp_path, hook=hook, frames=60)
    ((fb, _),) = read_feedback_steps(tmp_path / "feedback.csv")
    assert fb.time == pytest.approx(seen["now"] - 0.3)


@pytest.mark.parametrize("env", ["MountainCar-v0", "CartPole-v1", "Acrobot-v1", "tamer/GridWorld-v0"])
def test_every_environment_plays_and_replays(tmp_path, env):
    script = {15: tap(pygame.K_UP), 35: tap(pygame.K_DOWN)}
    summary = session(tmp_path, script, cfg=Config(env=env, step_rate=20.0), frames=60)
    assert summary.steps > 5
    assert_replays_exactly(tmp_path)


def test_a_neural_h_replays_exactly(tmp_path):
    # Deep TAMER's Ĥ: network weights, Adam's moments, the feedback buffer and its sampling RNG all match.
    script = {i: tap(pygame.K_UP if i % 40 else pygame.K_DOWN) for i in range(15, 200, 20)}
    session(tmp_path, script, cfg=Config(model="mlp", step_rate=10.0), frames=200)
    report = assert_replays_exactly(tmp_path)
    assert report.feedback == 10 and all(d == 0.0 for d in report.diffs.values())


def test_tamer_plus_rl_shows_q_and_beta_and_replays_all_of_the_agent(tmp_path):
    seen = {}

    def hook(loop, frame):
        seen["q"], seen["beta"] = loop.st.q, loop.st.beta

    cfg = Config(agent="tamer+rl", blend="action_biasing", step_rate=20.0)
    session(tmp_path, {20: tap(pygame.K_UP), 40: tap(pygame.K_DOWN)}, cfg=cfg, hook=hook, frames=80)
    assert seen["q"] is not None and len(seen["q"]) == 3 and seen["beta"] is not None
    report = assert_replays_exactly(tmp_path)
    assert "rl" in report.diffs and all(d == 0.0 for d in report.diffs.values())


def test_without_a_display_play_says_so_in_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("SDL_VIDEODRIVER", raising=False)
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr(sys, "platform", "linux")
    assert main(["play", "--out", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no display" in err and "tamer train" in err
    assert not (tmp_path / "s").exists()


def test_sdl_falling_back_to_an_invisible_display_counts_as_none(monkeypatch):
    monkeypatch.delenv("SDL_VIDEODRIVER", raising=False)
    monkeypatch.setenv("DISPLAY", ":97")  # no X server there: SDL would pick its "offscreen" driver
    with pytest.raises(ConfigError, match="no display"):
        live_module.open_display()


def test_cli_replay_and_help(tmp_path, capsys):
    session(tmp_path, {30: tap(pygame.K_UP)}, frames=60)
    assert main(["replay", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "Ĥ matches model.npz exactly" in out
    assert main(["replay", str(tmp_path / "nope")]) == 2
    assert main(["play", "--resume", str(tmp_path), "--env", "CartPole-v1"]) == 2
    assert "drop --env" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        make_parser().parse_args(["play", "--help"])
    help_text = capsys.readouterr().out
    for label in ("Up W =", "Down S -", "Space", "[ ]", "Ctrl+S", "Esc", "--keys-good", "--fps"):
        assert label in help_text


def test_every_key_command_names_a_method_of_the_frame_loop_and_a_key_setting():
    for name, command in COMMANDS.items():
        assert callable(getattr(LivePlay, command.action)), name
        assert hasattr(LiveConfig(), "keys_" + name)


class Recorder(Callback):
    """What a headless run hands the learning body: every step with the feedback handed over after it."""

    def __init__(self):
        self.s, self.steps = None, []

    def on_run_start(self, s):
        self.s = s

    def on_step(self, s, step, feedback):
        self.steps.append((step, list(feedback)))


@pytest.mark.parametrize(
    "cfg",
    [
        Config(agent="tamer", episodes=3, max_steps=120, seed=1),
        Config(agent="tamer+rl", blend="q_init", leave_after=2, episodes=4, max_steps=100, seed=2),
        Config(
            agent="tamer+rl",
            mode="sequential",
            blend="action_biasing",
            h_episodes=2,
            episodes=3,
            max_steps=80,
        ),
    ],
    ids=["tamer", "tamer+rl-q-init-leave-after", "sequential"],
)
def test_a_headless_run_through_the_live_learner_gives_the_identical_agent(tmp_path, cfg):
    # The simulated teacher's run (tamer.train) and the live path share one learning body: the headless
    # steps and feedback, pressed as keys into a KeyboardSource and handed to the live learner on its thread
    # with the session folder's callbacks, give an agent equal to the headless one in every saved number,
    # phase changes (the teacher leaving, sequential mode's switch) included; the folder it writes replays.
    recorder = Recorder()
    train(cfg, progress=False, callbacks=[recorder])
    handed = sum(len(feedback) for _, feedback in recorder.steps)
    assert handed > 0 and len({step.episode for step, _ in recorder.steps}) == cfg.episodes
    assert recorder.s.agent.h_frozen == (cfg.mode == "sequential")  # the teacher left, Ĥ frozen in sequential

    live_cfg = dataclasses.replace(cfg, teacher="none")  # as play builds it: the person is the teacher
    s = build(live_cfg)
    folder = SessionFolder(tmp_path)
    live_cfg.save(folder.config)
    source = s.source = KeyboardSource(folder.feedback)
    learner, thread = LiveLearner(s, folder), Learner(threaded=True)
    learner.open()
    jobs, episode = [], None
    for step, feedback in recorder.steps:
        if step.episode != episode:
            episode = step.episode
            jobs.append(thread.submit(learner.begin, episode, step.obs))
        for fb in feedback:
            source.press(fb, step.step, step.episode)
        source.observe(step.obs, step.action, step.t_start, step.t_end, step.episode)
        keys = source.poll(step.t_end)
        assert keys == feedback
        jobs.append(thread.submit(learner.end, step, keys))
    thread.close()
    actions = [job.result().action for job in jobs]
    learner.close("quit")
    source.close()
    s.env.close()

    diffs = compare_agents(s.agent, recorder.s.agent)
    assert set(diffs) >= {"agent", "h"} and all(d == 0.0 for d in diffs.values()), diffs
    assert s.feedback == recorder.s.feedback == handed
    # the live learner chose every action the headless run took, and ended each episode where it did
    assert [a for a in actions if a is not None] == [step.action for step, _ in recorder.steps]
    assert actions.count(None) == cfg.episodes
    report = replay_session(tmp_path)
    assert report.exact and all(d == 0.0 for d in report.diffs.values())
    assert report.feedback == handed and report.steps == len(recorder.steps)
    assert report.same_actions == report.steps and report.checkpoint_step == recorder.steps[-1][0].step


def test_importing_tamer_live_and_building_the_cli_does_not_import_pygame():
    code = "import sys, tamer.live, tamer.cli; tamer.cli.make_parser(); assert 'pygame' not in sys.modules"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
