"""Feature extractors: the shipped MNIST classifier, checksums, extract(), Inception-v3 offline."""

import shutil

import pytest
import torch

from course_lib import features
from course_lib.data import load_mnist


@pytest.fixture(scope="module")
def clf():
    return features.load_mnist_classifier()


def test_shipped_classifier_loads_in_eval_mode_on_cpu(clf):
    assert not clf.training
    assert all(p.device.type == "cpu" for p in clf.parameters())
    x = load_mnist("test").data[:5]
    assert clf(x).shape == (5, 10)
    assert clf.features(x).shape == (5, features.MNISTClassifier.feature_dim)
    with pytest.raises(ValueError, match=r"\(B, 1, 28, 28\)"):
        clf(torch.zeros(2, 28, 28))


def test_shipped_classifier_reaches_98_percent_on_the_embedded_test_split(clf):
    test = load_mnist("test")
    acc = features.accuracy(clf, test.data, test.targets)
    assert acc >= 0.98, acc
    card = features.mnist_classifier_card()
    assert card["test_accuracy"] == pytest.approx(acc, abs=1e-4)  # the card reports what the file does
    assert card["sha256"] == features.sha256(features.MNIST_CLASSIFIER_WEIGHTS)


def test_checksum_and_missing_files_give_clear_errors(tmp_path):
    path = tmp_path / "clf.pt"
    shutil.copy(features.MNIST_CLASSIFIER_WEIGHTS, path)
    shutil.copy(features.MNIST_CLASSIFIER_CARD, tmp_path / "clf.json")
    features.load_mnist_classifier(path)  # an intact copy loads
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(RuntimeError, match="Checksum mismatch.*retrain"):
        features.load_mnist_classifier(path)
    (tmp_path / "clf.json").unlink()
    with pytest.raises(FileNotFoundError, match="clf.json is missing.*train_mnist_classifier"):
        features.load_mnist_classifier(path)
    with pytest.raises(FileNotFoundError, match="missing"):
        features.load_mnist_classifier(tmp_path / "nothing.pt")


def test_save_then_load_round_trip_and_training_code_path(tmp_path):
    torch.manual_seed(0)
    model, history = features.train_mnist_classifier(epochs=1, seed=1)
    assert len(history["loss"]) == 4000 // 128
    assert sum(history["loss"][-5:]) / 5 < sum(history["loss"][:5]) / 5  # it learns
    path = features.save_mnist_classifier(model, tmp_path / "m.pt", {"note": "test"})
    loaded = features.load_mnist_classifier(path)
    x = torch.rand(3, 1, 28, 28)
    assert torch.equal(loaded(x), model(x))
    assert features.mnist_classifier_card(path)["note"] == "test"
    assert not list(tmp_path.glob("*.tmp"))  # atomic writes leave no temporaries


def test_extract_batches_outputs_and_errors(clf):
    x = load_mnist("test").data[:23]
    f1 = features.extract(clf, x, batch_size=5)
    f2 = features.extract(clf, x, batch_size=500)
    assert f1.shape == (23, 128) and torch.allclose(f1, f2, atol=1e-5)
    probs = features.probabilities(clf, x)
    assert torch.allclose(probs.sum(1), torch.ones(23), atol=1e-5)
    assert torch.allclose(probs, features.extract(clf, x, output="logits").softmax(1))
    clf.train()
    with torch.no_grad():
        ref = clf.eval()(x)  # extract must use eval mode (dropout off) ...
    clf.train()
    assert torch.allclose(features.extract(clf, x, output="logits"), ref, atol=1e-5)
    assert clf.training  # ... and restore the caller's mode
    clf.eval()
    plain = torch.nn.Flatten()  # any module without .features works
    assert features.extract(plain, x).shape == (23, 784)
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        features.extract(clf, x[:, 0])
    with pytest.raises(ValueError, match="NaN"):
        features.extract(clf, x * float("nan"))
    with pytest.raises(ValueError, match="output="):
        features.extract(clf, x, output="pool")


def test_random_affine_identity_and_shift():
    x = torch.rand(4, 1, 28, 28)
    assert torch.allclose(features.random_affine(x, degrees=0, scale=0, shift=0), x, atol=1e-5)
    y = features.random_affine(x, torch.Generator().manual_seed(0))
    assert y.shape == x.shape and not torch.allclose(y, x)


def test_inception_code_path_with_random_weights(tmp_path):
    from torchvision.models import inception_v3

    torch.manual_seed(0)
    net = inception_v3(weights=None, aux_logits=True, init_weights=False)
    path = tmp_path / "inception_random.pth"
    torch.save(net.state_dict(), path)
    model = features.inception_v3_features(path)
    assert not model.training
    x = torch.rand(2, 1, 28, 28)
    f, logits = model.features(x), model(x)
    assert f.shape == (2, 2048) and logits.shape == (2, 1000)
    # features are the average-pool output of the same network, logits its fc layer
    net.eval()
    pooled = {}
    net.avgpool.register_forward_hook(lambda m, i, o: pooled.setdefault("x", o.flatten(1)))
    with torch.no_grad():
        ref_logits = net(model._prepare(x))
    assert torch.allclose(f, pooled["x"], atol=1e-5) and torch.allclose(logits, ref_logits, atol=1e-4)
    assert features.extract(model, torch.rand(3, 3, 32, 32), batch_size=2).shape == (3, 2048)


def test_inception_missing_weights_say_how_to_get_them(tmp_path):
    with pytest.raises(FileNotFoundError, match="(?s)IMAGENET1K_V1.*inception_v3_google-0cc3c7bd.pth"):
        features.inception_v3_features(tmp_path / "none.pth")
