"""recipes.train_mnist_gan: typed config, budgets, checkpoints (exact resume, no overwrite), conditioning."""

import dataclasses

import pytest
import torch

from course_lib import gan, recipes
from course_lib.data import load_mnist
from course_lib.gan_clusters import ClusterConditioned, cluster_labels, purity


@pytest.fixture(scope="module")
def small():
    train = load_mnist("train")
    return train.data[:256], train.targets[:256]


def test_recipe_trains_and_returns_an_eval_generator(small):
    images, _ = small
    G = recipes.train_mnist_gan(60, images=images, steps=3)
    assert isinstance(G, ClusterConditioned) and not G.training
    assert isinstance(G.generator, gan.DCGenerator) and G.generator.n_classes == G.clusters == 50
    assert len(G.history["step"]) == 3 and G.snapshots
    x = G.sample(5)
    assert x.shape == (5, 1, 28, 28) and 0 <= x.min() and x.max() <= 1
    plain = recipes.train_mnist_gan(60, images=images, steps=2, config=recipes.DCGAN_CONFIG)
    assert isinstance(plain, gan.DCGenerator) and plain.n_classes == 0
    assert recipes.MNIST_GAN_CONFIG.ema > 0  # the returned generator is the weight average
    mlp = recipes.train_mnist_gan(60, images=images, steps=2, config=recipes.CLASSIC_MLP_GAN_CONFIG)
    assert isinstance(mlp, gan.MLPGenerator) and len(mlp.history["step"]) == 2
    fast = recipes.train_mnist_gan(0.5, images=images)  # the time budget alone stops it
    assert fast.history["time"][-1] < 5
    with pytest.raises(ValueError, match="positive|> 0"):
        recipes.train_mnist_gan(0)
    with pytest.raises(ValueError, match="arch"):
        recipes.mnist_gan_models({"arch": "vit"})


def test_config_is_typed_and_unknown_settings_are_errors():
    cfg = recipes.MNIST_GAN_CONFIG
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.lr_g = 1.0
    with pytest.raises(ValueError, match=r"no setting \['lr'\].*'lr_g', 'lr_d'"):
        recipes.mnist_gan_trainer({"lr": 1e-3})
    with pytest.raises(ValueError, match="no setting"):
        recipes.train_mnist_vae(1, config={"learning_rate": 1e-3})
    assert recipes.gan_config({"lr_g": 1e-3}).lr_g == 1e-3
    variant = dataclasses.replace(cfg, channels=8)
    assert recipes.gan_config(variant) is variant


def test_recipe_resume_is_exact_and_a_finished_run_loads(tmp_path, small):
    images, _ = small
    straight = recipes.train_mnist_gan(images=images, steps=6)
    ck = tmp_path / "gan.pt"
    recipes.train_mnist_gan(images=images, steps=3, checkpoint=ck)  # an interrupted run, in effect
    torch.manual_seed(99)  # a fresh process would not share the global generator's state
    resumed = recipes.train_mnist_gan(images=images, steps=6, checkpoint=ck)
    assert resumed.history["step"] == list(range(6))
    for a, b in zip(straight.state_dict().values(), resumed.state_dict().values()):
        assert torch.equal(a, b)
    loaded = recipes.train_mnist_gan(images=images, steps=6, checkpoint=ck)  # finished: no training
    assert loaded.history["time"] == resumed.history["time"]


def test_another_runs_checkpoint_is_an_error_and_is_not_overwritten(tmp_path, small):
    images, _ = small
    ck = tmp_path / "gan.pt"
    recipes.train_mnist_gan(images=images, steps=2, checkpoint=ck)
    before = ck.read_bytes()
    with pytest.raises(ValueError, match="seed: saved 0, this run 1"):
        recipes.train_mnist_gan(images=images, steps=2, seed=1, checkpoint=ck)
    with pytest.raises(ValueError, match="lr_g: saved 0.0005, this run 0.001"):
        recipes.train_mnist_gan(images=images, steps=2, config={"lr_g": 1e-3}, checkpoint=ck)
    assert ck.read_bytes() == before


