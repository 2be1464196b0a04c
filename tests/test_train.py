import pytest
import torch

from course_lib.train import fit, minibatches, smooth


def test_minibatches_cover_each_epoch_once():
    x = torch.arange(10)
    seen = {}
    for epoch, (b,) in minibatches([x], 5, torch.Generator().manual_seed(0)):
        if epoch == 2:
            break
        seen.setdefault(epoch, []).extend(b.tolist())
    assert sorted(seen[0]) == list(range(10)) and sorted(seen[1]) == list(range(10))
    assert seen[0] != seen[1]  # reshuffled
    with pytest.raises(ValueError):
        next(minibatches([x, torch.arange(9)], 2))
    with pytest.raises(ValueError):
        next(minibatches([x], 11))


def test_fit_learns_a_linear_map_and_records_history():
    torch.manual_seed(0)
    x = torch.randn(512, 3)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5]])
    model = torch.nn.Linear(3, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)

    def step(batch):
        xb, yb = batch
        loss = ((model(xb) - yb) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        return {"loss": loss.item()}

    calls = []
    hist = fit(step, (x, y), 64, epochs=5, callback=lambda s, h: calls.append(s), callback_every=8)
    assert len(hist["loss"]) == 40 and hist["step"] == list(range(40))
    assert hist["loss"][-1] < 0.01 * hist["loss"][0]
    assert calls == [7, 15, 23, 31, 39]
    # continuing a history keeps counting
    hist = fit(step, (x, y), 64, steps=3, history=hist)
    assert hist["step"][-3:] == [40, 41, 42] and len(hist["time"]) == 43


def test_fit_budgets_and_nan_guard():
    x = torch.zeros(100, 1)
    with pytest.raises(ValueError, match="budget"):
        fit(lambda b: {}, x, 10)
    hist = fit(lambda b: {"v": 1.0}, x, 10, seconds=0.2)
    assert 1 <= len(hist["v"]) and hist["time"][-1] < 1.0
    counter = iter(range(10))
    with pytest.raises(FloatingPointError, match="loss became nan at step 3"):
        fit(lambda b: {"loss": float("nan") if next(counter) == 3 else 1.0}, x, 10, steps=9)


def test_smooth():
    assert smooth([1, 2, 3, 4], window=2) == [1, 1.5, 2.5, 3.5]
