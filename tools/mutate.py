"""Mutation testing of the core modules with mutmut, on a copy of the tree (``make mutate``).

mutmut's settings are pyproject.toml's [tool.mutmut]: which modules are mutated (``only_mutate``), which tests
may run (``pytest_add_cli_args_test_selection``: the direct tests, minus the slow learning tests). mutmut runs
the selected tests once with every function of the core modules wrapped, records which tests call which
function, and then runs each mutant against only the tests that call its function, fastest first, stopping at
the first failure. So every module's mutants meet the tests that exercise it, without a hand-kept map.

This script never touches the working tree: it copies it (without .venv, .git and caches) to ``--workdir``,
runs ``mutmut run`` there with one BLAS/OpenMP thread per worker (mutmut forks workers from a process that
has imported torch; one thread keeps that fork safe), then prints the score per module, every surviving or
untested mutant with its diff, and writes ``mutation-report.json`` in the workdir.

Survivors shown to be equivalent (they change no observable behaviour) are listed, with the reason, in
``tools/mutation_equivalents.json``, matched by function and diff (not by mutmut's numbering, which shifts
when code changes). The report gives the raw score (killed / all mutants) and the score over the mutants not
listed as equivalent, and prints every survivor that is not listed as UNEXPLAINED. Exit status 1 when either
overall score is below ``--min-score``.

    python tools/mutate.py [--workdir /tmp/tamer-mutate] [--max-children 2] [--min-score 90] [--report-only]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EQUIVALENTS = Path(__file__).resolve().parent / "mutation_equivalents.json"
IGNORE = shutil.ignore_patterns(
    ".venv*", ".git", "runs", "results", "sessions", "mutants", "__pycache__", ".pytest_cache",
    ".ruff_cache", ".mypy_cache", "*.egg-info",
)  # fmt: skip

# mutmut's exit-code verdicts (mutmut.stats.status_by_exit_code), grouped for the score
KILLED = {"killed", "timeout", "caught by type check", "segfault"}  # the tests noticed (crash or hang counts)


def copy_tree(workdir: Path) -> None:
    if workdir.exists():
        shutil.rmtree(workdir)
    shutil.copytree(ROOT, workdir, ignore=IGNORE, symlinks=True)


def run_mutmut(workdir: Path, max_children: int) -> float:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MUTANT_UNDER_TEST")}
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    mutmut = Path(sys.executable).parent / "mutmut"
    log = workdir / "mutmut.log"
    start = time.monotonic()
    with open(log, "w") as out:
        rc = subprocess.call([str(mutmut), "run", "--max-children", str(max_children)], cwd=workdir, env=env,
                             stdout=out, stderr=subprocess.STDOUT)  # fmt: skip
    elapsed = time.monotonic() - start
    (workdir / "mutmut-seconds.txt").write_text(f"{elapsed:.0f}\n")
    if rc != 0:
        tail = log.read_text(errors="replace").replace("\r", "\n").splitlines()[-30:]
        sys.exit(f"mutmut run failed (exit {rc}); the end of {log}:\n" + "\n".join(tail))
    return elapsed


def changed_lines(diff: str) -> list[str]:
    """The removed and added lines of a mutant's unified diff (its function against the original)."""
    return [
        line.rstrip()
        for line in diff.splitlines()
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]


def load_equivalents() -> tuple[dict[str, str], dict[tuple[str, tuple[str, ...]], str]]:
    """(reason text by key, reason key by (function, changed lines without indentation))."""
    if not EQUIVALENTS.exists():
        return {}, {}
    data = json.loads(EQUIVALENTS.read_text())
    index = {(m["function"], tuple(line.strip() for line in m["diff"])): m["reason"] for m in data["mutants"]}
    return data["reasons"], index