def test_conditional_recipe(small):
    images, labels = small
    G = recipes.train_mnist_gan(60, images=images, labels=labels, n_classes=10, steps=2)
    assert G.n_classes == 10 and G.sample(10).shape == (10, 1, 28, 28)
    with pytest.raises(ValueError, match="needs labels"):
        recipes.train_mnist_gan(60, images=images, n_classes=10, steps=1)


def test_conditional_recipe_adds_r1_and_config_overrides_it():
    """Chapter 4: the conditional recipe is chapter 4's DCGAN plus R1 (gamma = 1); the
    unconditional recipe is the DCGAN conditioned on clusters, with R1 (gamma = 0.3)."""
    assert recipes.mnist_gan_trainer(recipes.DCGAN_CONFIG, seed=0).config["r1_gamma"] == 0.0
    assert recipes.mnist_gan_trainer(seed=0).config["r1_gamma"] == 0.3
    assert recipes.mnist_gan_trainer(n_classes=10, seed=0).config["r1_gamma"] == 1.0
    assert recipes.mnist_gan_trainer({"r1_gamma": 0.0}, n_classes=10, seed=0).config["r1_gamma"] == 0.0
    assert recipes.MNIST_CGAN_CONFIG == dataclasses.replace(recipes.DCGAN_CONFIG, r1_gamma=1.0)
    assert recipes.MNIST_GAN_CONFIG == dataclasses.replace(recipes.DCGAN_CONFIG, clusters=50, r1_gamma=0.3,
                                                           r1_every=recipes.MNIST_GAN_CONFIG.r1_every,
                                                           latent_dim=16)
    recorded = recipes.mnist_gan_trainer(seed=0).config
    assert recorded["clustering"] == "spectral" and recorded["r1_every"] == recipes.MNIST_GAN_CONFIG.r1_every > 1
    assert recorded["lecam"] == 0.0 and recipes.mnist_gan_trainer({"lecam": 0.1}, seed=0).config["lecam"] == 0.1


def test_the_clusters_are_part_of_the_run(tmp_path, small, monkeypatch):
    """A checkpoint keeps the clusters it was trained on: resuming uses them (the clustering is
    not run again, and could not silently change the groups the generator learned)."""
    from course_lib import gan_recipe

    images, _ = small
    ck = tmp_path / "gan.pt"
    recipes.train_mnist_gan(images=images, steps=2, checkpoint=ck)
    saved = torch.load(ck, weights_only=True)["extra"]["clusters"]
    assert torch.equal(saved.long(), cluster_labels(images, 50, seed=0))

    def no_clustering(*args, **kwargs):
        raise AssertionError("a resumed run clustered again")

    monkeypatch.setattr(gan_recipe, "cluster_labels", no_clustering)
    G = recipes.train_mnist_gan(images=images, steps=4, checkpoint=ck)
    assert len(G.history["step"]) == 4
    assert torch.equal(G.weights, torch.bincount(saved.long(), minlength=50) / len(images))


def test_a_budget_too_short_for_one_more_step_ends_the_run(small, tmp_path):
    """When the seconds left are too few for one step, the loop must end, not ask again forever."""
    import signal

    def hung(signum, frame):
        raise TimeoutError("train_mnist_gan did not return: the budget loop spins")

    old = signal.signal(signal.SIGALRM, hung)
    signal.alarm(60)
    try:
        G = recipes.train_mnist_gan(1e-9, images=small[0])  # one step overruns a nanosecond
        G2 = recipes.train_mnist_gan(1e-9, images=small[0], checkpoint=tmp_path / "g.pt")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    assert len(G.history["step"]) == 1 and G2.sample(2).shape == (2, 1, 28, 28)


