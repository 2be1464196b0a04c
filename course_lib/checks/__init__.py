"""Checks for the exercises: each ``check_*`` function grades a learner's answer.

Convention (see CONTRIBUTING.md): an exercise cell holds the solution between
``### BEGIN SOLUTION`` / ``### END SOLUTION``; the next cell calls a check from
``course_lib.checks.chNN``. A check prints a short success line, or raises
:class:`CheckFailed` saying what is wrong (and, where it can tell, which classic
mistake the answer makes), so the auto-grader and the learner read the same message.

An exercise asks the learner to write what ``course_lib`` already holds. A check declares
that library function with :func:`reproduces`; while the learner's answer runs, calling it
fails the check ("your answer calls course_lib's ..."), so an answer cannot pass by
delegating to the function it was asked to write.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
from collections.abc import Callable, Iterator
from typing import Any


class CheckFailed(AssertionError):
    """The learner's answer is wrong; the message says how."""


class _ForbiddenCall(BaseException):
    """Raised by a library function while it is forbidden. A BaseException, so that a
    learner's ``except Exception`` cannot swallow it."""


_REPRODUCES: contextvars.ContextVar[tuple[Callable, ...]] = contextvars.ContextVar(
    "course_lib_checks_reproduces", default=()
)


def _sentinel(*args, **kwargs):  # its code object replaces a forbidden function's code
    raise __import__("course_lib.checks", fromlist=["_ForbiddenCall"])._ForbiddenCall()


def _name(fn: Callable) -> str:
    return f"{fn.__module__}.{fn.__qualname__}"


@contextlib.contextmanager
def forbid(*functions: Callable) -> Iterator[None]:
    """While active, calling any of ``functions`` raises :class:`CheckFailed`.

    The functions' code objects are swapped for a sentinel's, so every way of reaching them
    fails: the module attribute, a name the learner imported with ``from ... import``, an
    alias. The original code is restored on exit, whatever happened.
    """
    saved = []
    try:
        for fn in functions:
            if getattr(fn, "__closure__", None):  # pragma: no cover - library functions are plain
                raise TypeError(f"cannot forbid {_name(fn)}: it is a closure")
            saved.append((fn, fn.__code__))
            fn.__code__ = _sentinel.__code__
        yield
    except _ForbiddenCall:
        names = " or ".join(_name(fn) for fn in functions)
        raise CheckFailed(
            f"your answer calls {names}, the library function this exercise asks you to write. "
            "Write it yourself from torch / numpy operations."
        ) from None
    finally:
        for fn, code in saved:
            fn.__code__ = code


def reproduces(*functions: Callable) -> Callable[[Callable], Callable]:
    """Decorator for a check: the exercise it grades asks the learner to write ``functions``
    (the ``course_lib`` formulas); :func:`call_answer` forbids them while the answer runs."""

    def decorate(check: Callable) -> Callable:
        @functools.wraps(check)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            token = _REPRODUCES.set(functions)
            try:
                return check(*args, **kwargs)
            finally:
                _REPRODUCES.reset(token)

        wrapper.reproduces = functions  # type: ignore[attr-defined]
        return wrapper

    return decorate


def require(condition: bool, message: str) -> None:
    """Raise :class:`CheckFailed` with ``message`` unless ``condition`` holds."""
    if not condition:
        raise CheckFailed(message)


def call_answer(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call the learner's function, turning the student stub into a clear failure and
    forbidding the library functions that the check :func:`reproduces`."""
    try:
        with forbid(*_REPRODUCES.get()):
            return fn(*args, **kwargs)
    except NotImplementedError as err:
        raise CheckFailed(f"{getattr(fn, '__name__', 'the function')} is not implemented yet.") from err


def passed(what: str) -> None:
    """Tell the learner that a check passed."""
    print(f"Correct: {what}")
