"""Chapter 12: the two digit domains, PatchGAN, pix2pix/CycleGAN losses, the translators."""

import pytest
import torch
import torch.nn.functional as F

from course_lib import data
from course_lib import translation as T


def test_to_mnist_frame_puts_the_centre_of_mass_at_the_centre_and_fills_the_box():
    img = torch.zeros(2, 1, 8, 8)
    img[0, 0, 1:7, 2:5] = 1  # 6 tall, 3 wide
    img[1, 0, 3:5, 0:8] = torch.linspace(0.2, 1, 8)  # wide and uneven
    out = data.to_mnist_frame(img)
    assert out.shape == (2, 1, 28, 28) and 0 <= out.min() and out.max() <= 1
    rows, cols = torch.arange(28.0).view(28, 1), torch.arange(28.0).view(1, 28)
    for o in out[:, 0]:
        m = o.sum()
        assert abs(float((o * rows).sum() / m) - 13.5) <= 0.5 and abs(float((o * cols).sum() / m) - 13.5) <= 0.5
    ink = out[0, 0] > 0.05
    assert 19 <= int(ink.any(1).sum()) <= 21  # the taller side fills the 20-pixel box
    assert 19 <= int((out[1, 0] > 0.05).any(0).sum()) <= 21  # the wider side, for the wide one
    with pytest.raises(ValueError, match="blank"):
        data.to_mnist_frame(torch.zeros(1, 1, 8, 8))


def test_digits_as_mnist_splits_are_stratified_and_disjoint():
    x, y = data.digits_as_mnist()
    xtr, ytr = data.digits_as_mnist("train")
    xte, yte = data.digits_as_mnist("test")
    assert x.shape == (1797, 1, 28, 28) and len(xtr) == 1297 and len(xte) == 500
    assert torch.bincount(yte).min() >= 48
    # no test image is among the training ones
    d = torch.cdist(xte.flatten(1)[:50], xtr.flatten(1)).min(1).values
    assert (d > 0).all()


def test_mnist_as_digits_counts_ink_in_4x4_blocks():
    x = data.load_mnist("test").data[:20]
    d = T.mnist_as_digits(x)
    assert d.shape == (20, 1, 8, 8)
    assert torch.allclose(d * 16, (d * 16).round())  # counts of 16 pixels
    assert (d[:, 0].amax((1, 2)) > 0).all()
    thick, thin = T.mnist_as_digits(x, 0.15), T.mnist_as_digits(x, 0.5)
    assert thick.mean() > thin.mean()  # a lower threshold is a heavier pen
    # the ink touches the top and bottom rows for tall digits, as scikit-learn's always do
    assert ((d[:, 0, 0].sum(1) > 0) & (d[:, 0, 7].sum(1) > 0)).float().mean() > 0.8


def test_load_digits_split_is_the_split_digits_as_mnist_renders():
    raw, (x, y) = data.load_digits("test"), data.digits_as_mnist("test")
    assert raw.data.shape == (500, 1, 8, 8) and torch.equal(raw.targets, y)
    assert torch.allclose(data.to_mnist_frame(raw.data), x)


def test_scikit_learn_digits_hold_the_same_ink_whatever_the_digit_and_mnist_through_one_pen_does_not():
    """The fact ink-matched pens rest on: a scikit-learn one holds as much ink as a zero; an
    MNIST one through a fixed pen about half as much."""
    sk = data.load_digits()
    sk_ink = torch.stack([T.ink(sk.data[sk.targets == c]).mean() for c in range(10)])
    assert sk_ink.max() / sk_ink.min() < 1.1
    mn = data.load_mnist("train")
    one_pen = T.ink(T.mnist_as_digits(mn.data, 0.3))
    assert one_pen[mn.targets == 1].mean() < 0.6 * one_pen[mn.targets == 0].mean()


