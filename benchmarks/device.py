"""Where a GPU pays for our neural models: the learning work of Deep TAMER's Ĥ, DQN and PPO timed on the CPU
and on CUDA side by side in the same run, for the MLP on CartPole's 4-d vectors and the CNN on image frames,
and the ``--device auto`` rule the figures support.

    python benchmarks/device.py [--repeats 20] [--budget 2] [--batches 32 64 256 1024] [--frames 24 84]
                                [--threads 1] [--feedback-per-step 1] [--out results.json] [--quick]

Every model is built as a run builds it, from a ``tamer.config.Config`` through ``make_neural_h``,
``make_dqn`` and ``make_ppo`` (so with the config's defaults: one torch thread, hidden sizes, Adam), once per
device, and its real methods are timed on synthetic inputs of the env's observation shape:

- Ĥ update:   ``NeuralModel.train_on`` on a minibatch from its filled feedback buffer (one Adam step).
- DQN update: ``DQN.train_step`` on a minibatch from its filled replay buffer (target net, Huber, clipping).
- PPO update: ``PPO.learn_minibatch`` on a minibatch indexed out of a rollout already on the device, as
              ``PPO.train``'s inner loop does (policy and value nets, clipped loss, clipping, fused Adam).
- act:        one forward pass for one observation, as a step's action needs it: ``predict`` (Ĥ) and
              ``values`` (DQN) with the forward cache cleared, ``policy_step`` (PPO); for PPO also a batch
              of ``--ppo-envs`` observations (``act×8``), what the vectorised loop does once per vector step.

Updates run at each of ``--batches`` (minibatch sizes); every step includes what the framework does around
it: gathering the minibatch from the numpy buffer, the host-to-device copy and the ``loss.item()`` that
waits for the device. Vectors: CartPole-v1's observation space. Images: ``tamer/GridWorldPixels-v0`` built
with ``pixels_per_cell`` = frame/6, so ``--frames 24`` is the built-in env's own 24x24x3 picture and 84 an
84x84x3 one (Atari's size after the usual resize), with random uint8 pixels (the time does not depend on
them). The buffers hold ``2 × max(batches)`` synthetic rows.

Timing: per case, the CPU's and the CUDA model are built side by side and warmed up (at least one call, two
on CUDA, up to three while under 0.5 s), then timed in calls alternating between the devices, up to
``--repeats`` each, fewer once a device has spent ``--budget`` seconds (at least one), each bracketed by
``torch.cuda.synchronize()`` on CUDA; the median call is reported. For each case the CPU's time, CUDA's,
and CUDA's speed-up (CPU time / CUDA time: above 1 means the GPU is faster) are printed.

Per env step of learning, what a run pays each step on the learner's default schedule: the acting forward
plus the update steps due per env step: DQN ``dqn_gradient_steps / dqn_train_freq`` (128/256), PPO
``ppo_epochs / batch`` (each rollout sample is seen ``epochs`` times in minibatches of ``batch``) with its
act×8 shared by 8 steps, Ĥ ``h_updates × --feedback-per-step`` (4 steps per feedback; one feedback every
step, as a simulated teacher may give, is the case most favourable to the GPU). The summary says, for the
MLP on vectors and the CNN at each frame size, whether CUDA was faster per env step at each learner's
default batch (Ĥ 32, DQN 64, PPO 256; faster: a speed-up above 1.1, so noise leaves the CPU in place),
and a one-line recommendation for ``tamer.deep.pick_device``.

Without CUDA only the CPU figures are measured (a smoke run; ``--quick``: batch 32, frames 24 and 84, two
timed calls each, in seconds), with the line "no CUDA device: GPU figures not measured". ``--out`` writes
every figure as JSON (atomically: a temporary file, then ``os.replace``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from tamer.config import Config
from tamer.deep import make_neural_h
from tamer.dqn import make_dqn
from tamer.envs import make_env
from tamer.ppo_runs import make_ppo

VECTOR_ENV = "CartPole-v1"
IMAGE_ENV = "tamer/GridWorldPixels-v0"  # 6x6 cells: a frame of F px has F/6 px per cell
LEARNERS = ("h", "dqn", "ppo")
NAMES = {"h": "Deep TAMER Ĥ", "dqn": "DQN", "ppo": "PPO"}
WARMUP_CALLS, WARMUP_BUDGET = 3, 0.5
FASTER = 1.1  # CUDA counts as faster at a speed-up above this: within noise, the CPU (the default) stays


# ------------------------------------------------------------------------------------------- the models


def make_env_for(kind: str) -> gym.Env:
    """CartPole-v1 for ``mlp``; the pixel grid world at ``kind`` = ``cnnF`` (F x F x 3 frames)."""
    if kind == "mlp":
        return make_env(VECTOR_ENV)
    frame = int(kind[3:])
    import envs  # noqa: F401  (registers tamer/* environments)

    return gym.make(IMAGE_ENV, pixels_per_cell=frame // 6)


def config(learner: str, kind: str, device: str, batch: int, rows: int, threads: int) -> Config:
    model = "mlp" if kind == "mlp" else "cnn"
    env = VECTOR_ENV if kind == "mlp" else IMAGE_ENV
    common: dict[str, Any] = {"env": env, "device": device, "torch_threads": threads, "model": model}
    if learner == "h":
        cfg = Config(agent="tamer", h_batch=batch, h_buffer=rows, **common)
    elif learner == "dqn":
        cfg = Config(agent="rl", rl="dqn", dqn_batch=batch, dqn_buffer=rows, **common)
    else:
        cfg = Config(agent="rl", rl="ppo", ppo_batch=batch, **common)
    return cfg.validate()


def random_inputs(shape: tuple[int, ...], dtype: type, n: int, rng: np.random.Generator) -> np.ndarray:
    if np.dtype(dtype) == np.uint8:
        return rng.integers(0, 256, size=(n, *shape), dtype=np.uint8)
    return rng.normal(size=(n, *shape)).astype(dtype)


class Bench:
    """One learner on one device with filled buffers: ``update()`` one gradient step, ``act()`` one forward
    for one observation, ``act_batch()`` (PPO) one for ``ppo_envs`` observations."""

    def __init__(self, learner: str, kind: str, device: str, batch: int, rows: int, threads: int):
        self.cfg = cfg = config(learner, kind, device, batch, rows, threads)
        env = make_env_for(kind)
        n_actions = int(env.action_space.n)  # type: ignore[attr-defined]
        rng = np.random.default_rng(0)
        self.act_batch: Callable[[], Any] | None = None
        try:
            if learner == "h":
                h = make_neural_h(cfg, env, n_actions)
                enc = h.encoder
                h.buffer.add(
                    x=random_inputs(enc.shape, enc.dtype, rows, rng),
                    a=rng.integers(n_actions, size=rows),
                    c=rng.random(rows),
                    h=rng.choice([-1.0, 1.0], size=rows),
                )
                self.device = h.device
                self.update = lambda: h.train_on(h.rng.integers(h.buffer.size, size=batch))
                xs = random_inputs(enc.shape, enc.dtype, 1, rng)

                def act_h():
                    h.forward.clear()
                    return h.predict(xs[0])

                self.act = act_h
            elif learner == "dqn":
                q = make_dqn(cfg, env, n_actions)
                enc = q.encoder
                q.buffer.add(
                    x=random_inputs(enc.shape, enc.dtype, rows, rng),
                    x_next=random_inputs(enc.shape, enc.dtype, rows, rng),
                    a=rng.integers(n_actions, size=rows),
                    r=rng.normal(size=rows),
                    done=rng.random(rows) < 0.02,
                    offset=np.zeros(rows),
                    offset_next=np.zeros((rows, n_actions)),
                )
                self.device = q.device
                self.update = q.train_step
                xs = random_inputs(enc.shape, enc.dtype, 1, rng)

                def act_q():
                    q.forward.clear()
                    return q.values(xs[0])

                self.act = act_q
            else:
                p = make_ppo(cfg, env, n_actions)
                enc = p.encoder
                n = max(rows, batch)
                on = {
                    "x": torch.from_numpy(random_inputs(enc.shape, enc.dtype, n, rng)),
                    "a": torch.from_numpy(rng.integers(n_actions, size=n)),
                    "logp": torch.full((n,), float(-np.log(n_actions))),
                    "adv": torch.from_numpy(rng.normal(size=n).astype(np.float32)),
                    "ret": torch.from_numpy(rng.normal(size=n).astype(np.float32)),
                }
                data = {k: v.to(p.device) for k, v in on.items()}
                self.device = p.device
                _, clip = p.current()

                def update_ppo():
                    idx = torch.from_numpy(p.rng.permutation(n)[:batch]).to(p.device)
                    return p.learn_minibatch({k: v[idx] for k, v in data.items()}, clip)

                self.update = update_ppo
                one = random_inputs(enc.shape, enc.dtype, 1, rng)
                many = random_inputs(enc.shape, enc.dtype, cfg.ppo_envs, rng)
                act_rng = np.random.default_rng(1)
                self.act = lambda: p.policy_step(one, act_rng)
                self.act_batch = lambda: p.policy_step(many, act_rng)
        finally:
            env.close()


def timed(calls: dict[str, tuple[Callable[[], Any], torch.device]], repeats: int, budget: float) -> dict:
    """Median seconds per call of each device's function: each warmed up, then timed calls alternating
    between the devices (drift of a shared machine hits both alike), up to ``repeats`` each, fewer once a
    device has spent ``budget`` seconds (at least one); CUDA calls bracketed by ``synchronize``."""

    def sync(device: torch.device) -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    for fn, device in calls.values():
        began = time.perf_counter()
        least = 2 if device.type == "cuda" else 1  # CUDA's first call also initialises kernels, allocator
        for i in range(WARMUP_CALLS):
            fn()
            sync(device)
            if i + 1 >= least and time.perf_counter() - began > WARMUP_BUDGET:
                break
    times: dict[str, list[float]] = {dev: [] for dev in calls}
    spent = dict.fromkeys(calls, 0.0)

    def more(dev: str) -> bool:
        return len(times[dev]) < max(1, repeats) and (not times[dev] or spent[dev] < budget)

    while any(more(dev) for dev in calls):
        for dev, (fn, device) in calls.items():
            if more(dev):
                sync(device)
                t0 = time.perf_counter()
                fn()
                sync(device)
                times[dev].append(time.perf_counter() - t0)
                spent[dev] += times[dev][-1]
    return {dev: statistics.median(t) for dev, t in times.items()}


# --------------------------------------------------------------------------------------- the measurement


def measure(args, devices: list[str]) -> list[dict]:
    """One row per (learner, model kind, what, batch) with the seconds per call on each device."""
    kinds = ["mlp", *(f"cnn{f}" for f in args.frames)]
    rows_held = 2 * max(args.batches)
    out = []

    def add(learner: str, kind: str, what: str, batch: int | None, s: dict[str, float]) -> None:
        out.append({"learner": learner, "kind": kind, "what": what, "batch": batch, "s": s})
        report(out[-1])

    for kind in kinds:
        for learner in LEARNERS:
            for i, batch in enumerate(args.batches):
                benches = {dev: Bench(learner, kind, dev, batch, rows_held, args.threads) for dev in devices}
                if i == 0:  # acting does not depend on the minibatch size
                    acts = {dev: (b.act, b.device) for dev, b in benches.items()}
                    add(learner, kind, "act", None, timed(acts, args.repeats, args.budget))
                    many = {dev: (b.act_batch, b.device) for dev, b in benches.items() if b.act_batch}
                    if many:
                        add(learner, kind, "act×8", None, timed(many, args.repeats, args.budget))
                    del acts, many
                updates = {dev: (b.update, b.device) for dev, b in benches.items()}
                add(learner, kind, "update", batch, timed(updates, args.repeats, args.budget))
                del benches, updates
    return out


def speedup(s: dict[str, float]) -> float | None:
    return s["cpu"] / s["cuda"] if "cuda" in s and s["cuda"] > 0 else None


def fmt_s(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds >= 1:
        return f"{seconds:9.3f} s "
    return f"{seconds * 1e3:9.3f} ms" if seconds >= 1e-3 else f"{seconds * 1e6:9.1f} µs"


def report(row: dict) -> None:
    s, up = row["s"], speedup(row["s"])
    what = row["what"] if row["batch"] is None else f"update b={row['batch']}"
    ratio = f"  CUDA speed-up {up:6.2f}x" if up is not None else ""
    print(
        f"{NAMES[row['learner']]:<13} {row['kind']:<6} {what:<16} cpu {fmt_s(s['cpu'])}  "
        f"cuda {fmt_s(s.get('cuda'))}{ratio}",
        flush=True,
    )


def updates_per_step(learner: str, cfg: Config, batch: int, feedback_per_step: float) -> float:
    if learner == "dqn":
        return cfg.dqn_gradient_steps / cfg.dqn_train_freq
    if learner == "ppo":
        return cfg.ppo_epochs / batch
    return cfg.h_updates * feedback_per_step


def per_env_step(rows: list[dict], devices: list[str], feedback_per_step: float) -> list[dict]:
    """Seconds of learning work per env step, per (learner, kind, batch), on each device."""
    defaults = Config()
    out = []
    for r in rows:
        if r["what"] != "update":
            continue
        learner, kind = r["learner"], r["kind"]
        acts = {x["what"]: x["s"] for x in rows if x["learner"] == learner and x["kind"] == kind}
        k = updates_per_step(learner, defaults, r["batch"], feedback_per_step)
        s = {}
        for dev in devices:
            act = acts["act×8"][dev] / defaults.ppo_envs if learner == "ppo" else acts["act"][dev]
            s[dev] = act + k * r["s"][dev]
        out.append({"learner": learner, "kind": kind, "batch": r["batch"], "updates_per_step": k, "s": s})
    return out


DEFAULT_BATCH = {"h": "h_batch", "dqn": "dqn_batch", "ppo": "ppo_batch"}


def verdicts(steps: list[dict]) -> dict[str, dict]:
    """Per model kind: per learner, whether CUDA was faster per env step at its default batch (nearest
    measured batch), and at which measured batches it was."""
    defaults = Config()
    out: dict[str, dict] = {}
    for kind in dict.fromkeys(r["kind"] for r in steps):
        per: dict[str, dict] = {}
        for learner in LEARNERS:
            mine = [r for r in steps if r["kind"] == kind and r["learner"] == learner]
            if not mine:
                continue
            want = getattr(defaults, DEFAULT_BATCH[learner])
            at = min(mine, key=lambda r: abs(r["batch"] - want))
            per[learner] = {
                "default_batch": at["batch"],
                "speedup": speedup(at["s"]),
                "faster_batches": [r["batch"] for r in mine if (speedup(r["s"]) or 0) > FASTER],
            }
        measured = [v["speedup"] for v in per.values() if v["speedup"] is not None]
        out[kind] = {
            "learners": per,
            "cuda_faster": (all(u > FASTER for u in measured) if measured else None),
            "cuda_faster_any": (any(u > FASTER for u in measured) if measured else None),
        }
    return out


def recommendation(rule: dict[str, dict]) -> str:
    kinds = list(rule)
    if any(rule[k]["cuda_faster"] is None for k in kinds):
        return (
            "keep --device cpu (the default); auto's rule (CUDA only for the CNN on images, CPU for MLPs on "
            "vectors) rests on the measured 2.4x slower CUDA MLP and awaits this script's CUDA figures"
        )
    mlp = rule.get("mlp", {}).get("cuda_faster")
    cnn = {k: rule[k]["cuda_faster"] for k in kinds if k.startswith("cnn")}
    if not mlp and cnn and all(cnn.values()):
        return (
            "auto = CUDA for the CNN on images, CPU for MLPs on vectors: the rule in tamer.deep.pick_device "
            "holds"
        )
    if not mlp and cnn and any(cnn.values()):
        pays = ", ".join(k for k, v in cnn.items() if v)
        not_ = ", ".join(k for k, v in cnn.items() if not v)
        return (
            f"CUDA pays for {pays} but not for {not_}: auto should pick CUDA only for images at least as "
            f"large as the smallest paying frame (pick_device needs the frame size, not just 'images')"
        )
    if not mlp:
        return "CUDA pays for no model measured: auto should pick CPU always (drop pick_device's CUDA branch)"
    if cnn and not all(cnn.values()):
        return (
            "CUDA pays for the MLP but not for every CNN frame size: unexpected; re-check, keep auto's rule"
        )
    return "CUDA pays for MLPs and CNNs alike: auto = CUDA when present (the rule before this measurement)"


# ---------------------------------------------------------------------------------------------- output


def write_json(path: str, payload: dict) -> None:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(payload, f, indent=1, ensure_ascii=False)
            f.write("\n")
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=20, help="Timed calls per case (after warm-up).")
    parser.add_argument("--budget", type=float, default=2.0, help="Seconds of timed calls per case, at most.")
    parser.add_argument("--batches", type=int, nargs="+", default=[32, 64, 256, 1024])
    parser.add_argument(
        "--frames", type=int, nargs="+", default=[24, 84], help="Image frame sizes (multiples of 6, >= 18)."
    )
    parser.add_argument("--threads", type=int, default=Config().torch_threads, help="Torch CPU threads.")
    parser.add_argument(
        "--feedback-per-step", type=float, default=1.0, help="Ĥ: feedbacks per env step (per-step cost)."
    )
    parser.add_argument("--out", default="", help="Write every figure to this JSON file.")
    parser.add_argument("--quick", action="store_true", help="Smoke run: batch 32, two timed calls per case.")
    args = parser.parse_args(argv)
    if args.quick:
        args.batches, args.repeats, args.budget = [32], 2, 0.2
    bad = [f for f in args.frames if f < 18 or f % 6 or f > 252]
    if bad:
        parser.error(f"--frames must be multiples of 6 in [18, 252] (6x6 cells of >= 3 px): {bad}")
    limits = {  # (value, lowest, highest)
        "--batches": (args.batches, 1, 65536),
        "--repeats": ([args.repeats], 1, 10**6),
        "--threads": ([args.threads], 1, 1024),
    }
    for flag, (values, lo, hi) in limits.items():
        if any(not lo <= v <= hi for v in values):
            parser.error(f"{flag} must be in [{lo}, {hi}], got {values if len(values) > 1 else values[0]}")
    for flag, value in (("--budget", args.budget), ("--feedback-per-step", args.feedback_per_step)):
        if not (math.isfinite(value) and value > 0):
            parser.error(f"{flag} must be a finite number > 0, got {value}")
    if args.out and Path(args.out).is_dir():
        parser.error(f"--out {args.out} is a folder; give a file path")
    cuda = torch.cuda.is_available()
    devices = ["cpu", "cuda"] if cuda else ["cpu"]
    gpu = torch.cuda.get_device_name(0) if cuda else None
    print(
        f"torch {torch.__version__}, {args.threads} CPU thread(s) of {os.cpu_count()}, "
        f"GPU: {gpu or 'none'}; batches {args.batches}, frames {args.frames}, repeats {args.repeats}",
        flush=True,
    )
    if not cuda:
        print("no CUDA device: GPU figures not measured", flush=True)
    began = time.perf_counter()
    rows = measure(args, devices)
    steps = per_env_step(rows, devices, args.feedback_per_step)
    rule = verdicts(steps)
    print("\nper env step of learning (act + update steps due per env step, on the default schedule):")
    for r in steps:
        up = speedup(r["s"])
        print(
            f"{NAMES[r['learner']]:<13} {r['kind']:<6} b={r['batch']:<5} "
            f"{r['updates_per_step']:6.3f} updates  cpu {fmt_s(r['s']['cpu'])}  "
            f"cuda {fmt_s(r['s'].get('cuda'))}" + (f"  CUDA speed-up {up:6.2f}x" if up is not None else "")
        )
    print("\nrule (CUDA faster per env step of learning, at each learner's default batch):")
    for kind, v in rule.items():
        what = "mlp on vectors" if kind == "mlp" else f"cnn on {kind[3:]}x{kind[3:]}x3 frames"
        if v["cuda_faster"] is None:
            print(f"  {what}: not measured (no CUDA)")
            continue
        parts = ", ".join(
            f"{NAMES[k]} {x['speedup']:.2f}x at b={x['default_batch']} (faster at b={x['faster_batches']})"
            for k, x in v["learners"].items()
        )
        verdict = "yes" if v["cuda_faster"] else "partly" if v["cuda_faster_any"] else "no"
        print(f"  {what}: {verdict}: {parts}")
    if not cuda:
        print("no CUDA device: GPU figures not measured")
    rec = recommendation(rule)
    print(f"recommendation: {rec}")
    print(f"({time.perf_counter() - began:.0f} s)")
    if args.out:
        payload = {
            "torch": torch.__version__,
            "gpu": gpu,
            "cpu_count": os.cpu_count(),
            "args": {k: v for k, v in vars(args).items() if k != "out"},
            "cases": rows,
            "per_env_step": steps,
            "rule": rule,
            "recommendation": rec,
        }
        try:
            write_json(args.out, payload)
        except OSError as e:
            sys.exit(f"device.py: cannot write --out {args.out}: {e.strerror or e}")


if __name__ == "__main__":
    main()
