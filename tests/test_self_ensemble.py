"""Chapter 12: the shift self-ensemble and the entropy-matched sharpening of a translator."""

import pytest
import torch
from torch import nn

from course_lib import recipes
from course_lib import self_ensemble as SE
from course_lib.data import load_mnist
from course_lib.distributions import bernoulli_entropy


def _circular_conv(seed: int = 0) -> nn.Conv2d:
    torch.manual_seed(seed)
    return nn.Conv2d(1, 1, 3, padding=1, padding_mode="circular")


def test_the_ensemble_of_a_shift_equivariant_map_is_the_map():
    conv, x = _circular_conv(), torch.rand(3, 1, 12, 12)
    with torch.no_grad():
        assert torch.allclose(SE.shift_ensemble(conv, x, 2), conv(x), atol=1e-6)
        # without shifting the outputs back, the "ensemble" is a blur of the map: not the map
        wrong = sum(conv(torch.roll(x, (dy, dx), (2, 3))) for dy in (-1, 0, 1) for dx in (-1, 0, 1)) / 9
        assert not torch.allclose(wrong, conv(x), atol=1e-3)


def test_the_ensemble_of_a_position_dependent_map_is_the_mean_of_the_shifted_back_maps():
    weight = torch.rand(1, 1, 6, 6)

    def fn(x):  # not shift-equivariant
        return x * weight

    x = torch.rand(2, 1, 6, 6)
    by_hand = torch.zeros_like(x)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            by_hand += torch.roll(torch.roll(x, (dy, dx), (2, 3)) * weight, (-dy, -dx), (2, 3)) / 9
    assert torch.allclose(SE.shift_ensemble(fn, x, 1), by_hand, atol=1e-6)
    assert torch.equal(SE.shift_ensemble(fn, x, 0), fn(x))
    with pytest.raises(ValueError, match="radius"):
        SE.shift_ensemble(fn, x, -1)
    with pytest.raises(ValueError, match="H, W"):
        SE.shift_ensemble(fn, x, 3)


def test_sharpness_matches_the_references_mean_entropy_not_its_mean_intensity():
    torch.manual_seed(0)
    logits = 2 * torch.randn(4000)
    # logits that already are the reference's: k = 1
    reference = torch.sigmoid(logits)
    assert SE.sharpness_for_entropy(logits, reference) == pytest.approx(1.0, rel=1e-4)
    # a sharper reference of about the same mean intensity (0.5): k > 1, found by entropy
    sharp = torch.sigmoid(3 * logits)
    k = SE.sharpness_for_entropy(logits, sharp)
    assert k == pytest.approx(3.0, rel=1e-3)
    assert abs(sharp.mean() - reference.mean()) < 0.01  # matching the mean alone could not tell them apart
    got = bernoulli_entropy(torch.sigmoid(k * logits)).mean()
    assert float(got) == pytest.approx(float(bernoulli_entropy(sharp).mean()), rel=1e-4)
    # a reference blurrier than any k in the bounds can reach is an error, not a clipped k
    with pytest.raises(ValueError, match="no k"):
        SE.sharpness_for_entropy(logits, torch.full((10,), 0.5), bounds=(0.5, 2.0))
    with pytest.warns(UserWarning, match="no k"):  # or, asked to clip, the nearer bound
        assert SE.sharpness_for_entropy(logits, sharp, bounds=(0.5, 2.0), clip=True) == 2.0
    with pytest.warns(UserWarning, match="no k"):
        assert SE.sharpness_for_entropy(logits, torch.full((10,), 0.5), bounds=(0.5, 2.0), clip=True) == 0.5


class _Affine(nn.Module):
    """A stand-in translator: logits = a * (2x - 1)."""

    def __init__(self, a: float = 1.0):
        super().__init__()
        self.a = nn.Parameter(torch.tensor(a))

    def logits(self, x):
        return self.a * (2 * x - 1)


def test_sharpened_ensemble_calibrates_to_the_reference_and_saves_its_sharpness():
    model = SE.SharpenedEnsemble(_Affine(1.0), radius=1)
    sources = torch.rand(50, 1, 8, 8)
    reference = torch.sigmoid(4 * (2 * torch.rand(50, 1, 8, 8) - 1))
    k = model.calibrate(sources, reference)
    assert 3.0 < k < 5.5  # about 4: the reference is the same map, four times as sharp
    with torch.no_grad():
        out = model(sources)
    assert out.shape == sources.shape and 0 <= out.min() and out.max() <= 1
    assert float(bernoulli_entropy(out).mean()) == pytest.approx(float(bernoulli_entropy(reference).mean()), rel=1e-3)
    state = model.state_dict()
    assert float(state["sharpness"]) == pytest.approx(k) and "model.a" in state
    again = SE.SharpenedEnsemble(_Affine(1.0), radius=1)
    again.load_state_dict(state)
    with torch.no_grad():
        assert torch.equal(again(sources), out)
    with pytest.raises(TypeError, match="logits"):
        SE.SharpenedEnsemble(nn.Identity())


def test_the_recipe_sharpens_its_translator_to_mnists_mean_entropy():
    model = recipes.train_digits_to_mnist(steps=30, seed=0, config={"channels": (8, 16), "batch_size": 8, "lr": 3e-3},
                                          calibration=16)
    assert isinstance(model, SE.SharpenedEnsemble) and not model.training and model.radius == 1
    assert len(model.history["step"]) == 30
    from course_lib.data import digits_as_mnist

    with torch.no_grad():
        out = model(digits_as_mnist("train")[0][:16])
    target = float(bernoulli_entropy(load_mnist("train").data).mean())
    assert float(bernoulli_entropy(out).mean()) == pytest.approx(target, rel=1e-3)
    plain = recipes.train_digits_to_mnist(steps=2, seed=0, config={"channels": (8, 16), "batch_size": 8},
                                          radius=0, calibration=0)
    assert float(plain.sharpness) == 1.0
    with pytest.raises(ValueError, match="calibration"):
        recipes.train_digits_to_mnist(steps=2, calibration=-1)


def test_the_command_lines_translator_is_saved_with_its_sharpness(tmp_path):
    from course_lib import run as CLI
    from course_lib.translation import Translator

    CLI.main(["translator", "--steps", "2", "--batch-size", "8", "--out", str(tmp_path)])
    state = torch.load(tmp_path / "final.pt", weights_only=True)["model"]
    model = SE.SharpenedEnsemble(Translator(recipes.DIGITS_TO_MNIST_CONFIG.channels), radius=1)
    model.load_state_dict(state)  # strict: the U-Net under model., the factor beside it
    # the factor saved is the calibrated one (1.0, the uncalibrated default, would fail this):
    # the loaded translator gives the recipe's calibration digits MNIST's mean entropy
    from course_lib.data import digits_as_mnist

    with torch.no_grad():
        out = model.eval()(digits_as_mnist("train")[0][:recipes.DIGITS_TO_MNIST_CALIBRATION])
    target = SE.mean_entropy(load_mnist("train").data)
    assert SE.mean_entropy(out) == pytest.approx(target, rel=1e-3)
