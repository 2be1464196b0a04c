"""GAN losses against their probability-space definitions, the models, the step and the trainer."""

import math

import pytest
import torch

from course_lib import gan


def _probs_losses(real_logits, fake_logits):
    """The textbook formulas in float64 probability space (reference only)."""
    pr, pf = torch.sigmoid(real_logits.double()), torch.sigmoid(fake_logits.double())
    return {
        "d": -(torch.log(pr).mean() + torch.log(1 - pf).mean()),
        "sat": torch.log(1 - pf).mean(),
        "ns": -torch.log(pf).mean(),
    }


def test_losses_match_the_probability_formulas():
    g = torch.Generator().manual_seed(0)
    real, fake = torch.randn(500, generator=g) * 3, torch.randn(500, generator=g) * 3
    ref = _probs_losses(real, fake)
    assert torch.allclose(gan.d_loss(real, fake).double(), ref["d"], atol=1e-5)
    assert torch.allclose(gan.g_loss_saturating(fake).double(), ref["sat"], atol=1e-5)
    assert torch.allclose(gan.g_loss_nonsaturating(fake).double(), ref["ns"], atol=1e-5)
    assert torch.allclose(gan.gan_value(real, fake), -gan.d_loss(real, fake))
    # with nn.BCEWithLogitsLoss: real -> 1, fake -> 0
    bce = torch.nn.BCEWithLogitsLoss()
    assert torch.allclose(gan.d_loss(real, fake), bce(real, torch.ones(500)) + bce(fake, torch.zeros(500)))
    assert torch.allclose(gan.g_loss_nonsaturating(fake), bce(fake, torch.ones(500)))


def test_label_smoothing_is_cross_entropy_with_the_soft_target():
    real, fake = torch.tensor([2.0, -1.0, 0.5]), torch.tensor([0.0, 1.0, -3.0])
    p = torch.sigmoid(real)
    real_term = -(0.9 * torch.log(p) + 0.1 * torch.log(1 - p)).mean()
    expected = real_term + torch.nn.functional.softplus(fake).mean()
    assert torch.allclose(gan.d_loss(real, fake, real_label=0.9), expected, atol=1e-6)


def test_losses_stay_finite_where_log_of_sigmoid_overflows():
    big = torch.tensor([30.0, 120.0])
    assert torch.isinf(torch.log(1 - torch.sigmoid(big))).all()  # the naive form breaks here
    for loss in (gan.d_loss(-big, big), gan.g_loss_nonsaturating(-big), gan.g_loss_saturating(big)):
        assert torch.isfinite(loss)
    x = big.clone().requires_grad_(True)
    gan.d_loss(-x, x).backward()
    assert torch.isfinite(x.grad).all()


def test_logit_gradients_saturate_only_for_the_minimax_loss():
    # d/dl log(1 - sigmoid(l)) = -sigmoid(l);  d/dl -log sigmoid(l) = -(1 - sigmoid(l))
    logits = torch.tensor([-8.0, -2.0, 0.0, 3.0], requires_grad=True)
    (g_sat,) = torch.autograd.grad(gan.g_loss_saturating(logits) * 4, logits)
    (g_ns,) = torch.autograd.grad(gan.g_loss_nonsaturating(logits) * 4, logits)
    s = torch.sigmoid(logits.detach())
    assert torch.allclose(g_sat, -s) and torch.allclose(g_ns, -(1 - s))
    assert abs(g_sat[0]) < 1e-3 < 0.99 < abs(g_ns[0])  # a rejected fake: only NS learns


def test_value_at_the_optimum_is_minus_log_4():
    zeros = torch.zeros(10)  # D = 1/2 everywhere
    assert math.isclose(gan.gan_value(zeros, zeros).item(), -math.log(4), rel_tol=1e-6)
    p, q = torch.tensor([0.2, 0.5, 1.0]), torch.tensor([0.6, 0.5, 0.0])
    assert torch.allclose(gan.optimal_discriminator(p, q), torch.tensor([0.25, 0.5, 1.0]))
    with pytest.raises(ValueError):
        gan.optimal_discriminator(p, q[:2])
    with pytest.raises(TypeError):
        gan.d_loss([1.0], torch.zeros(1))


