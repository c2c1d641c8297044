"""Every figure of the README's benchmark table in one run, with the machine it ran on.

    python benchmarks/all.py [--repeats 3] [--skip sweep,live,dqn,ppo,scaling]

Prints the core count and the versions of Python, numpy, torch, gymnasium (and Stable-Baselines3, pygame),
then, each measured side by side with its reference in this run (the machines are shared and noisy: only a
ratio measured in one run means anything):

- ``steps_per_second``: headless env steps/s of TAMER, TAMER+RL (action biasing, control sharing) and
  Sarsa(λ) on Mountain Car, as a ratio to the raw env;
- ``sweep_scaling``: sweep throughput with 2 workers / 1 worker;
- ``live_latency``: live frame work (median, p99) with learning on, and the Ĥ update per keypress (SDL's
  dummy driver when there is no display);
- ``dqn_speed`` and ``ppo_speed``: our DQN and PPO env steps/s while learning / Stable-Baselines3's, only
  when stable-baselines3 is installed (``make bench``), said so otherwise;
- ``scaling`` (short): per-step cost at 60 steps/s with a 4 s credit window, per-step cost with 262,088
  features, and one checkpoint of a DQN with 50,000 image rows in its replay buffer.

About 4 minutes on 2 busy cores with everything (Stable-Baselines3 installed); ``--skip`` leaves parts out.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def versions() -> str:
    import gymnasium
    import numpy

    parts = [f"python {platform.python_version()}", f"numpy {numpy.__version__}"]
    for module in ("torch", "gymnasium", "stable_baselines3", "pygame"):
        if importlib.util.find_spec(module) is None:
            parts.append(f"{module} not installed")
            continue
        if module == "gymnasium":
            parts.append(f"gymnasium {gymnasium.__version__}")
        else:
            mod = __import__(module)
            parts.append(f"{module.replace('_', '-')} {getattr(mod, '__version__', '?')}")
    return ", ".join(parts)


def cores() -> str:
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return f"{os.cpu_count()} cores ({usable} usable), load average {load:.1f}, {platform.machine()}"


def steps_per_second(repeats: int, steps: int) -> None:
    from steps_per_second import measure

    from tamer.config import Config

    env = "MountainCar-v0"
    agents = {
        "TAMER (target 0.5)": Config(env=env, agent="tamer"),
        "TAMER+RL, action biasing (0.35)": Config(env=env, agent="tamer+rl", blend="action_biasing"),
        "TAMER+RL, control sharing (0.35)": Config(env=env, agent="tamer+rl", blend="control_sharing"),
        "Sarsa(λ)": Config(env=env, agent="rl"),
    }
    wall, cpu, raw_all = measure(env, agents, steps, repeats)
    raw = statistics.median(raw_all)
    print(
        f"steps_per_second: env steps/s / raw env ({raw:,.0f} steps/s), median of {repeats}, and by CPU time"
    )
    for name in agents:
        runs = ", ".join(f"{v:.2f}" for v in wall[name])
        r, c = statistics.median(wall[name]), statistics.median(cpu[name])
        print(f"  {name:33s} {r:.2f}  CPU {c:.2f}  ({runs})")


def sweep(repeats: int) -> None:
    from sweep_scaling import throughput

    experiment = HERE.parent / "experiments" / "mountaincar_blends.toml"
    ratios = []
    for _ in range(repeats):
        one, n = throughput(experiment, 2, 50, 1)
        two, _ = throughput(experiment, 2, 50, 2)
        ratios.append(two / one)
    print(f"sweep_scaling: throughput 2 workers / 1 worker ({n} runs): {statistics.median(ratios):.2f}")


def live(seconds: float) -> None:
    import numpy as np
    from live_latency import h_update_cost, live_session

    from tamer.config import Config
    from tamer.live import LiveConfig

    video = os.environ.get("SDL_VIDEODRIVER") or "x11"
    for env, model in (("MountainCar-v0", "linear"), ("CartPole-v1", "mlp")):
        cfg = Config(env=env, agent="tamer", model=model)
        summary = live_session(cfg, LiveConfig(), seconds, 2.0, 0)
        work = np.asarray(summary.frame_work[1:]) * 1e3
        update, _ = h_update_cost(cfg, 600)
        print(
            f"live_latency ({env}, {model} Ĥ, video {video}): frame work median {np.median(work):.2f} ms, "
            f"p99 {np.percentile(work, 99):.2f} ms (budget 16.7); "
            f"Ĥ update {np.median(update) * 1e3:.2f} ms per keypress"
        )


def sb3(repeats: int, steps: int, which: tuple[str, ...]) -> None:
    if importlib.util.find_spec("stable_baselines3") is None:
        print("dqn_speed, ppo_speed: skipped, stable-baselines3 is not installed (make bench installs it)")
        return
    import torch

    torch.set_num_threads(1)
    for name in which:
        module = __import__(f"{name}_speed")
        ratios = []
        for i in range(repeats):
            ref = module.reference(i, steps)[0]
            our = module.ours(i, steps)[0]
            ratios.append(our / ref)
        print(
            f"{name}_speed: {name.upper()} env steps/s while learning / Stable-Baselines3's: "
            f"{statistics.median(ratios):.2f} ({', '.join(f'{r:.2f}' for r in ratios)}; {steps:,} steps each)"
        )


def scaling(steps: int) -> None:
    import numpy as np
    from scaling import fill, per_step, save_ms

    from tamer.config import Config
    from tamer.session import build

    env = "MountainCar-v0"
    short, _ = per_step(Config(env=env, agent="tamer", step_rate=60.0), steps)
    wide, _ = per_step(Config(env=env, agent="tamer", step_rate=60.0, delay_max=4.2), steps)
    print(f"scaling: TAMER at 60 steps/s, credit window 0.6 s {short:.0f} us/step, 4 s {wide:.0f} us/step")
    small, _ = per_step(Config(env=env, agent="tamer+rl", blend="action_biasing"), steps)
    big, _ = per_step(Config(env=env, agent="tamer+rl", blend="action_biasing", bins=180), steps)
    print(f"scaling: TAMER+RL with 648 features {small:.0f} us/step, with 262,088 {big:.0f} us/step")
    s = build(Config(env="tamer/GridWorldPixels-v0", agent="rl", rl="dqn"))
    rng = np.random.default_rng(0)
    fill(s.agent.rl.buffer, 50_000, rng)
    ms, written = save_ms(s.agent, between=lambda: fill(s.agent.rl.buffer, 200, rng))
    s.env.close()
    print(f"scaling: DQN checkpoint, 50,000 image rows, 200 new: {ms:.0f} ms, {written / 1e6:.1f} MB written")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=3, help="repeats of each ratio (median printed)")
    parser.add_argument("--steps", type=int, default=20_000, help="env steps per steps/s measurement")
    parser.add_argument("--live-seconds", type=float, default=10.0)
    parser.add_argument("--skip", default="", help="comma-separated: steps,sweep,live,dqn,ppo,scaling")
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    os.chdir(HERE.parent)
    print(cores())
    print(versions())
    print("GPU: no figure here (everything below runs on the CPU); see the README's benchmark notes")
    started = time.perf_counter()
    if "steps" not in skip:
        steps_per_second(args.repeats, args.steps)
    if "sweep" not in skip:
        sweep(max(1, args.repeats - 1))
    if "live" not in skip:
        live(args.live_seconds)
    wanted = tuple(name for name in ("dqn", "ppo") if name not in skip)
    if wanted:
        sb3(args.repeats, args.steps, wanted)
    if "scaling" not in skip:
        scaling(6000)
    print(f"({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
