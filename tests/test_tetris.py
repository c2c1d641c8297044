"""Tetris: the env, the 46 features on hand-built boards, the Dellacherie evaluation and the teacher's oracle,
the credit modes immediate/previous, the afterstate models, and runs through the framework."""

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import envs  # noqa: F401  (registers tamer/* environments)
from envs.tetris import COLS, N_ACTIONS, ROWS, TetrisEnv, afterstates, decode
from tamer.config import Config
from tamer.credit import CreditAssigner, UniformDelay
from tamer.errors import ConfigError
from tamer.oracles import make_oracle
from tamer.tetris import (
    AfterstateLinear,
    AfterstateTD,
    PlacementTeacher,
    TetrisFeatures,
    TetrisPhi,
    approve,
    board_features,
    dellacherie_features,
    evaluate,
    scaled_features,
)
from tamer.train import train

PIECE_I, PIECE_O = 0, 1  # piece ids: I O T S Z J L


def board_of(*rows: str) -> np.ndarray:
    """A (20, 10) board from rows drawn top first ('#' filled); the last string is the bottom row."""
    board = np.zeros((ROWS, COLS), dtype=bool)
    for i, row in enumerate(reversed(rows)):
        board[i] = [ch == "#" for ch in row]
    return board


def obs_of(board: np.ndarray, piece: int) -> np.ndarray:
    obs = np.zeros(ROWS * COLS + 7, dtype=np.float32)
    obs[: ROWS * COLS] = board.reshape(-1)
    obs[ROWS * COLS + piece] = 1.0
    return obs


def env_at(board: np.ndarray, piece: int, **kwargs) -> TetrisEnv:
    env = TetrisEnv(**kwargs)
    env.reset(seed=0)
    env.colors[...] = board.astype(np.int8)
    env.piece = piece
    return env


# ---- the env ----------------------------------------------------------------------------------------------


def test_check_env_passes_without_warnings():
    env = gym.make("tamer/Tetris-v0", render_mode="rgb_array")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(env.unwrapped)
    env.close()


def test_spaces_names_and_render():
    env = gym.make("tamer/Tetris-v0", render_mode="rgb_array")
    assert env.action_space == gym.spaces.Discrete(40)
    assert env.observation_space.shape == (207,)
    obs, info = env.reset(seed=0)
    assert obs[:200].sum() == 0 and obs[200:].sum() == 1 and info == {"lines": 0, "pieces": 0, "score": 0}
    assert env.unwrapped.action_names[13] == "rot 1 col 4"
    frame = env.render()
    env.step(0)
    after = env.render()
    assert frame.shape == after.shape == (20 * 24, 16 * 24, 3) and frame.dtype == np.uint8
    assert (after == 255).all(axis=2).any()  # the placement just made is outlined in white
    assert env.unwrapped.metadata["teaching_step_rate"] == 1.0
    env.close()


def test_same_seed_same_pieces():
    def pieces(seed):
        env = TetrisEnv()
        obs, _ = env.reset(seed=seed)
        out = [decode(obs)[1]]
        for _ in range(20):
            obs, *_ = env.step(9)  # vertical stacking ends a game fast; 20 steps fit before it ends
            out.append(decode(obs)[1])
            if env.board[ROWS - 4 :].any():
                break
        return out

    assert pieces(3) == pieces(3) and pieces(3) != pieces(4)


def test_out_of_range_columns_move_left_to_fit():
    env = env_at(board_of(), PIECE_I)
    obs, *_ = env.step(9)  # rotation 0 (horizontal, width 4), column 9: moved to column 6
    board, _ = decode(obs)
    assert board[0].tolist() == [False] * 6 + [True] * 4
    env = env_at(board_of(), PIECE_I)
    obs, *_ = env.step(10 + 9)  # rotation 1 (vertical): column 9 fits as it is
    assert decode(obs)[0][:4, 9].all()


def test_lines_are_the_reward_and_a_top_out_ends_the_game():
    well = board_of(*["#########."] * 4)  # four rows full but column 10
    env = env_at(well, PIECE_I)
    obs, reward, terminated, truncated, info = env.step(19)  # vertical I into the well
    assert (reward, terminated, truncated, info["lines"]) == (4.0, False, False, 4)
    assert decode(obs)[0].sum() == 0
    tower = board_of(*["#........."] * 19)
    env = env_at(tower, PIECE_O)
    _, reward, terminated, truncated, _ = env.step(0)  # an O on a 19-high column does not fit
    assert (reward, terminated, truncated) == (0.0, True, False)


def test_max_pieces_truncates():
    env = TetrisEnv(max_pieces=3)
    env.reset(seed=0)
    ends = [env.step(a)[3] for a in (0, 4, 16)]  # three flat placements side by side
    assert ends == [False, False, True]