def test_r1_penalty_is_the_squared_input_gradient():
    w = torch.tensor([1.0, -2.0, 2.0])
    x = torch.randn(5, 3, requires_grad=True)
    logits = x @ w  # gradient is w for every sample: ||w||^2 = 9
    assert torch.allclose(gan.r1_penalty(logits, x), torch.tensor(9.0))


def test_lecam_pulls_each_side_towards_the_other_sides_average():
    """Tseng et al. (2021), eq. 3: real logits against alpha_F, fake logits against alpha_R."""
    real, fake = torch.tensor([2.0, 2.0, 4.0]), torch.tensor([-1.0, -3.0])
    anchors = torch.tensor([2.5, -2.0])  # (alpha_R, alpha_F)
    expected = ((real + 2.0) ** 2).mean() + ((fake - 2.5) ** 2).mean()  # (16+16+36)/3 + (12.25+30.25)/2
    assert torch.allclose(gan.lecam_penalty(real, fake, anchors), expected)
    # anchors swapped (each side pulled to its own average) would give a small number here
    swapped = ((real - 2.5) ** 2).mean() + ((fake + 2.0) ** 2).mean()
    assert not torch.allclose(expected, swapped)
    # no gradient reaches the anchors; the logits get d/dl (l - alpha)^2 / n
    r, f = real.clone().requires_grad_(True), fake.clone().requires_grad_(True)
    a = anchors.clone().requires_grad_(True)
    gan.lecam_penalty(r, f, a).backward()
    assert a.grad is None and torch.allclose(r.grad, 2 * (real + 2.0) / 3)
    with pytest.raises(ValueError, match="anchors"):
        gan.lecam_penalty(real, fake, torch.zeros(3))


def test_lecam_anchors_start_at_the_first_batch_then_average():
    anchors = torch.full((2,), float("nan"))
    gan.update_lecam_anchors(anchors, torch.tensor([1.0, 3.0]), torch.tensor([-4.0]))
    assert torch.equal(anchors, torch.tensor([2.0, -4.0]))
    out = gan.update_lecam_anchors(anchors, torch.tensor([12.0]), torch.tensor([6.0]), decay=0.9)
    assert out is anchors and torch.allclose(anchors, torch.tensor([0.9 * 2 + 1.2, 0.9 * -4 + 0.6]))


def test_gan_step_adds_lecam_times_the_penalty_to_the_discriminator_loss():
    """loss_d with LeCam minus loss_d without it, from the same state and codes, is the weight
    times the penalty at the updated anchors; a step that only updated the anchors fails."""
    import copy

    torch.manual_seed(0)
    G, D = gan.MLPGenerator(latent_dim=4, hidden=(8,)), gan.MLPDiscriminator(hidden=(8,))
    x = _tiny_data(16)
    anchors = torch.tensor([3.0, -3.0])  # far from the logits: a large penalty

    def loss_d(weight):
        g, d = copy.deepcopy(G), copy.deepcopy(D)
        opt_g, opt_d = torch.optim.Adam(g.parameters()), torch.optim.Adam(d.parameters())
        torch.manual_seed(1)  # the same codes in both steps
        return gan.gan_step(g, d, opt_g, opt_d, x, lecam=weight, lecam_anchors=anchors.clone())["loss_d"]

    with torch.no_grad():
        torch.manual_seed(1)
        real_logits, fake_logits = D(x), D(G(G.sample_latent(16)))
        updated = gan.update_lecam_anchors(anchors.clone(), real_logits, fake_logits)
        expected = 2.0 * gan.lecam_penalty(real_logits, fake_logits, updated).item()
    assert expected > 1.0 and loss_d(2.0) - loss_d(0.0) == pytest.approx(expected, rel=1e-5)