def test_pen_ladder_goes_from_light_to_heavy():
    x = data.load_mnist("test").data[:30]
    pens = T.pen_ladder(x)
    assert pens.shape == (7, 30, 1, 32, 32) and set(pens.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(F.avg_pool2d(pens[1], 4), T.mnist_as_digits(x, 0.3))
    ink = pens.sum((2, 3, 4))  # (7, 30)
    assert (ink[1:] >= ink[:-1]).all() and (ink[-1] > ink[2]).all()


def test_ink_matched_pairs_draw_each_input_with_the_pen_closest_to_the_drawn_ink():
    """Each input is its own target drawn with the pen whose 8x8 ink is closest to the ink
    drawn for it: a pen chosen at random, the farthest pen, or a shuffled pairing all fail."""
    test = data.load_mnist("test")
    x, y = test.data[:40], test.targets[:40]
    pens = F.avg_pool2d(T.pen_ladder(x).flatten(0, 1), 4).view(7, 40, 1, 8, 8)
    totals = pens.sum((2, 3, 4))  # (7, 40)
    for level in (6.0, 19.5, 40.0):
        src, tgt = T.ink_matched_pairs(x, torch.full((5,), level), copies=2, seed=3)
        assert src.shape == tgt.shape == (80, 1, 28, 28) and torch.equal(tgt, torch.cat([x, x]))
        pen = (totals - level).abs().argmin(0)
        want = data.to_mnist_frame(pens[pen, torch.arange(40)])
        assert torch.allclose(src[:40], want) and torch.allclose(src[40:], want)
        if level == 19.5:  # scikit-learn's typical ink: ones need heavier pens than zeros
            assert pen[y == 1].float().mean() > pen[y == 0].float().mean() + 1
    # a heavier reference ink gives heavier inputs
    light = T.ink_matched_pairs(x, torch.full((3,), 10.0))[0].sum()
    heavy = T.ink_matched_pairs(x, torch.full((3,), 30.0))[0].sum()
    assert heavy > light
    with pytest.raises(ValueError, match="reference"):
        T.ink_matched_pairs(x, torch.empty(0))
    assert T.ink(torch.ones(2, 1, 8, 8)).tolist() == [64.0, 64.0]
    with pytest.raises(ValueError, match="shape"):
        T.ink(torch.ones(2, 8, 8))
    with pytest.raises(ValueError, match="copies"):
        T.ink_matched_pairs(x, torch.ones(3), copies=0)


def test_the_translators_pens_draw_from_the_scikit_learn_training_split():
    ink = T.digits_ink("train")
    assert ink.shape == (1297,) and torch.allclose(ink, data.load_digits("train").data.sum((1, 2, 3)))


def test_patch_discriminator_sees_an_18_pixel_patch():
    torch.manual_seed(0)
    D = T.PatchDiscriminator(1, width=8)
    x = torch.rand(1, 1, 28, 28, requires_grad=True)
    out = D(x)
    assert out.shape == (1, 1, 7, 7)
    out[0, 0, 3, 3].backward()
    rows = (x.grad[0, 0].abs() > 0).any(1).nonzero().flatten()
    cols = (x.grad[0, 0].abs() > 0).any(0).nonzero().flatten()
    assert len(rows) == len(cols) == T.PatchDiscriminator.RECEPTIVE_FIELD
    with pytest.raises(ValueError, match="channel"):
        T.PatchDiscriminator(2)(x)


def test_pix2pix_losses_are_the_papers():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(4, 1, 7, 7, generator=g)
    fake, target = torch.rand(4, 1, 28, 28, generator=g), torch.rand(4, 1, 28, 28, generator=g)
    ref = -torch.log(torch.sigmoid(logits)).mean() + 100 * (fake - target).abs().mean()
    assert torch.allclose(T.pix2pix_g_loss(logits, fake, target), ref, atol=1e-5)
    real = torch.randn(4, 1, 7, 7, generator=g)
    ref_d = 0.5 * (-torch.log(torch.sigmoid(real)).mean() - torch.log(1 - torch.sigmoid(logits)).mean())
    assert torch.allclose(T.pix2pix_d_loss(real, logits), ref_d, atol=1e-5)


def test_lsgan_losses():
    r, f = torch.tensor([1.0, 0.5]), torch.tensor([0.0, 0.5])
    assert torch.isclose(T.lsgan_d_loss(r, f), torch.tensor(0.5 * (0.125 + 0.125)))
    assert torch.isclose(T.lsgan_g_loss(f), torch.tensor(0.625))


def test_cycle_loss_is_zero_for_inverse_maps_and_not_for_the_wrong_pair():
    G = lambda x: 2 * x + 1  # noqa: E731
    F_ = lambda y: (y - 1) / 2  # noqa: E731
    x, y = torch.rand(3, 1, 4, 4), torch.rand(3, 1, 4, 4)
    assert T.cycle_consistency_loss(G, F_, x, y) < 1e-6
    # a map pair that is not inverse: the loss is the mean absolute round-trip error
    H = lambda y: y / 2  # noqa: E731
    ref = (H(G(x)) - x).abs().mean() + (G(H(y)) - y).abs().mean()
    assert torch.isclose(T.cycle_consistency_loss(G, H, x, y), ref)
    assert T.identity_loss(lambda t: t, lambda t: t, x, y) == 0


@pytest.mark.parametrize("method", T.METHODS)
def test_every_method_trains_and_translates(method):
    G = T.train_translator(method, steps=2, seed=0, config={"channels": (8, 16), "width_d": 8, "batch_size": 8})
    assert not G.training and len(G.history["step"]) == 2
    x = data.digits_as_mnist("test")[0][:5]
    out = T.translate(G, x)
    assert out.shape == (5, 1, 28, 28) and 0 <= out.min() and out.max() <= 1
    assert all(torch.isfinite(torch.tensor(G.history["loss"])))


def test_translator_run_is_checkpointed_and_reloaded(tmp_path):
    """A finished run reloads from its checkpoint without training (exact resume of an
    interrupted run is tested for every Run in tests/test_train.py); another seed's file is
    an error, not a silent retrain."""
    cfg = {"channels": (8, 16), "width_d": 8, "batch_size": 8}
    first = T.train_translator("semi", steps=3, seed=1, config=cfg, checkpoint=tmp_path / "r.pt")
    again = T.train_translator("semi", steps=3, seed=1, config=cfg, checkpoint=tmp_path / "r.pt")
    assert again.run.step == 3
    for a, b in zip(first.state_dict().values(), again.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    with pytest.raises(ValueError, match="seed"):
        T.train_translator("semi", steps=3, seed=2, config=cfg, checkpoint=tmp_path / "r.pt")


def test_bad_config_and_method():
    with pytest.raises(ValueError, match="method"):
        T.train_translator("unit", steps=1)
    with pytest.raises(ValueError, match="paired_loss"):
        T.TranslatorConfig(paired_loss="l2")
    with pytest.raises(ValueError, match="pens"):
        T.TranslatorConfig(pens="felt")
    with pytest.raises(ValueError, match="copies"):
        T.TranslatorConfig(copies=0)
    with pytest.raises(ValueError, match="threshold"):
        T.mnist_as_digits(torch.rand(1, 1, 28, 28), 1.5)


def test_the_independent_reader_reads_mnist_and_is_fooled_by_blur():
    test = data.load_mnist("test")
    acc = T.svc_accuracy(test.data[:300], test.targets[:300])
    assert acc > 0.9
    blurred = F.avg_pool2d(test.data[:300], 7, 1, 3)
    assert T.svc_accuracy(blurred, test.targets[:300]) < acc - 0.1


def test_pairs_are_aligned_source_to_target():
    """Each synthetic source is its own target through the optdigits process (a shuffled or
    misaligned pairing would fail); each low-res source is its target's block average, scaled up."""
    x = data.load_mnist("test").data[:6]
    src, tgt = T.synthetic_pairs(x, (0.2, 0.6))
    assert torch.equal(tgt, torch.cat([x, x]))
    assert torch.allclose(src[6:], data.to_mnist_frame(T.mnist_as_digits(x, 0.6)))
    low, target = T.low_res_pairs(x)
    assert torch.equal(target, x)
    small = F.avg_pool2d(x, 7)  # (6, 1, 4, 4)
    assert torch.allclose(low, F.interpolate(small, size=(28, 28), mode="bilinear").clamp(0, 1))


def test_evaluate_scores_real_digits_as_real():
    """The MNIST test digits against themselves: FID ~ 0, both readers as accurate as measured
    directly; the same digits with labels shifted are read wrong."""
    from course_lib import features

    test = data.load_mnist("test")
    r = T.evaluate(test.data, test.targets)
    assert r["fid"] < 1e-3
    assert r["svc"] == pytest.approx(T.svc_accuracy(test.data, test.targets))
    assert r["cnn"] == pytest.approx(features.accuracy(features.load_mnist_classifier(), test.data, test.targets))
    assert T.evaluate(test.data[:300], (test.targets[:300] + 1) % 10)["svc"] < 0.1
