"""environment.yml (conda, Binder) and pyproject.toml (pip) must declare the same packages,
and environment.yml's pip list must be a valid requirements file: conda and mamba write it to
a file and run `pip install -r` on it, so one bad line installs nothing."""

import os
import subprocess
import tomllib
from pathlib import Path

import pytest
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


def _pip_section(text: str) -> list[str]:
    env = yaml.safe_load(text)
    return next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))


def parse_as_conda_would(lines: list[str], tmp_path: Path) -> list:
    """Feed ``lines`` to pip's own requirements-file parser, as `conda env create` does."""
    from pip._internal.network.session import PipSession
    from pip._internal.req.req_file import parse_requirements

    path = tmp_path / "condaenv.requirements.txt"
    path.write_text("\n".join(lines) + "\n")
    return list(parse_requirements(str(path), session=PipSession()))


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pip_side = _reqs(project["dependencies"] + project["optional-dependencies"]["dev"])
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = _pip_section((ROOT / "environment.yml").read_text())
    conda_side = _reqs(line for line in pip_section if not line.startswith("-"))
    assert conda_side == pip_side, (
        f"only in environment.yml: {sorted(set(conda_side.items()) - set(pip_side.items()))}; "
        f"only in pyproject.toml: {sorted(set(pip_side.items()) - set(conda_side.items()))}"
    )
    python = next(d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python"))
    assert Requirement(project["requires-python"].join(["python", ""])).specifier.contains(
        python.split("=")[1]
    )


def test_environment_pip_section_is_a_valid_requirements_file(tmp_path):
    parsed = parse_as_conda_would(_pip_section((ROOT / "environment.yml").read_text()), tmp_path)
    editable = [r for r in parsed if r.is_editable]
    assert [r.requirement for r in editable] == ["."], "environment.yml must install the project (-e .)"


def test_requirements_parser_rejects_an_option_line(tmp_path):
    """The line an earlier environment.yml ended with: pip refuses the whole file."""
    from pip._internal.exceptions import RequirementsFileParseError

    with pytest.raises(RequirementsFileParseError):
        parse_as_conda_would(["numpy>=1.24", "--no-deps -e ."], tmp_path)


def test_torch_ranges_admit_local_wheels():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = {canonicalize_name(Requirement(r).name): Requirement(r) for r in project["dependencies"]}
    assert reqs["torch"].specifier.contains("2.14.1")
    assert reqs["torchvision"].specifier.contains("0.29.1")


def test_binder_configuration():
    """repo2docker builds from the root environment.yml, then runs ./postBuild (jupytext as the
    default viewer of the py:percent notebooks); ./start sets fast mode for Binder's machines."""
    post_build = ROOT / "postBuild"
    start = ROOT / "start"
    assert post_build.is_file() and start.is_file()
    assert "jupytext" in post_build.read_text()
    env = {k: v for k, v in os.environ.items() if k != "COURSE_FAST"}
    out = subprocess.run(["bash", str(start), "printenv", "COURSE_FAST"], env=env,
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "1"
    assert not (ROOT / "binder").exists(), "a binder/ folder would make repo2docker ignore the root files"


def test_torchattacks_is_installed_the_same_way_everywhere():
    """torchattacks goes in without its dependencies (its metadata pins requests~=2.25.1): the
    Makefile's venv, Binder's postBuild and the README's conda path name the same version, and
    pyproject.toml does not list it (pip's resolver would refuse the whole install)."""
    import re

    makefile = re.search(r"^TORCHATTACKS := (\S+)$", (ROOT / "Makefile").read_text(), re.M)
    assert makefile, "the Makefile must pin TORCHATTACKS"
    pin = makefile.group(1)
    assert f'--no-deps "{pin}"' in (ROOT / "postBuild").read_text()
    assert f'--no-deps "{pin}"' in (ROOT / "README.md").read_text()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    listed = project["dependencies"] + project["optional-dependencies"]["dev"]
    assert not any(canonicalize_name(Requirement(r).name) == "torchattacks" for r in listed)
    import torchattacks  # the venv has it: chapter 10 and tests/test_attacks.py use it

    assert torchattacks.__version__ == pin.split("==")[1]