def test_trainer_adds_lecam_keeps_its_averages_in_the_run_and_records_it(tmp_path):
    x = _tiny_data()
    seen = []

    def spy(*args, **kwargs):
        seen.append(kwargs.get("lecam", 0.0))
        return gan.gan_step(*args, **kwargs)

    def trainer(**kw):
        torch.manual_seed(0)
        return gan.GANTrainer(gan.MLPGenerator(latent_dim=4, hidden=(8,)), gan.MLPDiscriminator(hidden=(8,)),
                              step_fn=spy, **kw)

    tr = trainer(lecam=0.3)
    tr.fit(x, batch_size=32, steps=3)
    anchors = tr.run.extra["lecam_anchors"]
    assert seen == [0.3] * 3 and torch.isfinite(anchors).all() and tr.config["lecam"] == 0.3
    # the averages are saved with the run: a resumed run continues from them
    tr.save(tmp_path / "lc.pt")
    back = trainer(lecam=0.3).load(tmp_path / "lc.pt")
    assert torch.equal(back.run.extra["lecam_anchors"], anchors)
    with pytest.raises(ValueError, match="lecam"):  # another weight is another run
        trainer(lecam=0.1).load(tmp_path / "lc.pt")
    seen.clear()
    plain = trainer()
    plain.fit(x, batch_size=32, steps=2)
    assert seen == [0.0, 0.0] and "lecam" not in plain.config and "lecam_anchors" not in plain.run.extra
    for bad in (-0.1, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="lecam must be"):
            trainer(lecam=bad)
    with pytest.raises(ValueError, match="lecam_anchors"):
        gan.gan_step(tr.G, tr.D, tr.opt_g, tr.opt_d, x[:8], lecam=0.3)


@pytest.mark.parametrize("kind", ["mlp", "dc"])
@pytest.mark.parametrize("n_classes", [0, 10])
def test_models_shapes_ranges_and_conditioning(kind, n_classes):
    torch.manual_seed(0)
    if kind == "mlp":
        G, D = gan.MLPGenerator(n_classes=n_classes), gan.MLPDiscriminator(n_classes=n_classes)
        assert [m.out_features for m in G.net if isinstance(m, torch.nn.Linear)] == [256, 512, 784]
        assert [m.out_features for m in D.net if isinstance(m, torch.nn.Linear)] == [512, 256, 1]
    else:
        G, D = gan.DCGenerator(channels=8, n_classes=n_classes), gan.DCDiscriminator(channels=8, n_classes=n_classes)
    assert G.latent_dim == 100
    labels = torch.arange(6) % 10 if n_classes else None
    x = G.sample(6, labels)
    assert x.shape == (6, 1, 28, 28) and 0 <= x.min() and x.max() <= 1 and not x.requires_grad
    assert G.training  # sample() restores the mode
    assert D(x, labels).shape == (6,)
    if n_classes:
        z = G.sample_latent(1).repeat(2, 1)
        G.eval()  # batch norm in train mode would mix the two rows
        a, b = G(z, torch.tensor([1, 1])), G(z, torch.tensor([1, 7]))
        G.train()
        assert torch.allclose(a[0], b[0]) and not torch.allclose(a[1], b[1])  # the label matters
        with pytest.raises(ValueError, match="labels"):
            G(G.sample_latent(3))
        with pytest.raises(ValueError, match="labels"):
            D(x)
    else:
        with pytest.raises(ValueError, match="unconditional"):
            G(G.sample_latent(2), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="z must be"):
        G(torch.randn(2, 7), labels[:2] if n_classes else None)
    with pytest.raises(ValueError):
        G.sample(0)


def _tiny_data(n=256):
    g = torch.Generator().manual_seed(0)
    x = torch.zeros(n, 1, 28, 28)
    x[:, :, 8:20, 12:16] = 0.9 + 0.1 * torch.rand(n, 1, 12, 4, generator=g)  # a bar "digit"
    return x