def test_afterstates_match_the_env_step():
    env = TetrisEnv()
    rng = np.random.default_rng(0)
    obs, _ = env.reset(seed=1)
    for _ in range(300):
        board, piece = decode(obs)
        after = afterstates(board, piece)
        action = int(rng.integers(N_ACTIONS))
        obs, reward, terminated, truncated, _ = env.step(action)
        assert terminated == after.over[action]
        if terminated:
            obs, _ = env.reset()
            continue
        assert reward == after.lines[action]
        assert (decode(obs)[0] == after.boards[action]).all()


def test_demonstration_keys():
    keys = TetrisEnv().get_keys_to_action()
    assert keys[("1",)] == 0 and keys[("0",)] == 9 and keys[("z", "4")] == 13 and keys[("c", "0")] == 39
    assert len(set(keys.values())) == N_ACTIONS


# ---- features and evaluation ----------------------------------------------------------------------------


def test_the_23_features_of_a_hand_built_board():
    board = board_of(
        ".....#....",  # row 3
        "#.........",  # row 2
        "#..#......",  # row 1
        "####.####.",  # row 0
    )
    f = board_features(board)
    assert f[:10].tolist() == [3, 1, 1, 2, 0, 4, 1, 1, 1, 0]  # heights
    assert f[10] == 4  # max height
    assert f[11:20].tolist() == [2, 0, 1, 2, 4, 3, 0, 0, 1]  # |h_i - h_i+1|
    assert f[20] == 2  # holes: column 6, rows 1 and 2 under its top at row 3
    # wells: column 5 lies 2 below min(2, 4), column 10 lies 1 below min(1, wall): max 2, sum 3
    assert (f[21], f[22]) == (2, 3)
    x = scaled_features(f)
    assert x.shape == (47,) and x[-1] == 1.0
    assert np.allclose(x[:23], f / 20) and np.allclose(x[23:46], (f / 20) ** 2)


def test_feature_map_gives_every_placements_afterstate():
    board = board_of(*["#########."] * 4)
    phi = TetrisFeatures()(obs_of(board, PIECE_I))
    assert phi.after.shape == (40, 47) and phi.lines[19] == 4 and phi.lines[0] == 0
    assert np.allclose(phi.after[19, :23], 0)  # four lines cleared: the board is empty
    assert np.allclose(phi.val, scaled_features(board_features(board)))
    rel = phi.relative()
    assert np.allclose(rel[:, :-1], phi.after[:, :-1] - phi.val[:-1]) and (rel[:, -1] == 1).all()


def test_dellacherie_features_of_an_o_on_the_empty_board():
    after = afterstates(board_of(), PIECE_O)
    f = dellacherie_features(after, PIECE_O)[0]  # O in columns 1-2
    # landing height 0.5 (middle of rows 0-1), no lines, row transitions 2 per row, column transitions
    # 1 per column (floor to empty, or O's top to empty), no holes, no wells
    assert f.tolist() == [0.5, 0, 40, 10, 0, 0]


def test_cumulative_wells_and_eroded_cells():
    board = board_of(*["#.########"] * 3)  # a well 3 deep in column 2
    after = afterstates(board, PIECE_O)
    f = dellacherie_features(after, PIECE_O)[4]  # O in columns 5-6, on top: the well stays
    assert f[5] == 1 + 2 + 3
    g = dellacherie_features(afterstates(board, PIECE_I), PIECE_I)[
        11
    ]  # vertical I in column 2: 3 lines, 3 cells
    assert g[1] == 3 * 3


def test_oracle_chooses_the_tetris_on_a_hand_built_board():
    board = board_of(*["#########."] * 4)
    oracle = make_oracle("", gym.make("tamer/Tetris-v0"))
    mask = oracle(obs_of(board, PIECE_I))
    assert np.flatnonzero(mask).tolist() == [19, 39]  # vertical I (rotations 1 and 3) into the well
    values = evaluate(board, PIECE_I)
    assert values.argmax() == 19 and np.isfinite(values).all()


def test_approve_margin_and_top_outs():
    values = np.array([-10.0, -12.0, -20.0, -np.inf])
    assert approve(values, 0.0).tolist() == [True, False, False, False]
    assert approve(values, 0.2).tolist() == [True, True, False, False]  # within 0.2 * 10 of the best
    assert approve(values, 1.0).tolist() == [True, True, True, False]  # a top-out is never approved
    assert approve(np.full(3, -np.inf), 0.0).all()  # every placement tops out: no opinion


# ---- credit modes ---------------------------------------------------------------------------------------


def steps_assigner(mode: str) -> CreditAssigner:
    a = CreditAssigner(UniformDelay(0.2, 0.8), mode=mode)
    for k, t in enumerate((0.0, 1.0, 2.0)):  # three steps of a second: [0, 1), [1, 2), [2, 3)
        a.record(f"x{k}", k, t, t + 1.0)
    return a


