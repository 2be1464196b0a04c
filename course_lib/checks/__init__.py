"""Checks for the exercises: each ``check_*`` function grades a learner's answer.

Convention (see CONTRIBUTING.md): an exercise cell holds the solution between
``### BEGIN SOLUTION`` / ``### END SOLUTION``; the next cell calls a check from
``course_lib.checks.chNN``. A check prints a short success line, or raises
:class:`CheckFailed` saying what is wrong (and, where it can tell, which classic
mistake the answer makes), so the auto-grader and the learner read the same message.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class CheckFailed(AssertionError):
    """The learner's answer is wrong; the message says how."""


def require(condition: bool, message: str) -> None:
    """Raise :class:`CheckFailed` with ``message`` unless ``condition`` holds."""
    if not condition:
        raise CheckFailed(message)


def call_answer(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call the learner's function, turning the student stub into a clear failure."""
    try:
        return fn(*args, **kwargs)
    except NotImplementedError as err:
        raise CheckFailed(f"{getattr(fn, '__name__', 'the function')} is not implemented yet.") from err


def passed(what: str) -> None:
    """Tell the learner that a check passed."""
    print(f"Correct: {what}")
