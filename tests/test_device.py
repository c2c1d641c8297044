"""``--device``: ``tamer.deep.pick_device``'s rule (``auto`` = CUDA only for image models, and only when torch
sees a device) and ``benchmarks/device.py``, which measures where a GPU pays.

``torch.cuda.is_available`` is monkeypatched to say True where the rule needs it; only the returned
``torch.device`` is looked at then, so no test touches a real GPU."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tamer.config import Config
from tamer.deep import make_neural_h, pick_device
from tamer.envs import make_env
from tamer.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "device.py"


@pytest.fixture
def cuda(monkeypatch):
    """Set what ``torch.cuda.is_available`` answers."""

    def set_to(present: bool) -> None:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: present)

    return set_to


# ------------------------------------------------------------------------------------------ pick_device


@pytest.mark.parametrize(
    ("present", "images", "want"),
    [
        (True, True, "cuda"),  # a CNN over frames: where a GPU should pay
        (True, False, "cpu"),  # an MLP over vectors: measured 2.4x slower on CUDA
        (False, True, "cpu"),
        (False, False, "cpu"),
    ],
)
def test_auto_is_cuda_only_for_images_when_present(cuda, present, images, want):
    cuda(present)
    assert pick_device("auto", images=images) == torch.device(want)


@pytest.mark.parametrize("images", [True, False])
def test_explicit_names_are_obeyed(cuda, images):
    cuda(True)
    assert pick_device("cpu", images=images) == torch.device("cpu")
    assert pick_device("cuda", images=images) == torch.device("cuda")  # even for an MLP: the user asked
    cuda(False)
    assert pick_device("cpu", images=images) == torch.device("cpu")


@pytest.mark.parametrize("images", [True, False])
def test_cuda_without_a_device_is_a_config_error(cuda, images):
    cuda(False)
    with pytest.raises(ConfigError, match="^--device cuda, but torch sees no CUDA device"):
        pick_device("cuda", images=images)


@pytest.mark.parametrize("name", ["tpu", "CPU", "Auto", "gpu", "", "cuda:0"])
@pytest.mark.parametrize("present", [True, False])
def test_unknown_names_are_config_errors(cuda, name, present):
    cuda(present)
    with pytest.raises(ConfigError, match="unknown device|no CUDA device"):
        pick_device(name, images=True)
    with pytest.raises(ConfigError):
        pick_device(name, images=False)


def test_neural_h_mlp_on_auto_stays_on_the_cpu_with_cuda_present(cuda):
    """``make_neural_h`` tells ``pick_device`` what its model reads: an MLP over CartPole's vectors."""
    cuda(True)
    cfg = Config(env="CartPole-v1", agent="tamer", model="mlp", device="auto", h_hidden="8").validate()
    env = make_env(cfg.env)
    try:
        h = make_neural_h(cfg, env, int(env.action_space.n))  # type: ignore[attr-defined]
    finally:
        env.close()
    assert h.device == torch.device("cpu")
    assert all(p.device.type == "cpu" for p in h.net.parameters())


# ------------------------------------------------------------------------------------ benchmarks/device.py


def load_script():
    spec = importlib.util.spec_from_file_location("bench_device", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_quick_run_on_cpu_prints_the_no_cuda_line(tmp_path):
    out = tmp_path / "device.json"
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}  # CPU only, on a GPU machine too
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--out", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "no CUDA device: GPU figures not measured" in done.stdout
    assert "recommendation: keep --device cpu" in done.stdout
    data = json.loads(out.read_text())
    assert data["gpu"] is None
    assert not list(tmp_path.glob("*.tmp"))  # written atomically: no temporary file left behind
    kinds = {(r["learner"], r["kind"], r["what"]) for r in data["cases"]}
    for learner in ("h", "dqn", "ppo"):
        for kind in ("mlp", "cnn24", "cnn84"):
            assert (learner, kind, "update") in kinds and (learner, kind, "act") in kinds
    assert all(set(r["s"]) == {"cpu"} and r["s"]["cpu"] > 0 for r in data["cases"])
    assert all(v["cuda_faster"] is None for v in data["rule"].values())


def fake_steps(speedups: dict[tuple[str, str], float]) -> list[dict]:
    """Per-env-step rows with the given CUDA speed-ups (CPU 1 s) at each learner's default batch."""
    batch = {"h": 32, "dqn": 64, "ppo": 256}
    return [
        {"learner": learner, "kind": kind, "batch": batch[learner], "s": {"cpu": 1.0, "cuda": 1.0 / up}}
        for (learner, kind), up in speedups.items()
    ]


def both(mlp: float, cnn: float) -> dict[tuple[str, str], float]:
    return {(learner, kind): (mlp if kind == "mlp" else cnn) for learner in ("h", "dqn", "ppo") for kind in
            ("mlp", "cnn84")}  # fmt: skip


def test_the_rule_the_figures_support():
    bench = load_script()
    rule = bench.verdicts(fake_steps(both(mlp=1 / 2.4, cnn=5.0)))
    assert rule["mlp"]["cuda_faster"] is False and rule["cnn84"]["cuda_faster"] is True
    assert "rule in tamer.deep.pick_device holds" in bench.recommendation(rule)
    rule = bench.verdicts(fake_steps(both(mlp=0.5, cnn=0.8)))
    assert "CPU always" in bench.recommendation(rule)
    rule = bench.verdicts(fake_steps(both(mlp=2.0, cnn=3.0)))
    assert "CUDA when present" in bench.recommendation(rule)
    cpu_only = [{**r, "s": {"cpu": 1.0}} for r in fake_steps(both(mlp=1.0, cnn=1.0))]
    assert bench.recommendation(bench.verdicts(cpu_only)).startswith("keep --device cpu")


def test_with_cuda_it_prints_ratios_and_the_rule(monkeypatch, capsys, tmp_path):
    """The CUDA side's reporting, with "cuda" models quietly built on the CPU (no GPU is touched)."""
    import tamer.deep
    import tamer.dqn
    import tamer.ppo_runs

    bench = load_script()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *_: "Fake GPU")
    for module in (tamer.deep, tamer.dqn, tamer.ppo_runs):
        monkeypatch.setattr(module, "pick_device", lambda *_, **__: torch.device("cpu"))
    out = tmp_path / "sub" / "device.json"
    bench.main(["--quick", "--frames", "24", "--out", str(out)])
    text = capsys.readouterr().out
    assert "GPU: Fake GPU" in text and "no CUDA device" not in text
    assert "CUDA speed-up" in text and "recommendation: " in text
    assert "mlp on vectors: " in text and "cnn on 24x24x3 frames: " in text
    data = json.loads(out.read_text())
    assert all(set(r["s"]) == {"cpu", "cuda"} for r in data["cases"])
    assert {v["cuda_faster"] for v in data["rule"].values()} <= {True, False}
