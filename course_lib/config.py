"""Typed configs: frozen dataclasses for the recipes' settings, checked and recorded in checkpoints.

A recipe's settings (chapters 4 and 7, and every chapter that trains a recommended model) are a
frozen dataclass: ``dataclasses.replace`` makes a variant, :func:`config_dict` is what a
checkpoint records (:class:`course_lib.train.Run` refuses to resume a run of other settings).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any


def config_dict(config: Any) -> dict[str, Any]:
    """A config (frozen dataclass or dict) as a plain dict of saveable values, for checkpoints."""
    if config is None:
        return {}
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        config = dataclasses.asdict(config)
    if not isinstance(config, Mapping):
        raise TypeError(f"config must be a dataclass or a dict, got {type(config).__name__}")
    return {k: list(v) if isinstance(v, tuple) else v for k, v in config.items()}


def make_config(cls: type, config: Any = None, **changes: Any) -> Any:
    """``cls()`` (a frozen dataclass) with ``changes``; ``config`` may be an instance or a dict.

    An unknown setting is an error that lists the valid ones: a typo such as ``{"lr": 1e-3}``
    for a config whose fields are ``lr_g`` and ``lr_d`` must not be silently ignored.
    """
    if isinstance(config, cls):
        base, extra = config, {}
    elif config is None or isinstance(config, Mapping):
        base, extra = cls(), dict(config or {})
    else:
        raise TypeError(f"config must be a {cls.__name__} or a dict, got {type(config).__name__}")
    extra.update(changes)
    valid = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(extra) - set(valid))
    if unknown:
        raise ValueError(f"{cls.__name__} has no setting {unknown}; the settings are {valid}")
    return dataclasses.replace(base, **extra)
