"""A teacher's round trip with the real nbgrader: the course directory that `make assignments`
writes, `nbgrader generate_assignment`, four submissions, `nbgrader autograde`, `nbgrader export`.

Chapter 1 has four one-point exercises. The submissions: all correct (4); exercise 1 with the
KL's arguments swapped and exercise 2 left blank with its locked check cell replaced by `pass`
(2: nbgrader restores the check); blank (0); exercise 1 answered by calling the course_lib
function the exercise asks for (3: the check forbids it while the answer runs).
"""

import copy
import csv
import json
import os
import subprocess
import sys
from pathlib import Path

from course_lib.assignments import write_nbgrader_course

ROOT = Path(__file__).resolve().parents[1]
CHAPTER = "ch01_basics"
SWAPPED_KL = '''import torch


def kl_two_gaussians(mu1, sigma1, mu2, sigma2):
    """KL with the arguments swapped: KL(q || p) instead of KL(p || q)."""
    ratio = (sigma2**2 + (mu2 - mu1) ** 2) / (2 * sigma1**2)
    return torch.log(sigma1 / sigma2) + ratio - 0.5
'''
DELEGATED_KL = '''import torch
from course_lib.distributions import gaussian_kl


def kl_two_gaussians(mu1, sigma1, mu2, sigma2):
    return gaussian_kl(mu1, 2 * torch.log(sigma1), mu2, 2 * torch.log(sigma2))
'''


def _nbgrader(args, cwd):
    env = dict(os.environ)
    # nbgrader runs `alembic` and the kernel from the environment's bin folder
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env.pop("COURSE_CHECKPOINTS", None)  # the course directory keeps its own
    out = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=cwd, env=env,
                         capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return out


def _cells_by_id(nb):
    return {c["metadata"]["nbgrader"]["grade_id"]: c for c in nb["cells"]
            if "nbgrader" in c.get("metadata", {}) and "grade_id" in c["metadata"]["nbgrader"]}


def test_generate_autograde_export(tmp_path):
    course = tmp_path / "course"
    written = write_nbgrader_course([ROOT / "notebooks" / f"{CHAPTER}.py"], course)
    assert [p.name for p in written] == [f"{CHAPTER}.ipynb"]
    assert sorted(p.name for p in (course / "source" / CHAPTER).iterdir()) == [f"{CHAPTER}.ipynb"]
    _nbgrader(["generate_assignment", CHAPTER, "--force"], course)
    release = json.loads((course / "release" / CHAPTER / f"{CHAPTER}.ipynb").read_text())
    assert "### BEGIN SOLUTION" not in json.dumps(release)
    assert sorted(p.name for p in (course / "release" / CHAPTER).iterdir()) == [f"{CHAPTER}.ipynb"]

    solutions = _cells_by_id(json.loads(written[0].read_text()))

    def submission(answers: dict[str, str], tamper: dict[str, str] | None = None):
        nb = copy.deepcopy(release)
        for gid, cell in _cells_by_id(nb).items():
            if gid in answers:
                cell["source"] = answers[gid]
            if tamper and gid in tamper:
                cell["source"] = tamper[gid]
        return nb

    correct = {gid: "".join(c["source"]) for gid, c in solutions.items()
               if c["metadata"]["nbgrader"].get("solution")}
    assert len(correct) == 4
    wrong = {**correct, "ch01-ex1": SWAPPED_KL}
    del wrong["ch01-ex2"]
    students = {
        "alice": (submission(correct), 4),
        "bob": (submission(wrong, tamper={"ch01-ex2-check": "pass"}), 2),
        "carol": (submission({}), 0),
        "dave": (submission({**correct, "ch01-ex1": DELEGATED_KL}), 3),
    }
    for name, (nb, _) in students.items():
        folder = course / "submitted" / name / CHAPTER
        folder.mkdir(parents=True)
        (folder / f"{CHAPTER}.ipynb").write_text(json.dumps(nb))
    for name in students:
        _nbgrader(["db", "student", "add", name], course)
    _nbgrader(["autograde", CHAPTER], course)
    _nbgrader(["export", "--to", str(tmp_path / "grades.csv")], course)
    with open(tmp_path / "grades.csv") as f:
        scores = {row["student_id"]: float(row["score"]) for row in csv.DictReader(f)}
    assert scores == {name: float(points) for name, (_, points) in students.items()}
    _nbgrader(["generate_feedback", CHAPTER], course)
    feedback = (course / "feedback" / "dave" / CHAPTER / f"{CHAPTER}.html").read_text()
    assert "the library function this exercise asks you to write" in feedback