def test_cluster_labels_group_the_digits_and_are_repeatable():
    """Chapter 4: clusters of the blurred digits are groups of one digit far more often than
    chance, spectral clustering more often than k-means; a broken clustering (random or
    constant labels) fails the purity bound."""
    train = load_mnist("train")
    x, y = train.data[:1000], train.targets[:1000]
    labels = cluster_labels(x, 50, seed=0)
    assert labels.shape == (1000,) and labels.dtype == torch.long and 0 <= labels.min() and labels.max() < 50
    assert torch.equal(labels, cluster_labels(x, 50, seed=0))
    kmeans = cluster_labels(x, 50, seed=0, method="kmeans")
    assert purity(labels, y) > purity(kmeans, y) + 0.02 and purity(kmeans, y) > 0.7
    random = torch.randint(50, (1000,), generator=torch.Generator().manual_seed(0))
    assert purity(random, y) < 0.4 and purity(torch.zeros(1000, dtype=torch.long), y) < 0.2
    with pytest.raises(ValueError, match="between 1 and"):
        cluster_labels(x[:10], 50)
    with pytest.raises(ValueError, match="N, C, H, W"):
        cluster_labels(x[:, 0], 5)
    with pytest.raises(ValueError, match="method='dbscan'"):
        cluster_labels(x, 5, method="dbscan")


def test_purity_counts_the_majority_label_of_each_cluster():
    """Chapter 4's cluster purity, checked by hand on a small case and on the two extremes."""
    clusters = torch.tensor([0, 0, 0, 1, 1, 2])
    labels = torch.tensor([3, 3, 5, 1, 2, 7])  # majorities: 2 of 3, 1 of 2, 1 of 1
    assert purity(clusters, labels) == pytest.approx(4 / 6)
    assert purity(labels, labels) == 1.0  # one class per cluster
    assert purity(torch.zeros(6, dtype=torch.long), torch.tensor([0, 0, 0, 1, 1, 2])) == 0.5
    with pytest.raises(ValueError, match="one length"):
        purity(clusters, labels[:5])


def test_cluster_conditioned_sampler_draws_clusters_with_their_shares():
    """p(x) = sum_k pi_k p_G(x | k): the clusters come with their shares of the training set,
    not uniformly (what a conditional GAN's ``sample`` does by default)."""
    G = recipes.mnist_gan_models(recipes.DCGAN_CONFIG, n_classes=4)[0]
    sampler = ClusterConditioned(G, torch.tensor([70.0, 20.0, 10.0, 0.0]))
    k = sampler.draw_clusters(20_000, torch.Generator().manual_seed(0))
    share = torch.bincount(k, minlength=4).float() / len(k)
    assert torch.allclose(share, torch.tensor([0.7, 0.2, 0.1, 0.0]), atol=0.01)
    x = sampler.sample(6, generator=torch.Generator().manual_seed(1))
    again = sampler.sample(6, generator=torch.Generator().manual_seed(1))
    assert x.shape == (6, 1, 28, 28) and torch.equal(x, again)
    # given clusters are used as they are
    z = torch.randn(3, G.latent_dim)
    assert torch.equal(sampler.sample(3, torch.tensor([2, 2, 2]), z=z), G.sample(3, torch.tensor([2, 2, 2]), z=z))
    with pytest.raises(ValueError, match="counts must be 4"):
        ClusterConditioned(G, torch.ones(3))


def test_clusters_and_labels_do_not_mix(small):
    images, labels = small
    with pytest.raises(ValueError, match="not both"):
        recipes.mnist_gan_models({"clusters": 10}, n_classes=10)
    with pytest.raises(ValueError, match="makes its own clusters"):
        recipes.train_mnist_gan(images=images, labels=labels, steps=1)
    with pytest.raises(ValueError, match="clusters=-1"):
        recipes.mnist_gan_models({"clusters": -1})


def test_an_unknown_clustering_is_an_error_even_without_clusters():
    with pytest.raises(ValueError, match="clustering='spectal'"):
        recipes.gan_config({"clusters": 0, "clustering": "spectal"})
    assert recipes.gan_config({"clusters": 0, "clustering": "kmeans"}).clustering == "kmeans"
