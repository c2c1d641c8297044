"""Our rankings pipeline (rankings -> reward model -> PPO, ``--agent rankings``) against imitation's
preference comparisons on CartPole-v1: the same pair budget, the same env-step budget and the same seeds, in
the same run.

    make bench-imitation                                      # 3 seeds, a quick run
    python benchmarks/rankings_vs_imitation.py --seeds 10     # the acceptance numbers
    python benchmarks/rankings_vs_imitation.py [--pairs 480] [--env-steps 150000] [--fragments episode]
                                               [--side both|imitation|ours] [--timeout 1800] [--out DIR]

imitation 1.0.1 pins gymnasium ~=0.29 and stable-baselines3 ~=2.2.1, so it runs in its own virtualenv,
``.venv-imitation``, made here on first use (``python -m venv``, then ``pip install -c constraints.txt
imitation==1.0.1 'numpy<2'``: the constraints keep the local CPU torch wheel, and without the numpy cap pip
takes numpy 2, which gymnasium 0.29 does not run on). Each seed runs imitation first, as a subprocess
(``benchmarks/imitation_side.py``, whose docstring holds its settings), then ours in this process, so both
see the same load. imitation's failures (an exception, a killed process, a run past ``--timeout``) are
reported per seed and counted, not fatal.

The same simulated person on both sides: prefers the attempt with the higher true return, says two are
equal when their returns are (ours: within 1.5), and answers at random 10% of the time
(experiments/rankings_cartpole.py's person; imitation's SyntheticGatherer at temperature 0 with
``--error``). Each side learns with its own design: ours is rankings_cartpole.py's, imitation's its
tutorial's (``--fragments``).

Printed per seed and in summary, for both: the final policy's mean return over ``--eval-episodes`` greedy
episodes (the same protocol and reset seeds for both: ``imitation_side.evaluate``), the training wall time
(setup and training, not evaluation, not imitation's interpreter start and imports; process CPU time
beside it, as the machines are shared and CPU time is what other load disturbs least), the pairs used and
the env steps taken (evaluation not counted). Verdict (``verdict``), over the seeds on which imitation
finished: PASS when ours reaches a higher return (the 95% bootstrap CI of the per-seed difference above 0)
in less mean wall time, TIE when it is faster and the returns are not distinguishable, FAIL otherwise; a
failed seed of ours fails it. Both run
with one torch thread. Results are also written to ``--out``/results.json, imitation's logs beside them.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tamer.callbacks import Callback
from tamer.io import write_json_atomic

sys.path.insert(0, str(Path(__file__).resolve().parent))
from imitation_side import EVAL_EPISODES, NOT_SEEDED, TUTORIAL, eval_seeds, evaluate  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "experiments"))
from rankings_cartpole import BASE  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv-imitation"
PYTHON = VENV / "bin" / "python"
STAMP = VENV / ".installed"
REQUIREMENTS = ["imitation==1.0.1", "numpy<2"]


def ensure_venv() -> Path:
    """``.venv-imitation``'s python, the virtualenv made first if it is missing or was made for other pins."""
    wanted = "\n".join(REQUIREMENTS) + "\n"
    if STAMP.exists() and STAMP.read_text() == wanted:
        return PYTHON
    print(f"making {VENV.name} ({' '.join(REQUIREMENTS)}, -c constraints.txt); a few minutes", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    subprocess.run(
        [str(PYTHON), "-m", "pip", "install", "--quiet", "-c", str(ROOT / "constraints.txt"), *REQUIREMENTS],
        check=True,
    )
    STAMP.write_text(wanted)
    return PYTHON


def imitation(seed: int, args: argparse.Namespace) -> dict[str, Any]:
    """One seed of imitation's preference comparisons in its own process; a failure is a result."""
    result_path = args.out / f"imitation-seed{seed}.json"
    log_path = args.out / f"imitation-seed{seed}.log"
    result_path.unlink(missing_ok=True)
    command = [
        str(ensure_venv()),
        str(Path(__file__).resolve().parent / "imitation_side.py"),
        f"--seed={seed}",
        f"--pairs={args.pairs}",
        f"--env-steps={args.env_steps}",
        f"--fragments={args.fragments}",
        f"--fragment-length={args.fragment_length}",
        f"--eval-episodes={args.eval_episodes}",
        f"--error={ERROR}",
        "--temperature=0",
        f"--result={result_path}",
        f"--log-dir={args.out / f'imitation-seed{seed}'}",
    ]
    env = {**os.environ, "TQDM_DISABLE": "1", "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    env.pop("PYTHONPATH", None)  # nothing of our virtualenv leaks into imitation's
    started = time.perf_counter()
    with open(log_path, "w") as log:
        try:
            rc = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, env=env, timeout=args.timeout)
            failure = None if rc.returncode == 0 else f"process exited with {rc.returncode}"
        except subprocess.TimeoutExpired:
            failure = f"timed out after {args.timeout} s"
    elapsed = time.perf_counter() - started
    if result_path.exists():
        result = json.loads(result_path.read_text())
    else:
        result = {"side": "imitation", "seed": seed, "status": "crashed", "pairs": None, "env_steps": None}
    if failure and result.get("status") == "ok":
        result["status"] = "crashed"
    if failure:
        result["error"] = failure + (f"; {result['error']}" if result.get("error") else "")
        result["status"] = "timeout" if "timed out" in failure else result["status"]
    if result.get("status") != "ok":
        tail = log_path.read_text(errors="replace").strip().splitlines()[-3:]
        result.setdefault("error", " | ".join(tail) or "no output")
        result.setdefault("wall_s", elapsed)
    result["process_s"] = elapsed
    result["log"] = str(log_path)
    return result


# Our side: experiments/rankings_cartpole.py's acceptance design, unchanged (K = 2 attempts per query, each a
# 25-step window of an episode PPO played since the last round; 10 rounds with round r's share of the pairs
# ∝ 1/(1 + r); an MLP r̂(s); PPO on r̂ alone), with ``--pairs`` pairs and PPO's env steps capped by what the
# budget leaves. Its person is imitation side's (temperature 0): ranks exactly by the true return, at random
# ``ERROR`` of the time (``imitation_side.py --error``); ours also records a tie below 1.5 apart (imitation's
# whole episodes rarely tie). Windows come from PPO's own episodes (rank_start="rollouts"), so only round 0's
# attempts cost env steps beyond PPO's: ``ppo_budget`` leaves them their share of the env-step budget.
OURS: dict[str, Any] = dict(BASE)
ERROR = OURS["ranker_error"]
MAX_RETURN = 500.0  # CartPole-v1's: every episode is cut at 500 steps


def ppo_budget(env_steps: int) -> int:
    """PPO's share of the env-step budget: round 0 plays about one round's share of PPO's steps for its
    attempts (``RolloutAttempts``' warmup: ppo_steps / rounds, in whole episodes) and PPO counts whole
    rollouts, so P + P / rounds, with 1,000 steps of margin for the last episode and rollout, fits."""
    rounds = OURS["rank_rounds"]
    return int(env_steps * rounds / (rounds + 1)) - 1000


def our_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The design's, with ``--pairs`` and PPO's env steps: ``--our-ppo-steps`` (0: the design's 80,000), at
    most what the budget leaves after round 0's attempts."""
    wanted = args.our_ppo_steps or OURS["ppo_steps"]
    return {
        **OURS,
        "rank_pairs": args.pairs,
        "ppo_steps": min(wanted, ppo_budget(args.env_steps)),
    }


class KeepAgent(Callback):
    """Keeps the session's PPO, its env steps and the pairs ranked when the run ends."""

    ppo: Any = None
    steps = 0
    pairs = 0.0

    def on_run_end(self, s) -> None:
        self.ppo, self.steps, self.pairs = s.agent.rl, s.steps, s.effort.get("pairs", 0.0)


def ours(seed: int, args: argparse.Namespace) -> dict[str, Any]:
    """One seed of our pipeline with the same budgets, timed and evaluated as imitation's side is: ``train``
    timed with ``time.perf_counter`` and ``time.process_time`` (setup included, evaluation not), pairs and
    env steps (PPO's from the session, the attempts' from the run's rounds.csv), then the greedy final
    policy on ``imitation_side.evaluate``'s protocol."""
    import csv
    import tempfile

    import gymnasium as gym
    import numpy as np

    from tamer.config import Config
    from tamer.train import train

    cfg = Config.from_dict({**our_settings(args), "seed": seed})
    keep = KeepAgent()
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        started, cpu = time.perf_counter(), time.process_time()
        train(cfg, run, progress=False, callbacks=[keep])
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
        with open(run / "rounds.csv", newline="") as f:
            rounds = list(csv.DictReader(f))
    last = rounds[-1]
    ppo = keep.ppo

    def greedy(obs) -> int:
        return int(np.argmax(ppo.log_probs(np.asarray(ppo.encoder(obs))[None])[0]))

    env = gym.make("CartPole-v1")
    returns = evaluate(env, greedy, eval_seeds(seed, args.eval_episodes))
    env.close()
    return {
        "side": "ours",
        "seed": seed,
        "status": "ok",
        "mean_return": float(np.mean(returns)),
        "eval_returns": returns,
        "wall_s": wall,
        "cpu_s": cpu,
        "pairs": int(keep.pairs),
        "env_steps": keep.steps + int(float(last["attempt_steps"])),
        "ppo_steps": keep.steps,
        "attempt_steps": int(float(last["attempt_steps"])),
        "val_accuracy": last.get("val_accuracy"),
        "settings": our_settings(args),
    }


def run_ours(seed: int, args: argparse.Namespace) -> dict[str, Any]:
    import torch

    torch.set_num_threads(1)
    try:
        return ours(seed, args)
    except NotImplementedError as e:
        return {"side": "ours", "seed": seed, "status": "pending", "error": str(e)}
    except Exception as e:  # reported like imitation's, and it fails the verdict
        return {"side": "ours", "seed": seed, "status": "crashed", "error": f"{type(e).__name__}: {e}"}


def describe(r: dict[str, Any] | None, args: argparse.Namespace) -> str:
    if r is None:
        return "not run"
    if r.get("status") == "pending":
        return f"pending ({r.get('error', '')})"
    if r.get("status") != "ok":
        where = f" in {r['stage']}" if r.get("stage") else ""
        return (
            f"{r['status'].upper()}{where} after {r.get('wall_s', 0):.0f} s, {r.get('pairs')} pairs, "
            f"{r.get('env_steps')} steps: {r.get('error', '')}"
        )
    over = " OVER BUDGET" if over_budget(r, args) else ""
    return (
        f"{r['mean_return']:6.1f} in {r['wall_s']:6.1f} s ({r.get('cpu_s', float('nan')):.1f} CPU s; "
        f"{r['pairs']} pairs, {r['env_steps']:,} env steps){over}"
    )


def over_budget(r: dict[str, Any], args: argparse.Namespace) -> bool:
    return (r.get("pairs") or 0) > args.pairs or (r.get("env_steps") or 0) > args.env_steps


def summary(name: str, runs: list[dict[str, Any]]) -> tuple[float | None, float | None]:
    ok = [r for r in runs if r.get("status") == "ok"]
    failed = [r for r in runs if r.get("status") not in ("ok", "pending")]
    if not ok:
        print(f"{name:>9}: no finished run ({len(failed)} failed of {len(runs)})")
        return None, None
    returns = [r["mean_return"] for r in ok]
    walls = [r["wall_s"] for r in ok]
    cpus = [r.get("cpu_s", float("nan")) for r in ok]
    spread = f" ± {statistics.stdev(returns):.1f}" if len(returns) > 1 else ""
    print(
        f"{name:>9}: mean return {statistics.mean(returns):.1f}{spread} (seeds from {min(returns):.1f} to "
        f"{max(returns):.1f}), wall {statistics.mean(walls):.1f} s per seed "
        f"({statistics.mean(cpus):.1f} CPU s), pairs "
        f"{max(r['pairs'] for r in ok)} at most, env steps {max(r['env_steps'] for r in ok):,} at most; "
        f"{len(ok)} of {len(runs)} finished, {len(failed)} failed"
        + (f" ({', '.join(sorted({r['status'] for r in failed}))})" if failed else "")
    )
    return statistics.mean(returns), statistics.mean(walls)


def verdict(ours: list[dict], theirs: list[dict], faster: bool, our_wall: float, their_wall: float) -> str:
    """PASS: our mean return higher, the 95% bootstrap CI of the per-seed difference above 0, and less mean
    wall time; TIE: less wall time, the returns not distinguishable (the CI spans 0, or both at CartPole's
    maximum, where neither can be higher); FAIL otherwise."""
    from tamer.results import mean_ci

    their_by_seed = {r["seed"]: r["mean_return"] for r in theirs if r.get("status") == "ok"}
    differences = [r["mean_return"] - their_by_seed[r["seed"]] for r in ours]
    mean, lo, hi = mean_ci(differences)
    ceiling = all(r["mean_return"] == MAX_RETURN for r in ours) and set(their_by_seed.values()) == {
        MAX_RETURN
    }
    if ceiling:
        outcome = f"both at the maximum {MAX_RETURN:g}, where neither can be higher"
    else:
        outcome = "higher" if lo > 0 else "lower" if hi < 0 else "not distinguishable"
    word = "PASS" if outcome == "higher" and faster else "TIE" if faster and outcome != "lower" else "FAIL"
    return (
        f"verdict: {word}: return ours − imitation {mean:+.1f} per seed (95% CI {lo:+.1f} to {hi:+.1f}, "
        f"{len(differences)} seeds): {outcome}; wall ours {our_wall:.1f} s vs {their_wall:.1f} s per seed "
        f"({'less' if faster else 'not less'})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, default=3, help="Seeds 0..N-1 (10 for the acceptance numbers).")
    parser.add_argument("--pairs", type=int, default=480, help="Ordered pairs in all, each side.")
    parser.add_argument("--env-steps", type=int, default=150_000, help="Env steps in all, each side.")
    parser.add_argument(
        "--fragments", choices=("episode", "fixed"), default="episode", help="imitation's (ours: windows)"
    )
    parser.add_argument("--fragment-length", type=int, default=TUTORIAL["fragment_length"])
    parser.add_argument("--eval-episodes", type=int, default=EVAL_EPISODES)
    parser.add_argument(
        "--our-ppo-steps", type=int, default=0, help="Our PPO's env steps (0: the design's 80,000; capped)."
    )
    parser.add_argument("--side", choices=("both", "imitation", "ours"), default="both")
    parser.add_argument("--timeout", type=int, default=1800, help="Seconds for one seed of imitation.")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "rankings_vs_imitation")
    args = parser.parse_args()
    if args.pairs > 500 or args.env_steps > 150_000:
        print("note: above the benchmark's budgets (500 pairs, 150,000 env steps)")
    args.out.mkdir(parents=True, exist_ok=True)
    fragments = (
        "whole episodes"
        if args.fragments == "episode"
        else f"fixed {args.fragment_length}-step clips (they tie under CartPole-v1's true return)"
    )
    print(
        f"CartPole-v1, seeds 0-{args.seeds - 1}, {args.pairs} pairs and {args.env_steps:,} env steps each "
        f"side; final policy greedy over {args.eval_episodes} episodes\n"
        f"person (both sides): prefers the higher true return, {ERROR:.0%} of answers at random\n"
        f"ours: experiments/rankings_cartpole.py's design (25-step windows of PPO's episodes, K = 2)\n"
        f"imitation 1.0.1: its tutorial's PPO and reward settings; fragments: {fragments}\n"
        f"note: {NOT_SEEDED}",
        flush=True,
    )
    results: dict[str, list[dict[str, Any]]] = {"imitation": [], "ours": []}
    for seed in range(args.seeds):
        theirs = imitation(seed, args) if args.side in ("both", "imitation") else None
        mine = run_ours(seed, args) if args.side in ("both", "ours") else None
        for name, r in (("imitation", theirs), ("ours", mine)):
            if r is not None:
                results[name].append(r)
        print(f"seed {seed}: ours {describe(mine, args)} | imitation {describe(theirs, args)}", flush=True)
        record = {"args": {**vars(args), "out": str(args.out)}, **results}
        write_json_atomic(args.out / "results.json", record)
    print("summary:")
    finished = {r["seed"] for r in results["imitation"] if r.get("status") == "ok"}
    compared = [r for r in results["ours"] if r["seed"] in finished]  # the seeds both sides finished
    our_return, our_wall = summary("ours", compared) if compared else (None, None)
    their_return, their_wall = (
        summary("imitation", results["imitation"]) if results["imitation"] else (None, None)
    )
    if any(r.get("status") == "pending" for r in results["ours"]):
        print("verdict: pending (our rankings pipeline has not landed; imitation's side above)")
    elif not results["ours"] or not results["imitation"]:
        print("verdict: not judged (one side only)")
    elif any(r.get("status") != "ok" for r in results["ours"]):
        print("verdict: FAIL (a run of ours failed)")
    elif any(over_budget(r, args) for r in results["ours"]):
        print("verdict: FAIL (a run of ours went over the pair or env-step budget)")
    elif their_return is None or our_return is None or our_wall is None or their_wall is None:
        print("verdict: not judged (no finished imitation run)")
    else:
        print(verdict(compared, results["imitation"], our_wall < their_wall, our_wall, their_wall))
    print(f"results: {args.out / 'results.json'}")


if __name__ == "__main__":
    main()
