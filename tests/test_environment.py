"""environment.yml (conda, Binder) and pyproject.toml (pip) must declare the same packages."""

import tomllib
from pathlib import Path

import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]


def _reqs(lines):
    out = {}
    for line in lines:
        req = Requirement(line)
        out[canonicalize_name(req.name)] = str(req.specifier)
    return out


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pip_side = _reqs(project["dependencies"] + project["optional-dependencies"]["dev"])
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    conda_side = _reqs(line for line in pip_section if not line.startswith("-"))
    assert conda_side == pip_side, (
        f"only in environment.yml: {sorted(set(conda_side.items()) - set(pip_side.items()))}; "
        f"only in pyproject.toml: {sorted(set(pip_side.items()) - set(conda_side.items()))}"
    )
    assert any(line.endswith("-e .") for line in pip_section), "environment.yml must install course_lib"
    python = next(d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python"))
    assert Requirement(project["requires-python"].join(["python", ""])).specifier.contains(
        python.split("=")[1]
    )


def test_torch_ranges_admit_local_wheels():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = {canonicalize_name(Requirement(r).name): Requirement(r) for r in project["dependencies"]}
    assert reqs["torch"].specifier.contains("2.14.1")
    assert reqs["torchvision"].specifier.contains("0.29.1")