@pytest.mark.parametrize(
    "mode, t, step",
    [
        ("immediate", 2.5, 2),  # during step 2
        ("immediate", 2.0, 2),  # at its start
        ("immediate", 1.999, 1),
        ("immediate", 3.4, 2),  # after the last step ended: the last step, nothing newer was shown
        ("previous", 2.5, 1),
        ("previous", 3.4, 1),
    ],
)
def test_one_step_credit_modes(mode, t, step):
    xs, actions, credits = steps_assigner(mode).assign(t)
    assert (xs, actions, credits) == ([f"x{step}"], [step], [1.0])


def test_previous_credit_as_the_loop_calls_it():
    """Feedback is handed over after the step it came in is recorded, before the next one is."""
    a = CreditAssigner(UniformDelay(0.2, 0.8), mode="previous")
    a.record("x0", 0, 0.0, 1.0)
    a.record("x1", 1, 1.0, 2.0)
    assert a.assign(1.2) == (["x0"], [0], [1.0])
    a.record("x2", 2, 2.0, 3.0)  # history beyond the delay window is trimmed, two steps always kept
    assert [s[2] for s in a.steps] == ["x1", "x2"]


def test_one_step_credit_modes_ignore_what_has_no_step():
    a = steps_assigner("previous")
    assert a.assign(0.5) == ([], [], []) and a.ignored == 1  # the first step has no previous one
    b = steps_assigner("immediate")
    assert b.assign(-0.1) == ([], [], []) and b.ignored == 1  # before any step


def test_delay_mode_is_unchanged_and_one_step_modes_keep_two_steps():
    a = steps_assigner("delay")
    xs, _, credits = a.assign(2.5)  # uniform 0.2-0.8 s: the window [1.7, 2.3) covers steps 1 and 2
    assert xs == ["x2", "x1"] and np.allclose(credits, [0.5, 0.5])
    p = CreditAssigner(UniformDelay(0.2, 0.8), mode="previous")
    p.record("a", 0, 0.0, 1.0)
    p.record("b", 1, 1.0, 100.0)  # a step shown for 99 s (a paused session): the one before is kept
    assert p.assign(50.0)[0] == ["a"]
    with pytest.raises(ConfigError, match="credit mode"):
        CreditAssigner(UniformDelay(), mode="later")


def test_placement_teacher_judges_at_the_steps_end():
    cfg = Config(env="tamer/Tetris-v0", feedback_prob=1.0, error_rate=0.0)
    env = gym.make("tamer/Tetris-v0")
    teacher = PlacementTeacher(cfg, env, np.random.default_rng(0))
    board = board_of(*["#########."] * 4)
    for k in range(50):
        teacher.observe(obs_of(board, PIECE_I), 19, float(k), float(k + 1), 0)
    got = teacher.poll(1000.0)
    assert len(got) == 50 and all(f.value == 1.0 for f in got)
    lags = np.sort([f.time for f in got]) - np.arange(1, 51)  # from each step's end
    assert lags.min() >= 0.2 and lags.max() <= 0.8 + 1e-9  # so every feedback lands in the next step


# ---- afterstate models ----------------------------------------------------------------------------------


def fake_phi(after: np.ndarray, state: np.ndarray, lines=None) -> TetrisPhi:
    n = after.shape[0]
    lines = np.zeros(n) if lines is None else np.asarray(lines, dtype=float)
    return TetrisPhi(np.arange(after.shape[1]), state, after, lines, np.zeros(n, dtype=bool))


def test_afterstate_linear_hand_computed():
    features = TetrisFeatures()
    h = AfterstateLinear(features, 2, lr=0.5, relative=False)
    x = fake_phi(np.array([[1.0, 0.0, 1.0], [0.0, 2.0, 1.0]]), np.zeros(3))
    h.w = np.zeros(3)
    h.update([x], [1], [0.5], 1.0)  # error 1, step 0.5 * 0.5 * 1 / ||(0, 2, 1)||² = 0.05
    assert np.allclose(h.w, [0.0, 0.1, 0.05])
    assert np.allclose(h.predict(x), [0.05, 0.25])
    r = AfterstateLinear(features, 2, lr=0.5)  # relative: the board's features subtracted, bias kept
    r.w = np.array([1.0, 1.0, 1.0])
    x = fake_phi(np.array([[1.0, 0.0, 1.0], [0.0, 2.0, 1.0]]), np.array([1.0, 1.0, 1.0]))
    assert np.allclose(r.predict(x), [0.0 - 1.0 + 1.0, -1.0 + 1.0 + 1.0])