def test_gan_step_alternates_correctly():
    """The D step must not touch G; the G step must use the updated D and change only G."""
    torch.manual_seed(0)
    G, D = gan.MLPGenerator(latent_dim=8, hidden=(32,)), gan.MLPDiscriminator(hidden=(32,))
    opt_g = torch.optim.SGD(G.parameters(), lr=0.1)
    opt_d = torch.optim.SGD(D.parameters(), lr=0.1)
    real = _tiny_data(16)
    g0 = [p.detach().clone() for p in G.parameters()]
    d0 = [p.detach().clone() for p in D.parameters()]

    calls = []
    orig_g, orig_d = opt_g.step, opt_d.step

    def step_g():
        # when G steps, its gradient must be exactly grad of L_G alone (no L_D pollution)
        calls.append("g")
        return orig_g()

    def step_d():
        calls.append("d")
        # D's gradient must not have reached G
        assert all(p.grad is None for p in G.parameters()), "the D step leaked gradient into G"
        return orig_d()

    opt_g.step, opt_d.step = step_g, step_d
    torch.manual_seed(1)
    logs = gan.gan_step(G, D, opt_g, opt_d, real)
    assert calls == ["d", "g"]
    assert set(logs) == {"loss_d", "loss_g", "d_real", "d_fake"}
    assert all(not torch.equal(a, b) for a, b in zip(g0, G.parameters()))
    assert all(not torch.equal(a, b) for a, b in zip(d0, D.parameters()))

    # reproduce the G gradient by hand: fresh z from the same seed, updated D, non-saturating loss
    G2, D2 = gan.MLPGenerator(latent_dim=8, hidden=(32,)), gan.MLPDiscriminator(hidden=(32,))
    with torch.no_grad():
        for p, q in zip(G2.parameters(), g0):
            p.copy_(q)
        for p, q in zip(D2.parameters(), D.parameters()):
            p.copy_(q)  # D after its update
    torch.manual_seed(1)
    fake = G2(G2.sample_latent(16))
    gan.g_loss_nonsaturating(D2(fake)).backward()
    for p, p0, q in zip(G.parameters(), g0, G2.parameters()):
        assert torch.allclose(p0 - 0.1 * q.grad, p.detach(), atol=1e-6)


def test_trainer_learns_records_snapshots_and_resumes(tmp_path):
    torch.manual_seed(0)
    x = _tiny_data()
    G, D = gan.MLPGenerator(latent_dim=16, hidden=(64,)), gan.MLPDiscriminator(hidden=(64,))
    tr = gan.GANTrainer(G, D, lr_g=1e-3, lr_d=1e-3, n_snapshot=8)
    before = ((G.sample(256) - x) ** 2).mean().item()
    hist = tr.train(x, batch_size=32, steps=150, sample_every=50)
    after = ((G.sample(256) - x) ** 2).mean().item()
    assert after < 0.5 * before, (before, after)  # learning happened
    assert {"loss_d", "loss_g", "d_real", "d_fake", "step", "time"} <= set(hist)
    assert len(hist["loss_d"]) == 150 and [s for s, _ in tr.snapshots] == [0, 50, 100, 150]
    assert tr.snapshots[0][1].shape == (8, 1, 28, 28)

    path = tr.save(tmp_path / "gan.pt")
    tr2 = gan.GANTrainer(gan.MLPGenerator(latent_dim=16, hidden=(64,)), gan.MLPDiscriminator(hidden=(64,)),
                         lr_g=1e-3, lr_d=1e-3)
    tr2.load(path)
    z = G.sample_latent(4)
    assert torch.equal(tr2.G(z), G(z)) and tr2.steps_done == 150
    assert torch.equal(tr2.fixed_z, tr.fixed_z) and len(tr2.snapshots) == 4
    tr2.train(x, batch_size=32, steps=10)
    assert tr2.history["step"][-1] == 159

    # fit: the budget is the run's, so a trainer resumed from a finished run trains no further
    ck = tmp_path / "resume.pt"

    def trainer():
        return gan.GANTrainer(gan.MLPGenerator(latent_dim=16, hidden=(64,)), gan.MLPDiscriminator(hidden=(64,)),
                              checkpoint=ck)

    t1 = trainer()
    t1.fit(x, batch_size=32, steps=5)
    t2 = trainer().load()
    t2.fit(x, batch_size=32, steps=5)
    assert t1.steps_done == 5 and t2.steps_done == 5 and t2.history == t1.history
    t2.fit(x, batch_size=32, steps=8)
    assert t2.steps_done == 8


