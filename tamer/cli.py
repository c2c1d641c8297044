"""The ``tamer`` command. Bad input ends with one line on stderr and exit code 2, never a traceback."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path

import numpy as np

from tamer.config import Config, add_config_arguments, config_from_args
from tamer.errors import ConfigError

COMMAND_MODULES: tuple[str, ...] = ("tamer.sweep", "tamer.live")


class Parser(argparse.ArgumentParser):
    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def fail(message: str) -> int:
    print(f"tamer: error: {message}", file=sys.stderr)
    return 2


def cmd_train(args) -> int:
    from tamer.train import train

    cfg = config_from_args(args, Config.load(Path(args.config)) if args.config else None)
    rows = train(cfg, Path(args.out) if args.out else None, overwrite=args.overwrite, progress=not args.quiet)
    returns = [r["return"] for r in rows]
    last = returns[-min(5, len(returns)) :]
    print(
        f"{cfg.agent} on {cfg.env}, seed {cfg.seed}: mean return over the last {len(last)} episodes "
        f"{np.mean(last):.1f}; feedback given {sum(r['feedback'] for r in rows)}"
        + (f"; run saved in {args.out}" if args.out else "")
    )
    return 0


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

    mean, std = evaluate_oracle(args.env, args.episodes, args.seed, args.oracle, args.oracle_margin)
    name = f"oracle {args.oracle}" if args.oracle else "oracle"
    print(f"{name} on {args.env}: mean return {mean:.1f} ± {std:.1f} over {args.episodes} episodes")
    return 0


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
    add_config_arguments(p)
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

    for name in COMMAND_MODULES:  # each adds its own subcommands; heavy imports stay inside the commands
        module = importlib.import_module(name)
        module.add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
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


if __name__ == "__main__":
    sys.exit(main())
