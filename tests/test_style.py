"""Chapter 12: Gram matrices, Gatys's losses, random features, the VGG-19 plug-in, synthesis."""

import pytest
import torch
from torch import nn

from course_lib import style as S


def test_gram_matrix_is_the_mean_over_positions_of_outer_products():
    g = torch.Generator().manual_seed(0)
    f = torch.randn(2, 3, 4, 5, generator=g, dtype=torch.float64)
    G = S.gram_matrix(f)
    # independent: an explicit sum of outer products over the 20 positions, divided by 20
    ref = torch.zeros(2, 3, 3, dtype=torch.float64)
    for b in range(2):
        for i in range(4):
            for j in range(5):
                v = f[b, :, i, j]
                ref[b] += torch.outer(v, v)
    assert torch.allclose(G, ref / 20)
    assert torch.allclose(G, G.transpose(1, 2))


def test_gram_matrix_compares_across_sizes():
    """A texture and a 4x larger tiling of it have the same normalised Gram (not the raw one)."""
    g = torch.Generator().manual_seed(0)
    f = torch.randn(1, 4, 6, 6, generator=g)
    big = f.repeat(1, 1, 2, 2)
    assert torch.allclose(S.gram_matrix(f), S.gram_matrix(big), atol=1e-5)


def test_style_loss_is_gatys_E_l():
    """Σ w_l (G − A)²/(4 N²) with normalised Grams equals Gatys's 1/(4N²M²) Σ (raw G − raw A)²."""
    g = torch.Generator().manual_seed(0)
    f = [torch.randn(1, 3, 4, 4, generator=g, dtype=torch.float64), torch.randn(1, 5, 2, 3, generator=g,
                                                                                dtype=torch.float64)]
    t = [torch.randn(1, 3, 4, 4, generator=g, dtype=torch.float64), torch.randn(1, 5, 2, 3, generator=g,
                                                                                dtype=torch.float64)]
    loss = S.style_loss(f, [S.gram_matrix(x) for x in t], weights=[0.3, 0.7])
    ref = 0
    for w, a, b in zip([0.3, 0.7], f, t, strict=True):
        n, m = a.shape[1], a.shape[2] * a.shape[3]
        ga, gb = a.flatten(2) @ a.flatten(2).transpose(1, 2), b.flatten(2) @ b.flatten(2).transpose(1, 2)
        ref = ref + w * (ga - gb).square().sum() / (4 * n**2 * m**2)
    assert torch.allclose(loss, ref)
    with pytest.raises(ValueError, match="target Gram"):
        S.style_loss(f, [S.gram_matrix(t[0])])


def test_random_features_are_fixed_zero_mean_unit_norm_and_keep_the_size():
    net = S.RandomFeatures(in_ch=1, sizes=(3, 5), filters=8, seed=0)
    for conv in net.convs:
        w = conv.weight.flatten(1)
        assert torch.allclose(w.mean(1), torch.zeros(8), atol=1e-6)
        assert torch.allclose(w.norm(dim=1), torch.ones(8), atol=1e-5)
        assert not conv.weight.requires_grad
    out = net(torch.rand(2, 1, 17, 20))
    assert [o.shape for o in out] == [(2, 8, 17, 20)] * 2
    assert torch.equal(S.RandomFeatures(1, (3, 5), 8, seed=0).convs[1].weight, net.convs[1].weight)
    with pytest.raises(ValueError, match="odd"):
        S.RandomFeatures(1, (4,))


def test_vgg19_plug_in_matches_torchvision(tmp_path):
    """A user's VGG-19 file loads into the feature network; random weights of the same
    architecture stand in for ImageNet's, and the layer outputs match torchvision's own net."""
    from torchvision.models import vgg19

    torch.manual_seed(0)
    net = vgg19(weights=None)
    path = tmp_path / "vgg19.pth"
    # the torchvision file's keys, less the classifier (which the loader ignores anyway)
    torch.save({k: v for k, v in net.state_dict().items() if k.startswith("features.")}, path)
    feats = S.vgg19_features(path, layers=("conv1_1", "conv2_1"), pool="max")
    x = torch.rand(1, 1, 32, 32)
    h = (x.expand(-1, 3, -1, -1) - feats.mean) / feats.std
    ref = [net.features[:2](h), net.features[:7](h)]  # ReLU after conv1_1 and after conv2_1
    out = feats(x)
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(out, ref, strict=True))
    avg = S.vgg19_features(path, layers=("conv2_1",))
    assert isinstance(avg.features[4], nn.AvgPool2d)  # Gatys's average pooling by default
    with pytest.raises(FileNotFoundError, match="VGG19_Weights"):
        S.vgg19_features(tmp_path / "missing.pth")
    with pytest.raises(ValueError, match="unknown layers"):
        S.vgg19_features(path, layers=("conv9_9",))
    torch.save({"features.0.weight": torch.zeros(3)}, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match="not a VGG-19"):
        S.vgg19_features(tmp_path / "bad.pth")


def test_texture_synthesis_matches_the_gram_of_a_held_out_network():
    """Synthesis lowers the Gram distance to the target under *another* random network (other
    seed) far below that of the noise it starts from: it matched the texture, not the filters."""
    g = torch.Generator().manual_seed(0)
    # a striped texture with noise
    cols = torch.arange(32).float()
    target = (0.5 + 0.4 * torch.sin(cols / 2)).expand(1, 1, 32, 32) + 0.05 * torch.randn(1, 1, 32, 32, generator=g)
    target = target.clamp(0, 1)
    net = S.RandomFeatures(1, (3, 7), 16, seed=0)
    held_out = S.RandomFeatures(1, (3, 5, 9), 16, seed=1)
    x, losses = S.synthesize(net, target, steps=60, seed=0)
    noise = torch.rand(1, 1, 32, 32, generator=torch.Generator().manual_seed(0))
    assert losses[-1] < 0.05 * losses[0]
    assert S.gram_distance(held_out, x, target) < 0.2 * S.gram_distance(held_out, noise, target)


def test_style_transfer_keeps_content_with_content_weight():
    g = torch.Generator().manual_seed(0)
    content = torch.rand(1, 1, 24, 24, generator=g)
    style = torch.rand(1, 1, 24, 24, generator=g) ** 3
    net = S.RandomFeatures(1, (3, 5), 8, seed=0)
    keep, _ = S.synthesize(net, style, content, content_weight=10.0, steps=20)
    free, _ = S.synthesize(net, style, content, content_weight=0.0, steps=20)
    assert (keep - content).abs().mean() < (free - content).abs().mean()
