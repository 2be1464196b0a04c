"""Feature extractors for the sample-quality metrics of chapter 9.

Every sample-based metric (FID, KID, IS, precision/recall) compares generated
images with real ones *in the feature space of a fixed network*. The course
ships two extractors:

* :class:`MNISTClassifier`, a small CNN trained by the course on the embedded
  4,000 MNIST training digits (see :func:`train_mnist_classifier` and
  ``tools/train_mnist_classifier.py``). Its trained weights live in
  ``course_lib/assets/mnist_classifier.pt`` with a SHA-256 checksum and a
  training card in ``mnist_classifier.json``; :func:`load_mnist_classifier`
  verifies the checksum and loads with ``weights_only=True``. ``.features(x)``
  gives the 128-d penultimate activations (for FID, KID, precision/recall),
  ``.forward(x)`` the 10 logits (softmax for the Inception Score).
* :func:`inception_v3_features`: the 2048-d pool features and 1000-way logits
  of torchvision's ImageNet Inception-v3, for users who have its weights file
  (no download at run time). These are the torchvision weights, not the
  TensorFlow graph of the original FID paper, so the numbers are comparable
  with each other but *not* with published FID tables.

:func:`extract` runs any extractor over images in batches, without gradients,
and returns features, logits or softmax probabilities.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .utils import atomic_write, load_checkpoint, save_checkpoint, sha256
from .validate import check_images

ASSETS = Path(__file__).resolve().parent / "assets"
MNIST_CLASSIFIER_WEIGHTS = ASSETS / "mnist_classifier.pt"
MNIST_CLASSIFIER_CARD = ASSETS / "mnist_classifier.json"
RETRAIN_HINT = "python tools/train_mnist_classifier.py  (its training card records how long it took)"
# The SHA-256 of the shipped weights lives here, in the code, and not only in the card beside
# the file: whoever can replace the weights can edit the card too (torchvision pins its hashes
# in the source the same way). Retraining the shipped weights on purpose means updating it.
MNIST_CLASSIFIER_SHA256 = "f05a4625bcb4438621d2d74aa204050116a9cc0e115088d3b0da6a519b45a818"

INCEPTION_WEIGHTS_NAME = "inception_v3_google-0cc3c7bd.pth"
INCEPTION_WEIGHTS_URL = f"https://download.pytorch.org/models/{INCEPTION_WEIGHTS_NAME}"


# --- the course's MNIST classifier ----------------------------------------------------------


class MNISTClassifier(nn.Module):
    """A small CNN for 28x28 grey digits: ``features`` (B, 128) and ``forward`` logits (B, 10).

    Input: ``x`` of shape (B, 1, 28, 28) with values in [0, 1] (the course's
    image convention). About 57k parameters (0.2 MB in float32), so feature
    extraction stays cheap on a laptop CPU.
    """

    feature_dim = 128

    def __init__(self, dropout: float = 0.3):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # (B, 16, 14, 14)
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # (B, 32, 7, 7)
            nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),  # (B, 64, 2, 2)
            nn.Flatten(),  # (B, 256)
            nn.Linear(256, self.feature_dim), nn.ReLU(),  # (B, 128)
        )
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(self.feature_dim, 10))

    @staticmethod
    def _check(x: torch.Tensor) -> torch.Tensor:
        """The batch as float32 after checking its shape, dtype and range ([0, 1], as trained)."""
        if x.ndim != 4 or tuple(x.shape[1:]) != (1, 28, 28):
            raise ValueError(
                f"the MNIST classifier takes images (B, 1, 28, 28) in [0, 1]; got shape {tuple(x.shape)}"
            )
        return check_images(x, "the MNIST classifier's input").float()

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate activations (B, 128): the feature space of FID/KID/PR on MNIST."""
        return self.body(self._check(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits (B, 10); ``softmax`` gives p(y | x) for the Inception Score."""
        return self.head(self.features(x))


def random_affine(x: torch.Tensor, generator: torch.Generator | None = None, degrees: float = 10.0,
                  scale: float = 0.1, shift: float = 2.0) -> torch.Tensor:
    """Augment a batch (B, C, H, W): random rotation (±degrees), zoom (±scale) and shift (±pixels).

    One ``affine_grid``/``grid_sample`` call for the whole batch, so it costs far
    less than the network step it feeds.
    """
    b, _, h, w = x.shape
    u = torch.rand(b, 4, generator=generator) * 2 - 1  # (B, 4) in [-1, 1]
    angle = u[:, 0] * math.radians(degrees)
    s = 1 + u[:, 1] * scale
    cos, sin = torch.cos(angle) / s, torch.sin(angle) / s
    tx, ty = u[:, 2] * 2 * shift / w, u[:, 3] * 2 * shift / h  # pixels -> [-1, 1] grid units
    theta = torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1)  # (B, 2, 3)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, align_corners=False, padding_mode="zeros")


@torch.no_grad()
def accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 500) -> float:
    """Fraction of ``images`` whose arg-max logit equals ``labels``."""
    logits = extract(model, images, batch_size=batch_size, output="logits")
    return (logits.argmax(1) == torch.as_tensor(labels)).float().mean().item()


def train_mnist_classifier(
    epochs: int = 80, seed: int = 0, batch_size: int = 128, lr: float = 2e-3, augment: bool = True
) -> tuple[MNISTClassifier, dict[str, list[float]]]:
    """Train :class:`MNISTClassifier` on the embedded 4,000 MNIST digits (chapter 9).

    Recipe of the shipped weights: Adam (lr 2e-3, weight decay 1e-4), batch 128,
    one-cycle schedule, 80 epochs, random rotation ±10°, zoom ±10 % and shift ±2 px
    on every batch, dropout 0.3, seed 0, through :func:`course_lib.train.fit`.
    Returns the model in eval mode and the training history.
    """
    from .data import load_mnist
    from .train import fit
    from .utils import seed_everything

    gen = seed_everything(seed)
    train = load_mnist("train")
    model = MNISTClassifier()
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=1e-4)
    total = max(1, epochs * (len(train) // batch_size))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=total)

    def step(batch):
        x, y = batch  # (B, 1, 28, 28), (B,)
        if augment:
            x = random_affine(x, gen)
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        return {"loss": loss.item()}

    model.train()
    history = fit(step, (train.data, train.targets), batch_size, steps=total, seed=seed,
                  desc="MNIST classifier")
    return model.eval(), history


def save_mnist_classifier(model: MNISTClassifier, path: str | os.PathLike = MNIST_CLASSIFIER_WEIGHTS,
                          card: dict[str, Any] | None = None) -> Path:
    """Write the weights atomically, then a JSON card beside them with their SHA-256 and ``card``.

    ``path`` gets the state dict (``weights_only``-loadable); ``path`` with suffix
    ``.json`` gets ``{"sha256": ..., **card}``, also written atomically.
    """
    path = Path(path)
    save_checkpoint(path, {"state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()}})
    info = {"file": path.name, "sha256": sha256(path), **(card or {})}
    card_path = path.with_suffix(".json")
    atomic_write(card_path, lambda f: f.write((json.dumps(info, indent=2) + "\n").encode()))
    return path


def load_mnist_classifier(path: str | os.PathLike | None = None) -> MNISTClassifier:
    """The course's trained MNIST classifier, in eval mode on the CPU (chapter 9).

    The shipped weights (``path=None``) must have the SHA-256 pinned in this module,
    :data:`MNIST_CLASSIFIER_SHA256`, and the one in their card: the card sits beside the
    file it guards, so it alone cannot tell a replaced file from the original. A file of
    your own (``path=``) is checked against the card ``<path>.json`` written with it. Then
    the weights load with ``weights_only=True`` (:func:`course_lib.utils.load_checkpoint`).
    Test accuracy on the embedded 1,000-digit split is recorded in the card.
    A missing, damaged or modified file raises an error saying how to restore it.
    """
    shipped = path is None or Path(path).resolve() == Path(MNIST_CLASSIFIER_WEIGHTS).resolve()
    path = Path(MNIST_CLASSIFIER_WEIGHTS) if path is None else Path(path)
    card_path = path.with_suffix(".json")
    if not path.is_file() or not card_path.is_file():
        missing = path if not path.is_file() else card_path
        raise FileNotFoundError(
            f"The MNIST classifier file {missing} is missing. It ships with course_lib: reinstall "
            f"it (pip install -e .), or retrain the weights with `{RETRAIN_HINT}`."
        )
    try:
        expected = json.loads(card_path.read_text())["sha256"]
    except (ValueError, KeyError) as err:
        raise RuntimeError(f"{card_path} is not a valid classifier card ({err}); retrain with `{RETRAIN_HINT}`.") from err
    actual = sha256(path)
    if shipped and actual != MNIST_CLASSIFIER_SHA256:
        raise RuntimeError(
            f"The shipped classifier {path} was modified: its SHA-256 is {actual[:16]}..., but "
            f"course_lib/features.py pins {MNIST_CLASSIFIER_SHA256[:16]}... (MNIST_CLASSIFIER_SHA256)"
            + (" and its card was edited to match" if expected == actual else "")
            + f". Restore both files from git (git checkout -- course_lib/assets/{path.stem}.*) or "
            f"reinstall course_lib. If you retrained the weights on purpose (`{RETRAIN_HINT}`), set "
            f"MNIST_CLASSIFIER_SHA256 to {actual} and commit it with the new card."
        )
    if actual != expected:
        raise RuntimeError(
            f"Checksum mismatch for {path}: SHA-256 {actual[:16]}..., expected {expected[:16]}... "
            f"The file is corrupt or was changed. Restore it from git (git checkout -- {path.name}) "
            f"or retrain with `{RETRAIN_HINT}`."
        )
    state = load_checkpoint(path)
    model = MNISTClassifier()
    try:
        model.load_state_dict(state["state_dict"])
    except (KeyError, RuntimeError) as err:
        raise RuntimeError(f"{path} does not hold MNISTClassifier weights ({err}); retrain with `{RETRAIN_HINT}`.") from err
    return model.eval()


def mnist_classifier_card(path: str | os.PathLike | None = None) -> dict[str, Any]:
    """The training card of the shipped classifier: checksum, recipe, measured test accuracy."""
    path = MNIST_CLASSIFIER_WEIGHTS if path is None else Path(path)
    return json.loads(path.with_suffix(".json").read_text())


# --- Inception-v3 (torchvision weights, if the user has them) --------------------------------


class InceptionFeatures(nn.Module):
    """torchvision Inception-v3 as a feature extractor: ``features`` (B, 2048), ``forward`` logits (B, 1000).

    Takes images (B, 1 or 3, H, W) in [0, 1] of any size: grey is repeated to 3
    channels, the batch is resized bilinearly to 299x299 and scaled to [-1, 1]
    (the input convention of the Google weights). ``features`` is the 2048-d
    average-pool output that FID uses (Heusel et al., 2017).
    """

    feature_dim = 2048

    def __init__(self, net: nn.Module):
        super().__init__()
        self.fc = net.fc
        net.fc = nn.Identity()
        self.net = net

    def _prepare(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] not in (1, 3):
            raise ValueError(f"Inception takes images (B, 1|3, H, W) in [0, 1]; got shape {tuple(x.shape)}")
        x = check_images(x, "Inception's input", channels=(1, 3)).float()
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)  # (B, 3, H, W)
        x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
        return 2 * x - 1  # (B, 3, 299, 299) in [-1, 1]

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self._prepare(x))  # (B, 2048): pool features, fc removed

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))  # (B, 1000)


def inception_v3_features(weights_path: str | os.PathLike | None = None) -> InceptionFeatures:
    """Inception-v3 pool features from a torchvision weights file on disk (no download).

    ``weights_path`` defaults to torch's hub cache,
    ``$TORCH_HOME/hub/checkpoints/inception_v3_google-0cc3c7bd.pth``, where
    ``torchvision.models.inception_v3(weights="IMAGENET1K_V1")`` saves it when
    run once with a network. Loaded with ``weights_only=True``; eval mode, CPU.
    """
    from torchvision.models import inception_v3

    if weights_path is None:
        weights_path = Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_WEIGHTS_NAME
    weights_path = Path(weights_path)
    if not weights_path.is_file():
        raise FileNotFoundError(
            f"No Inception-v3 weights at {weights_path}. This course never downloads at run time. "
            "Get the file once with a network, either by running\n"
            "    python -c \"import torchvision; torchvision.models.inception_v3(weights='IMAGENET1K_V1')\"\n"
            f"(it saves {INCEPTION_WEIGHTS_NAME} under {Path(torch.hub.get_dir()) / 'checkpoints'}), "
            f"or by downloading {INCEPTION_WEIGHTS_URL} and passing weights_path=. "
            "Offline, use load_mnist_classifier() for MNIST-like images."
        )
    state = load_checkpoint(weights_path)
    state = state.get("state_dict", state)
    net = inception_v3(weights=None, aux_logits=True, init_weights=False, transform_input=False)
    try:
        net.load_state_dict(state)
    except RuntimeError as err:
        raise RuntimeError(f"{weights_path} does not hold torchvision Inception-v3 weights ({err}).") from err
    net.aux_logits, net.AuxLogits = False, None  # not needed for features
    return InceptionFeatures(net).eval()


# --- running an extractor ---------------------------------------------------------------------


OUTPUTS = ("features", "logits", "probs")


@torch.no_grad()
def extract(
    extractor: nn.Module, images: torch.Tensor, batch_size: int = 500, output: str = "features",
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Run ``extractor`` over ``images`` (N, C, H, W) in batches; return a float32 CPU tensor.

    * ``output="features"`` (N, d): ``extractor.features(x)`` if it has that
      method, else ``extractor(x)`` (any ``nn.Module`` or function works);
    * ``output="logits"`` (N, K): ``extractor(x)``;
    * ``output="probs"`` (N, K): ``softmax(extractor(x))``, the p(y | x) of the
      Inception Score.

    The extractor is put in eval mode for the call and restored afterwards. ``images``
    must follow the course's convention, floats in [0, 1] (checked by
    :func:`course_lib.validate.check_images`): a network fed 0..255 or [-1, 1] images
    gives features that are silently wrong.
    """
    if output not in OUTPUTS:
        raise ValueError(f"output={output!r}; choose one of {OUTPUTS}")
    images = check_images(images, "images")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    fn = extractor.features if output == "features" and hasattr(extractor, "features") else extractor
    was_training = getattr(extractor, "training", None)
    if was_training:
        extractor.eval()
    try:
        outs = []
        for start in range(0, len(images), batch_size):
            x = images[start : start + batch_size]
            if device is not None:
                x = x.to(device)
            out = fn(x)
            if output == "probs":
                out = out.softmax(dim=1)
            outs.append(out.float().cpu())
    finally:
        if was_training:
            extractor.train()
    result = torch.cat(outs)
    if result.ndim != 2:
        raise ValueError(f"the extractor must return (B, d) outputs; got shape {tuple(result.shape)}")
    return result


def probabilities(classifier: nn.Module, images: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """Softmax class probabilities p(y | x), shape (N, K): the input of :func:`course_lib.metrics.inception_score`."""
    return extract(classifier, images, batch_size=batch_size, output="probs")