def report(workdir: Path, elapsed: float | None, min_score: float) -> int:
    os.chdir(workdir)  # mutmut reads its config and mutants/ from the current directory
    sys.path.insert(0, str(workdir))
    from mutmut.mutation.diff_apply import get_diff_for_mutant
    from mutmut.stats import status_by_exit_code

    reasons, equivalent = load_equivalents()
    modules, leftovers = {}, []
    for meta in sorted(Path("mutants").rglob("*.py.meta")):
        source = str(meta.relative_to("mutants"))[: -len(".meta")]
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        counts = Counter(status_by_exit_code[code] for code in codes.values())
        for name, code in sorted(codes.items()):
            status = status_by_exit_code[code]
            if status not in KILLED:
                lines = changed_lines(get_diff_for_mutant(name, path=source))
                function = name.rsplit("__mutmut_", 1)[0]
                why = (
                    equivalent.get((function, tuple(line.strip() for line in lines)))
                    if status == "survived"
                    else None
                )
                counts["equivalent"] += why is not None
                leftovers.append(
                    {"mutant": name, "status": status, "module": source, "diff": lines, "reason": why}
                )
        modules[source] = counts

    def score(c: Counter) -> tuple[float, float]:
        """(killed / all, killed / those not shown equivalent), in percent."""
        tested = sum(c[s] for s in c if s != "equivalent") - c["skipped"]
        killed = sum(c[s] for s in KILLED)
        raw = 100.0 * killed / tested if tested else 100.0
        rest = tested - c["equivalent"]
        return raw, 100.0 * killed / rest if rest else 100.0

    rows = []
    head = ("module", "mutants", "killed", "timeout", "survived", "equiv.", "no tests", "score", "non-equiv.")
    print("\n{:24} {:>7} {:>7} {:>7} {:>8} {:>7} {:>8} {:>7} {:>10}".format(*head))
    total = Counter()
    for source, c in [*modules.items(), ("all", None)]:
        if c is None:
            c = total
        else:
            total.update(c)
        raw, adjusted = score(c)
        n = sum(c[s] for s in c if s != "equivalent")
        rows.append(
            {"module": source, **dict(c), "score": round(raw, 2), "score_non_equivalent": round(adjusted, 2)}
        )
        print(f"{source:24} {n:7} {c['killed']:7} {c['timeout']:7} {c['survived']:8} {c['equivalent']:7} "
              f"{c['no tests']:8} {raw:6.1f}% {adjusted:9.1f}%")  # fmt: skip
    raw, adjusted = score(total)
    other = {k: v for k, v in total.items() if k not in KILLED | {"survived", "no tests", "equivalent"}}
    if other:
        print(f"other verdicts: {dict(other)}")
    if elapsed is None and Path("mutmut-seconds.txt").exists():
        elapsed = float(Path("mutmut-seconds.txt").read_text())
    if elapsed is not None:
        print(f"mutmut run: {elapsed / 60:.1f} min")
    for item in sorted(leftovers, key=lambda i: i["reason"] is not None):
        label = item["status"].upper() if item["reason"] is None else f"EQUIVALENT ({item['reason']})"
        if item["status"] == "survived" and item["reason"] is None:
            label = "UNEXPLAINED SURVIVOR"
        print(f"\n{label}: {item['mutant']}")
        for line in item["diff"]:
            print(f"    {line}")
    Path("mutation-report.json").write_text(
        json.dumps(
            {"modules": rows, "overall": round(raw, 2), "overall_non_equivalent": round(adjusted, 2),
             "seconds": elapsed, "reasons": reasons, "leftovers": leftovers},
            indent=1,
            ensure_ascii=False,
        )
    )  # fmt: skip
    unexplained = sum(1 for i in leftovers if i["reason"] is None)
    print(f"\nmutation score {raw:.1f}% of all mutants, {adjusted:.1f}% of those not shown equivalent "
          f"(minimum {min_score}%); {unexplained} survivors or untested mutants unexplained; "
          f"report: {workdir}/mutation-report.json")  # fmt: skip
    return 0 if min(raw, adjusted) >= min_score else 1


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workdir", type=Path, default=Path("/tmp/tamer-mutate"))
    p.add_argument("--max-children", type=int, default=os.cpu_count() or 2)
    p.add_argument("--min-score", type=float, default=90.0)
    p.add_argument("--report-only", action="store_true", help="report on the last run in --workdir")
    args = p.parse_args()
    workdir = args.workdir.resolve()
    if workdir == ROOT or ROOT in workdir.parents:
        sys.exit(f"--workdir {workdir} is inside the working tree; mutation runs on a copy elsewhere")
    elapsed = None
    if not args.report_only:
        copy_tree(workdir)
        print(f"copied {ROOT} to {workdir}; running mutmut there (log: {workdir}/mutmut.log)", flush=True)
        elapsed = run_mutmut(workdir, args.max_children)
    return report(workdir, elapsed, args.min_score)


if __name__ == "__main__":
    sys.exit(main())
