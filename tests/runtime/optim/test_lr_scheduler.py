"""runtime.optim.lr_scheduler: StepLR's schedule, bookkeeping and agreement with torch."""

import pytest

import runtime
from runtime.optim.lr_scheduler import StepLR


def _sgd(lr=1.0):
    return runtime.optim.SGD([runtime.ones(1, requires_grad=True)], lr=lr)


def test_step_lr_multiplies_by_gamma_every_step_size_epochs():
    sgd = _sgd()
    scheduler = StepLR(sgd, step_size=2, gamma=0.5)
    seen = []
    for _ in range(6):
        seen.append(sgd.param_groups[0]["lr"])
        sgd.step()
        scheduler.step()
    assert seen == [1.0, 1.0, 0.5, 0.5, 0.25, 0.25]
    assert scheduler.get_last_lr() == [0.125]
    assert scheduler.last_epoch == 6


def test_creating_a_scheduler_records_initial_lr():
    sgd = _sgd(lr=0.3)
    StepLR(sgd, step_size=1)
    assert sgd.param_groups[0]["initial_lr"] == 0.3


def test_resuming_needs_initial_lr_in_every_group():
    with pytest.raises(KeyError, match="initial_lr"):
        StepLR(_sgd(), step_size=1, last_epoch=3)


def test_only_optimizers_can_be_scheduled():
    with pytest.raises(TypeError, match="list is not an Optimizer"):
        StepLR([], step_size=1)


def test_state_dict_round_trip_resumes_the_schedule():
    sgd = _sgd()
    scheduler = StepLR(sgd, step_size=2, gamma=0.5)
    for _ in range(3):
        scheduler.step()
    saved = scheduler.state_dict()
    assert "optimizer" not in saved and saved["last_epoch"] == 3
    other_sgd = _sgd()
    other = StepLR(other_sgd, step_size=99)
    other.load_state_dict(saved)
    other_sgd.param_groups[0]["lr"] = sgd.param_groups[0]["lr"]
    scheduler.step()
    other.step()
    assert other.get_last_lr() == scheduler.get_last_lr() == [0.25]


def test_step_lr_equals_torch():
    torch = pytest.importorskip("torch")
    ours = StepLR(_sgd(0.1), step_size=3, gamma=0.7)
    theirs = torch.optim.lr_scheduler.StepLR(
        torch.optim.SGD([torch.ones(1, requires_grad=True)], lr=0.1), step_size=3, gamma=0.7)
    for _ in range(10):
        ours.optimizer.step()
        theirs.optimizer.step()
        ours.step()
        theirs.step()
        assert ours.get_last_lr() == theirs.get_last_lr()