def test_lazy_r1_is_k_times_as_strong_on_every_kth_step():
    """Lazy regularisation (chapter 4): with ``r1_every = k`` the step gets ``k * r1_gamma`` on
    steps 0, k, 2k, ... and 0 otherwise, so the average penalty is the eager one's; the schedule
    is recorded with the penalty, and only when there is one."""
    x = _tiny_data()
    seen = []

    def spy(*args, r1_gamma, **kwargs):
        seen.append(r1_gamma)
        return gan.gan_step(*args, r1_gamma=r1_gamma, **kwargs)

    def trainer(**kw):
        return gan.GANTrainer(gan.MLPGenerator(latent_dim=4, hidden=(8,)), gan.MLPDiscriminator(hidden=(8,)),
                              step_fn=spy, **kw)

    trainer(r1_gamma=0.5, r1_every=4).fit(x, batch_size=32, steps=9)
    assert seen == [2.0, 0, 0, 0, 2.0, 0, 0, 0, 2.0]
    seen.clear()
    eager = trainer(r1_gamma=0.5)
    eager.fit(x, batch_size=32, steps=3)
    assert seen == [0.5] * 3 and eager.config["r1_every"] == 1
    assert "r1_every" not in trainer().config  # no penalty, no schedule
    for bad in (0, 2.5):
        with pytest.raises(ValueError, match="r1_every must be a positive int"):
            trainer(r1_gamma=1.0, r1_every=bad)


def test_trainer_rejects_bad_input_and_bad_checkpoints(tmp_path):
    G, D = gan.MLPGenerator(latent_dim=4, hidden=(8,)), gan.MLPDiscriminator(hidden=(8,))
    tr = gan.GANTrainer(G, D)
    x = _tiny_data(64)
    with pytest.raises(ValueError, match="must be"):
        tr.train(x[:, :, :27], steps=1)
    with pytest.raises(ValueError, match="fewer than one batch"):
        tr.train(x[:10], steps=1)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        tr.train(x * 255, steps=1)
    with pytest.raises(ValueError, match="unconditional"):
        tr.train(x, torch.zeros(64, dtype=torch.long), steps=1)
    with pytest.raises(ValueError, match="g_loss"):
        gan.GANTrainer(G, D, g_loss="wasserstein")
    with pytest.raises(ValueError, match="n_classes"):
        gan.GANTrainer(gan.MLPGenerator(n_classes=10), gan.MLPDiscriminator())
    trc = gan.GANTrainer(gan.MLPGenerator(latent_dim=4, hidden=(8,), n_classes=10),
                         gan.MLPDiscriminator(hidden=(8,), n_classes=10))
    with pytest.raises(ValueError, match="needs labels"):
        trc.train(x, steps=1)
    with pytest.raises(ValueError, match="labels must be"):
        trc.train(x, torch.full((64,), 10), steps=1)
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(RuntimeError, match="corrupt"):
        tr.load(bad)
    other = gan.GANTrainer(gan.MLPGenerator(latent_dim=4, hidden=(16,)), gan.MLPDiscriminator(hidden=(8,)))
    path = other.save(tmp_path / "other.pt")
    with pytest.raises(RuntimeError, match="another architecture"):
        tr.load(path)
    from course_lib.utils import save_checkpoint
    save_checkpoint(tmp_path / "x.pt", {"weights": torch.zeros(1)})
    with pytest.raises(RuntimeError, match="not a course_lib training run"):
        tr.load(tmp_path / "x.pt")


def test_conditional_dcgan_trains_one_step_and_interpolation():
    G, D = gan.DCGenerator(channels=4, n_classes=10), gan.DCDiscriminator(channels=4, n_classes=10)
    tr = gan.GANTrainer(G, D, r1_gamma=1.0, real_label=0.9)
    x = _tiny_data(32)
    hist = tr.train(x, torch.arange(32) % 10, batch_size=16, steps=2)
    assert len(hist["loss_d"]) == 2 and all(math.isfinite(v) for v in hist["loss_d"])
    z0, z1 = torch.randn(100), torch.randn(100)
    path = gan.interpolate_latents(z0, z1, 7)
    assert path.shape == (7, 100) and torch.allclose(path[0], z0, atol=1e-5) and torch.allclose(path[-1], z1, atol=1e-5)
    lin = gan.interpolate_latents(z0, z1, 7, spherical=False)
    assert torch.allclose(lin[3], (z0 + z1) / 2, atol=1e-6)
    # slerp keeps the norm between the endpoints' when they have equal norm
    z1n = z1 / z1.norm() * z0.norm()
    norms = gan.interpolate_latents(z0, z1n, 9).norm(dim=1)
    assert torch.allclose(norms, torch.full((9,), z0.norm().item()), rtol=1e-4)
    with pytest.raises(ValueError):
        gan.interpolate_latents(z0, z1[:5], 3)
