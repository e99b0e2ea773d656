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


# ----- every schedule against PyTorch's numbers, step by step ------------------------------------

SCHEDULES = [
    ("StepLR", {"step_size": 3, "gamma": 0.5}, "SGD"),
    ("MultiStepLR", {"milestones": [2, 5, 5, 9], "gamma": 0.3}, "SGD"),
    ("ExponentialLR", {"gamma": 0.9}, "SGD"),
    ("LambdaLR", {"lr_lambda": lambda epoch: 0.95 ** epoch / (1 + epoch)}, "SGD"),
    ("CosineAnnealingLR", {"T_max": 5, "eta_min": 0.01}, "SGD"),
    ("OneCycleLR", {"max_lr": 0.5, "total_steps": 20}, "SGD"),
    ("OneCycleLR", {"max_lr": [0.5, 0.2], "total_steps": 20, "anneal_strategy": "linear",
                    "three_phase": True}, "SGD"),
    ("OneCycleLR", {"max_lr": 0.01, "epochs": 4, "steps_per_epoch": 5, "pct_start": 0.25},
     "Adam"),
]


def _two_groups(lib, optimizer):
    params = [lib.ones(2, requires_grad=True), lib.ones(3, requires_grad=True)]
    extra = {"momentum": 0.9} if optimizer == "SGD" else {}
    return getattr(lib.optim, optimizer)(
        [{"params": params[:1]}, {"params": params[1:], "lr": 0.05}], lr=0.1, **extra)


@pytest.mark.parametrize("name, options, optimizer", SCHEDULES)
def test_schedule_matches_torch_step_by_step(name, options, optimizer):
    torch = pytest.importorskip("torch")
    ours_opt, theirs_opt = _two_groups(runtime, optimizer), _two_groups(torch, optimizer)
    ours = getattr(runtime.optim.lr_scheduler, name)(ours_opt, **options)
    theirs = getattr(torch.optim.lr_scheduler, name)(theirs_opt, **options)
    steps = 20 if name == "OneCycleLR" else 14
    for _ in range(steps):
        assert ours.get_last_lr() == theirs.get_last_lr()
        for mine, other in zip(ours_opt.param_groups, theirs_opt.param_groups):
            assert mine["lr"] == other["lr"]
            for key in ("momentum", "betas"):
                assert mine.get(key) == other.get(key)
        ours_opt.step()
        theirs_opt.step()
        ours.step()
        theirs.step()


def test_closed_form_jump_with_epoch_matches_torch():
    torch = pytest.importorskip("torch")
    for name, options in (("CosineAnnealingLR", {"T_max": 6}), ("ExponentialLR", {"gamma": 0.8}),
                          ("MultiStepLR", {"milestones": [1, 3]})):
        rates = []
        for lib in (runtime, torch):
            opt = _two_groups(lib, "SGD")
            scheduler = getattr(lib.optim.lr_scheduler, name)(opt, **options)
            opt.step()
            with pytest.warns(UserWarning, match="epoch parameter"):
                scheduler.step(4)
            rates.append(scheduler.get_last_lr())
        assert rates[0] == pytest.approx(rates[1], rel=1e-15)


@pytest.mark.parametrize("options", [
    {}, {"mode": "max", "factor": 0.5, "patience": 1, "cooldown": 2},
    {"threshold_mode": "abs", "threshold": 0.05, "patience": 0, "min_lr": [0.02, 0.0]},
])
def test_reduce_on_plateau_matches_torch(options):
    torch = pytest.importorskip("torch")
    metrics = [1.0, 0.9, 0.95, 0.95, 0.96, 0.89, 0.89, 0.9, 0.9, 0.7, 0.7, 0.71, 0.72, 0.73] * 2
    rates = []
    for lib in (runtime, torch):
        opt = _two_groups(lib, "SGD")
        scheduler = lib.optim.lr_scheduler.ReduceLROnPlateau(opt, **options)
        seen = []
        for value in metrics:
            scheduler.step(lib.tensor(value, dtype=lib.float64))  # a 0-d tensor, as losses
            seen.append((scheduler.get_last_lr(), scheduler.num_bad_epochs, scheduler.best))
        rates.append(seen)
    assert rates[0] == rates[1]


def test_lambda_lr_state_dict_keeps_callable_objects_state():
    class Warmup:
        def __init__(self):
            self.steps = 3

        def __call__(self, epoch):
            return min(1.0, (epoch + 1) / self.steps)

    scheduler = runtime.optim.lr_scheduler.LambdaLR(_sgd(), [Warmup()])
    scheduler.lr_lambdas[0].steps = 7
    state = scheduler.state_dict()
    assert state["lr_lambdas"] == [{"steps": 7}]
    fresh = runtime.optim.lr_scheduler.LambdaLR(_sgd(), [Warmup()])
    fresh.load_state_dict(state)
    assert fresh.lr_lambdas[0].steps == 7
