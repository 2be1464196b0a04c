"""Experiment tracking with TensorBoard (chapter 13).

:class:`TensorBoard` writes what :class:`course_lib.train.Run` records (every logged number as a
scalar against the step), the run's config as text, and sample grids, with PyTorch's own
``torch.utils.tensorboard`` writer: ``tensorboard --logdir DIR`` shows them, and
:func:`read_events` reads them back with TensorBoard's own reader. Only rank 0 of a multi-process
run writes. Everything is local files: nothing is sent anywhere.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch


class TensorBoard:
    """A TensorBoard event file in ``logdir`` (created if missing).

    ``every``: write the scalars of one step in ``every`` (the event file of a 10,000-step run
    stays small). ``config`` is written once, as JSON text under the tag ``config``; a run logging into a
    shared writer adds its own config under ``run`` (:meth:`config`).
    """

    def __init__(self, logdir: str | os.PathLike, config: Mapping[str, Any] | None = None, every: int = 10):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as err:  # torch's writer needs the tensorboard package
            raise ImportError("TensorBoard logging needs `pip install tensorboard`") from err
        if every < 1:
            raise ValueError(f"every={every} must be >= 1")
        self.logdir, self.every = Path(logdir), every
        self.writer = SummaryWriter(log_dir=str(self.logdir))
        self._texts: set[str] = set()
        if config:
            self.config(config)

    def config(self, config: Mapping[str, Any], tag: str = "config") -> None:
        """``config`` as JSON text under ``tag``, once per tag."""
        if tag not in self._texts:
            self._texts.add(tag)
            text = json.dumps(dict(config), indent=1, default=str)
            self.writer.add_text(tag, f"```\n{text}\n```", 0)

    def scalars(self, step: int, values: Mapping[str, float], force: bool = False) -> None:
        """Each value under its own tag (``loss``, ``kl``, ...) at ``step``, one step in ``every``."""
        if force or step % self.every == 0:
            for key, value in values.items():
                self.writer.add_scalar(key, float(value), step)

    def images(self, step: int, tag: str, images: torch.Tensor, nrow: int = 8) -> None:
        """A grid of ``images`` (B, C, H, W) in [0, 1] under ``tag`` at ``step``."""
        from torchvision.utils import make_grid

        if images.ndim != 4:
            raise ValueError(f"images must be (B, C, H, W), got {tuple(images.shape)}")
        grid = make_grid(images.detach().float().clamp(0, 1).cpu(), nrow=nrow, padding=1)
        self.writer.add_image(tag, grid, step)

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


_ACTIVE: list[TensorBoard] = []


@contextmanager
def log_to(logdir: str | os.PathLike, config: Mapping[str, Any] | None = None) -> Iterator[TensorBoard]:
    """Inside the block, every :class:`course_lib.train.Run` that is given no ``tensorboard``
    logs to this one (how the command line's ``--tensorboard`` reaches any recipe), and sample
    grids go to it too (:func:`active`). Closed at the end."""
    board = TensorBoard(logdir, config)
    _ACTIVE.append(board)
    try:
        yield board
    finally:
        _ACTIVE.remove(board)
        board.close()


def active() -> TensorBoard | None:
    """The writer of the innermost :func:`log_to` block, if any."""
    return _ACTIVE[-1] if _ACTIVE else None


def read_events(logdir: str | os.PathLike) -> dict[str, Any]:
    """What the event files in ``logdir`` hold, read with TensorBoard's own ``EventAccumulator``:
    ``{"scalars": {tag: [(step, value), ...]}, "images": {tag: [(step, array (H, W, C) uint8), ...]},
    "text": {tag: [str, ...]}}``."""
    import io

    import numpy as np
    from PIL import Image
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(logdir), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    acc.Reload()
    tags = acc.Tags()
    scalars = {t: [(e.step, e.value) for e in acc.Scalars(t)] for t in tags.get("scalars", [])}
    images = {t: [(e.step, np.asarray(Image.open(io.BytesIO(e.encoded_image_string)))) for e in acc.Images(t)]
              for t in tags.get("images", [])}
    text = {}
    for t in tags.get("tensors", []):
        if t.endswith("/text_summary"):
            text[t.removesuffix("/text_summary")] = [
                e.tensor_proto.string_val[0].decode() for e in acc.Tensors(t)
            ]
    return {"scalars": scalars, "images": images, "text": text}
