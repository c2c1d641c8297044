"""The README's "Extending" example runs as written: its files are written out, its commands run."""

import json
import re
import shlex
from pathlib import Path

import pytest

from tamer.cli import main

README = Path(__file__).resolve().parents[1] / "README.md"


def section(title: str) -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end > 0 else None]


def blocks(text: str, lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", text, flags=re.S)


def commands(block: str) -> list[list[str]]:
    """The `tamer ...` commands of a shell block: continuations joined, trailing comments dropped."""
    joined = block.replace("\\\n", " ")
    out = []
    for line in joined.splitlines():
        words = shlex.split(line, comments=True)
        if words and words[0] == "tamer":
            out.append(words[1:])
    return out


def test_the_extending_example_runs_as_written(tmp_path, monkeypatch, capsys):
    text = section("Extending")
    files = 0
    for block in blocks(text, "python"):
        first, _, body = block.partition("\n")
        name = re.fullmatch(r"# file: (\S+)", first.strip())
        if name:
            (tmp_path / name.group(1)).write_text(block, encoding="utf-8")
            files += 1
    assert files == 1
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    ran = [args for block in blocks(text, "sh") for args in commands(block)]
    assert len(ran) == 5
    for args in ran:
        assert main(args) == 0, f"tamer {shlex.join(args)}: {capsys.readouterr().err}"
    out = capsys.readouterr().out
    assert "mean return -5.0" in out  # the oracle walks straight to the goal
    assert len(json.loads((tmp_path / "runs/nudge/returns.json").read_text())) == 10
    assert 0 < sum(1 for _ in open(tmp_path / "runs/sarsa/metrics.csv")) - 1 <= 30
    taught = [float(r.split(",")[1]) for r in open(tmp_path / "runs/taught/metrics.csv").read().split()[1:]]
    assert sum(taught[-3:]) / 3 == pytest.approx(-5.0)  # the run-based teacher taught the shortest walk
