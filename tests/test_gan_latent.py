"""course_lib.gan_latent: chapter 4's latent-walk score fails an untrained generator and noise."""

import pytest
import torch

from course_lib import features, gan, gan_latent, recipes
from course_lib.data import load_mnist

FAST_BAR, FULL_BAR = 0.05, 0.2  # chapter 4's bars on the precision of the frames along slerp paths


def _paths(pairs=16, n=10, seed=7):
    g = torch.Generator().manual_seed(seed)
    z0, z1 = torch.randn(pairs, 100, generator=g), torch.randn(pairs, 100, generator=g)
    return gan_latent.interpolation_paths(z0, z1, n)


def _real_features(clf):
    return features.extract(clf, load_mnist("test").data)  # all 1,000, as chapter 4


class _RealDigits:
    """A stand-in for a perfect generator: 'decodes' any code to a real held-out digit."""

    def __init__(self):
        self.digits = load_mnist("train").data  # other digits than the reference set

    def sample(self, n, z=None):
        return self.digits[:n]


def test_paths_have_the_shape_and_ends_of_the_codes():
    paths = _paths(3, 5)
    assert paths.shape == (3, 5, 100)
    g = torch.Generator().manual_seed(7)
    z0 = torch.randn(3, 100, generator=g)
    assert torch.allclose(paths[:, 0], z0, atol=1e-5)
    with pytest.raises(ValueError):
        gan_latent.interpolation_paths(z0, z0[:2], 5)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_untrained_generators_fail_chapter_4s_bar(seed):
    clf = features.load_mnist_classifier()
    G = recipes.mnist_gan_trainer(recipes.DCGAN_CONFIG, seed=seed).generator
    assert gan_latent.path_precision(G, clf, _paths(), _real_features(clf)) < FAST_BAR / 2


def test_real_digits_pass_chapter_4s_bar():
    clf = features.load_mnist_classifier()
    assert gan_latent.path_precision(_RealDigits(), clf, _paths(), _real_features(clf)) > 2 * FULL_BAR


def test_noise_images_fail_chapter_4s_bar():
    clf = features.load_mnist_classifier()

    class Noise(gan.Generator):
        def sample(self, n, z=None):
            return torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(0))

    noise = Noise()
    assert features.probabilities(clf, noise.sample(160)).max(1).values.mean() > 0.8  # "confident"
    assert gan_latent.path_precision(noise, clf, _paths(), _real_features(clf)) < FAST_BAR / 2
