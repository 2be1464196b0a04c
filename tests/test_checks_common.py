"""The checks' shared machinery: an answer that calls the library function its exercise asks
for is refused, however it reaches it, and the library works again afterwards."""

import pytest
import torch

import course_lib.distributions as dist
from course_lib.checks import CheckFailed, call_answer, forbid, reproduces
from course_lib.distributions import gaussian_kl


@reproduces(gaussian_kl)
def check_kl(fn):
    out = call_answer(fn, torch.zeros(3), torch.zeros(3))
    return out


def test_delegating_answers_are_refused():
    by_import = lambda mu, lv: gaussian_kl(mu, lv)  # noqa: E731
    by_module = lambda mu, lv: dist.gaussian_kl(mu, lv)  # noqa: E731
    alias = gaussian_kl

    def swallowing(mu, lv):  # a learner's `except Exception` must not hide the call
        try:
            return dist.gaussian_kl(mu, lv)
        except Exception:
            return torch.zeros(3)

    for answer in (by_import, by_module, alias, swallowing):
        with pytest.raises(CheckFailed, match="asks you to write"):
            check_kl(answer)
    # restored: the library and a check's own reference computations still work
    assert torch.equal(gaussian_kl(torch.zeros(3), torch.zeros(3)), torch.zeros(3))


def test_own_answers_pass_and_stubs_fail():
    assert torch.equal(check_kl(lambda mu, lv: 0.5 * (mu**2 + lv.exp() - 1 - lv)), torch.zeros(3))

    def stub(mu, lv):
        raise NotImplementedError()

    with pytest.raises(CheckFailed, match="not implemented"):
        check_kl(stub)


def test_forbid_restores_after_other_errors():
    with pytest.raises(RuntimeError, match="boom"), forbid(gaussian_kl):
        raise RuntimeError("boom")
    assert gaussian_kl(torch.ones(1), torch.zeros(1)).item() == pytest.approx(0.5)


def test_only_the_declared_function_is_forbidden():
    # log_normal_diag is not what check_kl grades: an answer may use it
    assert check_kl(lambda mu, lv: dist.log_normal_diag(mu, mu, lv) * 0).shape == (3,)
    # outside a decorated check nothing is forbidden
    assert call_answer(gaussian_kl, torch.zeros(2), torch.zeros(2)).shape == (2,)


def test_every_check_declares_what_it_reproduces():
    """Each exercise check names the course_lib function(s) its exercise asks the learner to
    write, so the delegating answer is refused everywhere."""
    import importlib
    import pkgutil

    import course_lib.checks as checks

    missing = []
    for info in pkgutil.iter_modules(checks.__path__):
        module = importlib.import_module(f"course_lib.checks.{info.name}")
        for name in dir(module):
            fn = getattr(module, name)
            if name.startswith("check_") and callable(fn) and fn.__module__ == module.__name__:
                if not getattr(fn, "reproduces", None):
                    missing.append(f"{info.name}.{name}")
    assert not missing, f"checks without @reproduces(...): {missing}"


def _all_checks():
    import importlib
    import pkgutil

    import course_lib.checks as checks

    for info in pkgutil.iter_modules(checks.__path__):
        module = importlib.import_module(f"course_lib.checks.{info.name}")
        for name in sorted(dir(module)):
            fn = getattr(module, name)
            if name.startswith("check_") and callable(fn) and getattr(fn, "reproduces", None):
                yield f"{info.name}.{name}", fn


@pytest.mark.parametrize("name,check", list(_all_checks()), ids=lambda v: v if isinstance(v, str) else "")
def test_every_check_refuses_the_delegating_answer(name, check):
    """The wrong answer a teacher meets first: the exercise's function, imported from course_lib."""
    for lib in check.reproduces:
        def delegating(*args, _lib=lib, **kwargs):
            return _lib(*args, **kwargs)

        with pytest.raises(CheckFailed, match="asks you to write"):
            check(delegating)
