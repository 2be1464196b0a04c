import pickle

import pytest
import torch

from course_lib import utils


def test_fast_mode_switch(monkeypatch):
    monkeypatch.setenv("COURSE_FAST", "1")
    assert utils.fast_mode() and utils.fast_or_full(1, 2) == 1
    monkeypatch.setenv("COURSE_FAST", "0")
    assert not utils.fast_mode() and utils.fast_or_full(1, 2) == 2
    monkeypatch.delenv("COURSE_FAST")
    assert not utils.fast_mode()
    monkeypatch.setenv("COURSE_FAST", "maybe")
    with pytest.raises(ValueError, match="COURSE_FAST"):
        utils.fast_mode()


def test_seed_everything_repeats():
    utils.seed_everything(3)
    a = torch.randn(5)
    utils.seed_everything(3)
    assert torch.equal(a, torch.randn(5))
    g1, g2 = utils.seed_everything(4), utils.seed_everything(4)
    assert torch.equal(torch.rand(3, generator=g1), torch.rand(3, generator=g2))
    with pytest.raises(ValueError):
        utils.seed_everything(-1)


def test_get_device():
    assert utils.get_device("cpu").type == "cpu"
    assert utils.get_device().type in {"cpu", "cuda", "mps"}
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA"):
            utils.get_device("cuda")


def test_progress_modes(monkeypatch):
    monkeypatch.setenv("COURSE_PROGRESS", "text")
    assert sum(utils.progress(range(4))) == 6
    monkeypatch.setenv("COURSE_PROGRESS", "off")
    bar = utils.progress(range(3))
    assert bar.disable and list(bar) == [0, 1, 2]
    monkeypatch.setenv("COURSE_PROGRESS", "loud")
    with pytest.raises(ValueError):
        utils.progress(range(3))


def test_progress_widget_only_with_a_front_end(monkeypatch):
    """In a kernel with no front end (nbconvert, nbgrader) a widget bar would be saved as an
    empty placeholder: the text bar is used unless a Jupyter server started the kernel."""
    from tqdm.notebook import tqdm as widget_bar

    monkeypatch.setenv("COURSE_PROGRESS", "auto")
    monkeypatch.setattr(utils, "_in_notebook", lambda: True)
    monkeypatch.setattr(utils, "_has_widgets", lambda: True)
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    assert not isinstance(utils.progress(range(2)), widget_bar)
    monkeypatch.setenv("JPY_SESSION_NAME", "notebooks/ch01_basics.py")
    assert isinstance(utils.progress(range(2)), widget_bar)
    monkeypatch.setenv("COURSE_PROGRESS", "loud")
    with pytest.raises(ValueError):
        utils.progress(range(3))


def test_checkpoint_roundtrip_and_errors(tmp_path):
    path = tmp_path / "sub" / "ck.pt"
    state = {"w": torch.arange(3.0), "step": 7, "history": {"loss": [1.0, 0.5]}}
    utils.save_checkpoint(path, state)
    loaded = utils.load_checkpoint(path)
    assert torch.equal(loaded["w"], state["w"]) and loaded["step"] == 7
    assert [p.name for p in path.parent.iterdir()] == ["ck.pt"]  # no temp files left

    with pytest.raises(FileNotFoundError, match="No checkpoint"):
        utils.load_checkpoint(tmp_path / "missing.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(path.read_bytes()[:40])
    with pytest.raises(RuntimeError, match="corrupt"):
        utils.load_checkpoint(bad)


def test_checkpoint_refuses_pickled_code(tmp_path):
    """weights_only=True: an arbitrary object in the file is refused, not executed."""
    path = tmp_path / "evil.pt"
    torch.save({"obj": _Opaque()}, path)
    with pytest.raises(RuntimeError, match="could not be read"):
        utils.load_checkpoint(path)


class _Opaque:
    pass


def test_failed_save_leaves_no_file(tmp_path):
    path = tmp_path / "ck.pt"
    with pytest.raises((AttributeError, TypeError, RuntimeError, pickle.PicklingError)):
        utils.save_checkpoint(path, {"f": lambda x: x})  # lambdas cannot be pickled
    assert list(tmp_path.iterdir()) == []
