"""The ``tamer`` command. Bad input ends with one line on stderr and exit code 2, never a traceback.

Every command is in this package: ``train``, ``eval``, ``oracle``, ``play`` and ``replay`` here, the
experiment commands (``sweep``, ``results``, ``plot``, ``compare``) in ``tamer.cli.experiments``; each module
of ``COMMAND_MODULES`` adds its subcommands with ``add_commands(sub)``. ``main`` alone turns errors into one
line and sets up ``logging``, through which the library modules warn (``tamer: message`` on stderr).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import re
import sys
import time
from pathlib import Path

import numpy as np

from tamer.callbacks import Callback
from tamer.config import Config
from tamer.errors import ConfigError
from tamer.settings import add_config_arguments, config_from_args

COMMAND_MODULES: tuple[str, ...] = ("tamer.cli.experiments",)


class Parser(argparse.ArgumentParser):
    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def folder_safe(env_id: str) -> str:
    """An env id as part of a session folder's name: its arguments' quotes, spaces and slashes as '-'."""
    return re.sub(r"[^A-Za-z0-9._=,()-]+", "-", env_id).strip("-")


def fail(message: str) -> int:
    print(f"tamer: error: {message}", file=sys.stderr)
    return 2


def refuse_unused_blend(args, cfg: Config) -> None:
    """A --blend given with --agent tamer or rl would be ignored, yet saved in config.json (and shown by
    plots grouped by blend): refused. The default blend, which every config carries, is not."""
    if getattr(args, "blend", None) is not None and cfg.agent != "tamer+rl":
        raise ConfigError(
            f"--blend applies only to --agent tamer+rl; --agent {cfg.agent} would ignore --blend "
            f"{args.blend} (drop it, or use --agent tamer+rl)"
        )
    if cfg.agent == "rankings" and getattr(args, "rl", None) not in (None, "ppo"):
        raise ConfigError(f"--agent rankings trains PPO on its learned reward; drop --rl {args.rl}")


class SaysNothingIsSaved(Callback):
    """``tamer train`` without --out: one line once the run has started (bad input is its own one line)."""

    def on_run_start(self, s) -> None:
        logging.getLogger("tamer.cli").warning("no --out given: nothing of this run is saved (see --out)")


def cmd_train(args) -> int:
    from tamer.train import train

    cfg = config_from_args(args, Config, Config.load(Path(args.config)) if args.config else None)
    refuse_unused_blend(args, cfg)
    rows = train(
        cfg,
        Path(args.out) if args.out else None,
        overwrite=args.overwrite,
        progress=not args.quiet,
        callbacks=[] if args.out else [SaysNothingIsSaved()],
    )
    returns = [r["return"] for r in rows]
    last = returns[-min(5, len(returns)) :]
    print(
        f"{cfg.agent} on {cfg.env}, seed {cfg.seed}: mean return over the last {len(last)} episodes "
        f"{np.mean(last):.1f}; feedback given {sum(r['feedback'] for r in rows)}"
        + (ranked(rows) if cfg.agent == "rankings" else "")
        + (f"; run saved in {args.out}" if args.out else "")
    )
    return 0


def ranked(rows: list[dict]) -> str:
    """The human effort of a rankings run, for its summary line."""
    total = {k: sum(r.get(k, 0) for r in rows) for k in ("rankings", "pairs", "human_seconds")}
    pairs, rankings, seconds = total["pairs"], total["rankings"], total["human_seconds"]
    return f"; {pairs:.0f} pairs in {rankings:.0f} rankings, {seconds:.0f} human s"


def cmd_eval(args) -> int:
    from tamer.train import evaluate

    run = Path(args.run_dir)
    if not (run / "config.json").exists():
        return fail(f"{run} is not a run folder (no config.json)")
    returns = evaluate(run, args.episodes, args.seed)
    print(f"{run}: greedy return over {len(returns)} episodes {np.mean(returns):.1f} ± {np.std(returns):.1f}")
    return 0


def cmd_oracle(args) -> int:
    from tamer.oracles import evaluate_oracle

    if args.seed < 0:
        return fail(f"--seed must be >= 0, got {args.seed}")
    if not 0 <= args.oracle_margin <= 1:  # NaN too
        return fail(f"--oracle-margin must be in [0, 1], got {args.oracle_margin}")
    mean, std = evaluate_oracle(args.env, args.episodes, args.seed, args.oracle, args.oracle_margin)
    name = f"oracle {args.oracle}" if args.oracle else "oracle"
    print(f"{name} on {args.env}: mean return {mean:.1f} ± {std:.1f} over {args.episodes} episodes")
    return 0


def cmd_play(args) -> int:
    import dataclasses
    import time

    from tamer.live import LiveConfig, SessionFolder, play

    if args.resume:
        folder = SessionFolder.existing(Path(args.resume))
        changed = [
            "--" + f.name.replace("_", "-")
            for f in dataclasses.fields(Config)
            if getattr(args, f.name, None) is not None and f.name != "step_rate"
        ]
        if changed or args.config or args.out:
            given = ", ".join(changed + ["--config"] * bool(args.config) + ["--out"] * bool(args.out))
            raise ConfigError(
                f"--resume continues {args.resume} with its own config (one config per session, "
                f"so replay can reproduce it); drop {given}"
            )
        cfg = config_from_args(args, Config, Config.load(folder.config))
        saved_live = LiveConfig.load(folder.live) if folder.live.is_file() else None
        live = config_from_args(args, LiveConfig, saved_live)
        path = folder.path
    else:
        cfg = config_from_args(args, Config, Config.load(Path(args.config)) if args.config else None)
        live = config_from_args(args, LiveConfig)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        path = Path(args.out) if args.out else Path("sessions") / f"{stamp}-{folder_safe(cfg.env)}"
        refuse_unused_blend(args, cfg)
    summary = play(path, cfg, live, resume=bool(args.resume), overwrite=args.overwrite)
    done, then = f"{summary.steps} steps, {summary.feedback} keypresses", "check with"
    if summary.demonstrate:
        done, then = f"{summary.steps} steps demonstrated", "train the cloned policy with"
    print(
        f"session {path}: {done}, {summary.episodes} episodes ended this run; continue with "
        f"`tamer play --resume {path}`, {then} `tamer replay {path}`"
    )
    return 0


def cmd_rank(args) -> int:
    from tamer.live.rank import rank
    from tamer.live.rank_session import RankConfig, RankFolder

    if args.replay:
        return replay_ranking_session(args.replay, args.out)
    config_flags = {f: getattr(args, f) for f in ("env", "seed", "max_steps", "step_rate")}
    if args.resume:
        folder = RankFolder.existing(Path(args.resume))
        given = [
            f"--{f.replace('_', '-')}" for f, v in config_flags.items() if v is not None and f != "step_rate"
        ]
        given += ["--config"] * bool(args.config) + ["--out"] * bool(args.out)
        if given:
            raise ConfigError(
                f"--resume continues {args.resume} with its own config; drop {', '.join(given)}"
            )
        cfg = Config.load(folder.config)
        rank_cfg = config_from_args(args, RankConfig, RankConfig.load(folder.live))
        path = folder.path
    else:
        rank_cfg = config_from_args(args, RankConfig)
        if rank_cfg.policy:  # the run's config: its env, seed and features
            if args.config:
                raise ConfigError("--policy brings its run's config; drop --config")
            if not (Path(rank_cfg.policy) / "config.json").is_file():
                raise ConfigError(f"--policy {rank_cfg.policy} is not a run folder (no config.json)")
            base = Config.load(Path(rank_cfg.policy) / "config.json")
        else:
            base = Config.load(Path(args.config)) if args.config else Config()
        if args.env is not None and rank_cfg.policy and args.env != base.env:
            raise ConfigError(
                f"--policy {rank_cfg.policy} acts in {base.env}, not --env {args.env}; drop --env"
            )
        cfg = Config(**{**base.to_dict(), **{f: v for f, v in config_flags.items() if v is not None}})
        stamp = time.strftime("%Y%m%d-%H%M%S")
        path = Path(args.out) if args.out else Path("sessions") / f"{stamp}-rank-{folder_safe(cfg.env)}"
    if args.resume and args.step_rate is not None:
        cfg = Config(**{**cfg.to_dict(), "step_rate": args.step_rate})  # the playback pace, this run
    summary = rank(path, cfg, rank_cfg, resume=bool(args.resume), overwrite=args.overwrite)
    print(
        f"session {path}: {summary.answered} answers this run ({summary.skipped} skipped), "
        f"{summary.logged} of {summary.queries} in the session; continue with `tamer rank --resume {path}` "
        f"(--queries N for more), train the reward model with `tamer replay {path}`"
    )
    return 0


def replay_ranking_session(session: str, out: str | None) -> int:
    from tamer.live.rank_session import replay_rankings

    report = replay_rankings(Path(session))
    print(report.summary(session))
    if out:
        report.save_model(Path(out))
        print(f"  reward model written to {out}")
    return 0


def cmd_replay(args) -> int:
    import contextlib

    from tamer.live import SessionFolder, replay_demonstrations, replay_session
    from tamer.live.rank_session import is_ranking_session

    if is_ranking_session(Path(args.session)):  # tamer rank: retrain the reward model
        return replay_ranking_session(args.session, args.out)
    if SessionFolder.existing(Path(args.session)).demonstration():  # tamer play --demonstrate
        demo = replay_demonstrations(Path(args.session))
        print(demo.summary(args.session))
        if args.out:
            demo.save_policy(Path(args.out))
            print(f"  policy weights written to {args.out}")
        return 0
    folder = SessionFolder.existing(Path(args.session))
    with folder.claim(resume=True) if args.out else contextlib.nullcontext():  # nobody plays it meanwhile
        return report_replay(args, replay_session(folder.path))


def report_replay(args, report) -> int:
    from tamer.live.replay import save_replayed

    print(
        f"replayed {args.session}: {report.steps} steps in {report.episodes} episodes, {report.runs} run(s), "
        f"{report.feedback} keypresses handed to the agent"
    )
    if report.late:
        print(
            f"  {report.late} of them pressed during a step that never ended (a crash), taught when the "
            "session resumed"
        )
    if report.orphans:
        print(
            f"  {report.orphans} keypress(es) logged during a step that never ended (the session stopped on "
            "an error): not given to the agent yet; `tamer play --resume` teaches them"
        )
    if report.steps:
        same = f"{report.same_actions} of {report.steps}"
        print(f"  the replayed agent chose the logged action at {same} steps")
    repair = f"`tamer replay {args.session} --out {Path(args.session) / 'model.npz'}`"
    if report.diffs is None and report.model_note:
        print(f"  model.npz cannot be compared: {report.model_note}; rebuild it with {repair}")
    elif report.diffs is None:
        print("  no model.npz to compare with")
    else:
        if report.model_note:
            print(f"  note: {report.model_note}")
        h = report.h_diff
        if h is not None:
            verdict = "matches model.npz exactly" if h == 0.0 else "differs from model.npz"
            print(f"  Ĥ {verdict} (max |difference| {h:.3g})")
        others = {k: d for k, d in report.diffs.items() if k != "h"}
        differing = [k for k, d in others.items() if d != 0.0]
        if others:
            rest = "exact" if not differing else "differs in " + ", ".join(differing)
            print(f"  rest of the saved agent ({', '.join(others)}): {rest}")
        if report.checkpoint_step is not None and report.checkpoint_step != report.last_step:
            print(
                f"  note: model.npz covers step {report.checkpoint_step} but the log goes to step "
                f"{report.last_step} (the session was killed before it could save); rebuild it with {repair}"
            )
    if args.out:
        save_replayed(report, Path(args.session), Path(args.out))  # into model.npz: a repair resume uses
        print(f"  replayed model written to {args.out}")
    return 0 if report.exact else 1


RANK_KEYS_HELP = """\
keys: the attempts are labelled 1..K on screen; press their numbers best first (2 1 3: attempt 2 best, then
1, then 3; the log holds 0-based indices, "1>0>2"). = between two numbers ties them; the K-th number or
Enter submits (Enter puts the ones not typed last, tied); Backspace undoes the last key; Space skips the
query; P pauses the playback; Esc quits (every answer is already saved). K = 2: Left / Right (left / right
better) and = alone (a tie) submit at once."""


def make_parser() -> Parser:
    parser = Parser(prog="tamer", description="Interactive RL from human reward: TAMER and TAMER+RL.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    p = sub.add_parser(
        "train",
        help="Train headless with a simulated teacher or a replayed log.",
        description="Train headless. Every config field is a flag; a run folder gets "
        "config.json, metrics.csv, feedback.csv and model.npz.",
    )
    p.add_argument("--config", help="Start from this config.json (flags given override it).")
    p.add_argument("--out", help="Run folder to write (refused if it holds files, unless --overwrite).")
    p.add_argument("--overwrite", action="store_true", help="Replace what --out holds.")
    p.add_argument("--quiet", action="store_true", help="No progress bar.")
    add_config_arguments(p, Config)
    p.set_defaults(run=cmd_train)

    p = sub.add_parser("eval", help="Run a saved run's model greedily, without learning.")
    p.add_argument("run_dir", metavar="RUN", help="Run folder written by tamer train.")
    p.add_argument("--episodes", type=int, default=10, help="Episodes to run (default: 10).")
    p.add_argument("--seed", type=int, default=None, help="Env seed (default: the run's own).")
    p.set_defaults(run=cmd_eval)

    p = sub.add_parser("oracle", help="Mean return of the simulated teacher's oracle policy.")
    p.add_argument("--env", default="MountainCar-v0", help="Environment id (default: MountainCar-v0).")
    p.add_argument("--episodes", type=int, default=20, help="Episodes (default: 20).")
    p.add_argument("--seed", type=int, default=0, help="First seed (default: 0).")
    p.add_argument(
        "--oracle",
        default="",
        help="Which oracle: run:PATH, reward, package.module:function (default: the env's built-in one).",
    )
    p.add_argument(
        "--oracle-margin",
        type=float,
        default=Config.oracle_margin,
        help=f"run:PATH only: approve actions within this fraction of the value spread of the best "
        f"(default: {Config.oracle_margin}).",
    )
    p.set_defaults(run=cmd_oracle)

    from tamer.live.keys import LiveConfig, keys_help  # no pygame: play imports it when it runs

    p = sub.add_parser(
        "play",
        help="Teach live: watch the agent in a window and press keys to reward it.",
        description="Teach an agent live. The window shows the environment, Ĥ(s, a) of every action (and Q "
        "and β for tamer+rl) and your feedback; every keypress, step and checkpoint goes to the session "
        "folder as it happens. Every config field is a flag (the simulated teacher's are unused: you are "
        "the teacher). --step-rate sets the agent's pace.",
        epilog=keys_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--out", help="Session folder to create (default: sessions/<date>-<time>-<env>).")
    p.add_argument("--overwrite", action="store_true", help="Replace what --out holds.")
    p.add_argument(
        "--resume", metavar="SESSION", help="Continue this session (its config; live flags apply)."
    )
    p.add_argument("--config", help="Start from this config.json (flags given override it).")
    add_config_arguments(p, Config)
    add_config_arguments(p, LiveConfig)
    p.set_defaults(run=cmd_play)

    p = sub.add_parser(
        "replay",
        help="Retrain a play session offline from its logs and check that it reproduces the saved Ĥ (a "
        "--demonstrate session: train its behaviour-cloning policy).",
        description="Rebuild the agent of a `tamer play` session from its config, steps and feedback logs, "
        "making the same updates in the same order as live, and compare it with the saved model.npz. Exit "
        "code 0 when Ĥ matches exactly, 1 otherwise.",
    )
    p.add_argument("session", help="Session folder written by tamer play (or tamer rank).")
    p.add_argument("--out", help="Also write the replayed model to this .npz file.")
    p.set_defaults(run=cmd_replay)

    from tamer.live.rank_session import RankConfig

    p = sub.add_parser(
        "rank",
        help="Rank attempts live: watch K attempts side by side and order them with the number keys.",
        description="A window plays the K attempts of each query side by side (a saved run's agent with "
        "--policy, else random actions, from one shared start); you rank them best to worst. Every ranking "
        "and the attempts it ranks go to the session folder as they are given; `tamer replay SESSION` (or "
        "--replay) trains the reward model from them.",
        epilog=RANK_KEYS_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--out",
        help="Session folder to create (default: sessions/<date>-<time>-rank-<env>); "
        "with --replay, the .npz file to write the reward model to.",
    )
    p.add_argument("--overwrite", action="store_true", help="Replace what --out holds.")
    p.add_argument("--resume", metavar="SESSION", help="Continue this ranking session (query ids go on).")
    p.add_argument(
        "--replay", metavar="SESSION", help="Retrain the reward model from this session's rankings."
    )
    p.add_argument("--config", help="Start from this config.json (without --policy).")
    p.add_argument(
        "--env", default=None, help="Environment id (default: MountainCar-v0, or the policy run's)."
    )
    p.add_argument("--seed", type=int, default=None, help="Seed of the attempts and the reward model.")
    p.add_argument("--max-steps", type=int, default=None, help="Episode step limit (0: the env's own).")
    p.add_argument(
        "--step-rate", type=float, default=None, help="Playback steps/s (default: the env's teaching pace)."
    )
    add_config_arguments(p, RankConfig)
    p.set_defaults(run=cmd_rank)

    for name in COMMAND_MODULES:  # each adds its own subcommands; heavy imports stay inside the commands
        module = importlib.import_module(name)
        module.add_commands(sub)
    return parser


class StderrHandler(logging.StreamHandler):
    """Writes to ``sys.stderr`` as it is when a record comes (not as it was when the handler was made), so
    a redirected or captured stderr gets the messages."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


def setup_logging(level: int = logging.WARNING) -> None:
    """Library modules log to ``logging.getLogger(__name__)``; the user sees ``tamer: message`` on stderr.
    Idempotent: calling ``main`` again (tests do) adds no second handler."""
    logger = logging.getLogger("tamer")
    if not any(isinstance(h, StderrHandler) for h in logger.handlers):
        handler = StderrHandler()
        handler.setFormatter(logging.Formatter("tamer: %(message)s"))
        logger.addHandler(handler)
    logger.setLevel(level)


def main(argv: list[str] | None = None) -> int:
    setup_logging()
    args = make_parser().parse_args(argv)
    for name in ("episodes", "seeds"):
        if isinstance(getattr(args, name, None), int) and getattr(args, name) < 1:
            return fail(f"--{name} must be >= 1, got {getattr(args, name)}")
    try:
        return args.run(args)
    except ConfigError as e:
        return fail(str(e))
    except KeyboardInterrupt:
        print("tamer: interrupted; what was written so far is kept", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into e.g. `head`, which stopped reading
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (nothing to flush into the closed pipe at exit)
        return 0