def test_afterstate_sarsa_hand_computed():
    td = AfterstateTD(TetrisFeatures(), 40, "sarsa", lr=0.5, gamma=0.9, lam=0.5)
    td.w = np.zeros(47)
    after = np.zeros((40, 47))
    after[:, -1] = 1.0
    after[3, 0] = 1.0  # ||φ||² = 2
    x = fake_phi(after, np.zeros(47), lines=np.eye(40)[3])  # action 3 clears a line
    assert np.allclose(td.values(x)[:4], [0, 0, 0, 1])
    td.w[-1] = 1.0  # V = 1 everywhere: Q(s, 3) = 2, Q(s', 3) = 2
    delta = td.update(x, 3, 1.0, x, 3, False)  # δ = 1 + 0.9 * 2 - 2 = 0.8
    assert np.isclose(delta, 0.8)
    assert np.allclose(td.w[[0, -1]], [0.5 * 0.8 / 2, 1 + 0.5 * 0.8 / 2])
    assert np.allclose(td.trace[[0, -1]], [1.0, 1.0])  # accumulating; decays by γλ before the next add


# ---- through the framework ------------------------------------------------------------------------------


def test_tamer_sarsa_and_knn_run_on_tetris(tmp_path):
    base = dict(env="tamer/Tetris-v0", episodes=2, max_steps=30, seed=0)
    rows = train(Config(**base, credit="previous"), out=tmp_path / "tamer", progress=False)
    assert len(rows) == 2 and sum(r["feedback"] for r in rows) > 0
    train(Config(**base, agent="rl", rl_lr=0.5, gamma=0.9), progress=False)
    train(Config(**base, model="knn", teacher="tamer.tetris:PlacementTeacher"), progress=False)
    from tamer.train import evaluate as evaluate_run

    assert len(evaluate_run(tmp_path / "tamer", episodes=1)) == 1


def test_tetris_features_refuse_other_envs():
    with pytest.raises(ConfigError, match="tetris"):
        train(Config(env="CartPole-v1", features="tetris", episodes=1), progress=False)


def test_a_short_tamer_run_learns_to_clear_lines():
    """The learning itself, small: 3 seeds, 3 games of at most 200 pieces, the experiment's settings."""
    cfg = dict(env="tamer/Tetris-v0", credit="previous", teacher="tamer.tetris:PlacementTeacher", episodes=3)
    lines = [train(Config(**cfg, seed=s), progress=False)[-1]["return"] for s in range(3)]
    assert np.mean(lines) >= 10, lines


# ---- a live session, headless ----------------------------------------------------------------------------


def live_session(path, cfg, live, frames, script):
    """play() for ``frames`` frames on a virtual clock (0.01 s a frame), posting ``script[frame]``."""
    import os

    os.environ["SDL_VIDEODRIVER"] = "dummy"
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    from concurrent import futures

    import pygame

    from tamer.live import play

    class Clock:
        t = 0.0

        def now(self):
            return self.t

        def tick(self):
            pass

    clock = Clock()

    def on_frame(loop, frame):
        futures.wait([f for f in (loop.think, *loop.chores) if f is not None])
        clock.t = frame * 0.01
        for k, up in script.get(frame, []):
            pygame.event.post(pygame.event.Event(pygame.KEYUP if up else pygame.KEYDOWN, key=k))

    return play(path, cfg, live, max_frames=frames, on_frame=on_frame, clock=clock)


def test_live_teaching_and_demonstrating_tetris(tmp_path):
    import pygame

    from tamer.live import LiveConfig, read_feedback_steps

    cfg = Config(env="tamer/Tetris-v0", credit="previous", step_rate=5.0)
    up = pygame.K_UP
    script = {f: [(up, False), (up, True)] for f in (30, 50, 70, 90)}  # a keypress during steps 2, 3, 4, 5
    summary = live_session(tmp_path / "teach", cfg, LiveConfig(fps=0), 120, script)
    assert summary.steps >= 5 and summary.feedback == 4
    fed = read_feedback_steps(tmp_path / "teach" / "feedback.csv")
    assert [fb.value for fb, _ in fed] == [1.0] * 4
    assert np.abs(np.load(tmp_path / "teach" / "model.npz")["h.w"]).sum() > 0  # previous-step credit learned
    # demonstrating: Z held with 4 drops the piece turned once in column 4 (action 13)
    z, four = pygame.K_z, pygame.K_4
    script = {5: [(z, False), (four, False)], 60: [(four, True), (z, True)]}
    live = LiveConfig(fps=0, demonstrate=True)
    summary = live_session(tmp_path / "demo", Config(env="tamer/Tetris-v0", step_rate=5.0), live, 60, script)
    from tamer.live import read_steps

    steps = read_steps(tmp_path / "demo" / "steps.csv", gym.make("tamer/Tetris-v0").observation_space)
    assert steps and {s.action for s in steps} == {13}
