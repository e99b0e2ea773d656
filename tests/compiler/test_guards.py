"""Guards: a trace records what it depended on besides tensors, and notices when that changes."""

import random

import pytest

import compiler
import runtime as torch
from compiler.artifact_cache import graph_key
from compiler.guards import TraceGuard, recording_reads, trace_once_checked
from runtime import nn


class Scaled(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(3, 2)
        self.scale = 2.0
        self.unused = "never read"

    def forward(self, x):
        return self.linear(x) * self.scale


def _guarded(model, x=None):
    x = torch.randn(4, 3) if x is None else x
    return trace_once_checked(lambda: compiler.trace(model, (x,)), model,
                              lambda g: graph_key(g) or str(g))


def test_a_guard_records_the_attributes_forward_read():
    model = Scaled()
    with recording_reads(model) as reads:
        compiler.trace(model, (torch.randn(4, 3),))
    assert [(path, name, value) for path, _, name, value in reads] == [("", "scale", 2.0)]
    assert type(model) is Scaled  # the recording class is gone again


@pytest.mark.parametrize("change, expected", [
    (lambda m: setattr(m, "scale", 100.0), "'scale' that forward read changed (2.0 -> 100.0)"),
    (lambda m: setattr(m, "linear", nn.Linear(3, 2)), "submodule 'linear' was replaced"),
    (lambda m: m.eval(), "switched to eval()"),
    (lambda m: m.linear.register_forward_hook(lambda mod, args, out: out * 0),
     "forward hooks of 'linear' changed"),
])
def test_a_change_the_trace_depended_on_breaks_the_guard(change, expected):
    model = Scaled()
    _, guard = _guarded(model)
    assert guard.holds(model)
    change(model)
    assert not guard.holds(model)
    assert expected in guard.what_changed(model)


def test_changes_forward_did_not_depend_on_keep_the_guard():
    model = Scaled()
    _, guard = _guarded(model)
    model.unused = "changed"
    with torch.no_grad():
        model.linear.weight.mul_(2)  # parameters are read by name at each call, not guarded
    model.linear.weight = nn.Parameter(torch.randn(2, 3))
    assert guard.holds(model)
    assert guard.what_changed(model) is None


class DynamicNet(nn.Module):
    """PyTorch's `dynamic_net` example: a random number of middle layers each forward."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(3, 3)

    def forward(self, x):
        for _ in range(random.randint(0, 3)):
            x = self.a(x).relu()
        return x


def test_a_forward_that_draws_from_python_random_is_refused_and_the_state_kept():
    state = random.getstate()
    with pytest.raises(compiler.CompileError, match="draws from Python's random module"):
        _guarded(DynamicNet())
    assert random.getstate() == state


class Counting(nn.Module):
    """A forward whose graph depends on a global that changes between traces."""

    calls = 0

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(3, 3)

    def forward(self, x):
        Counting.calls += 1
        return self.a(x) * float(Counting.calls)


def test_a_forward_whose_two_traces_differ_is_refused():
    with pytest.raises(compiler.CompileError, match="different graph each time"):
        _guarded(Counting())


def test_a_guard_of_a_plain_function_holds():
    x = torch.randn(2)
    graph, guard = trace_once_checked(lambda: compiler.trace(torch.tanh, (x,)), torch.tanh,
                                      lambda g: str(g))
    assert isinstance(guard, TraceGuard) and guard.holds(torch.tanh)
    assert len(graph.nodes) == 1


class Noisy(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(3, 3)

    def forward(self, x):
        return self.a(x) + torch.randn(3)  # drawn once at trace time: not what eager does


def test_a_forward_that_draws_from_the_default_generator_is_refused():
    with pytest.raises(compiler.CompileError, match="Noisy.forward draws from the default"):
        _guarded(Noisy())


# ----- through compile() and compile_train_step(): changes are followed, never ignored -------

def _mlp():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))


def _same_as_eager(fast, model, x):
    with torch.no_grad():
        assert torch.allclose(fast(x), model(x), atol=1e-6)
    out = fast(x)
    out.sum().backward()
    return out


@pytest.mark.parametrize("change", [
    lambda m: m.__setitem__(1, nn.Tanh()),
    lambda m: m[2].register_forward_hook(lambda mod, args, out: out * 0),
    lambda m: m.eval(),
], ids=["replaced-layer", "forward-hook", "eval"])
def test_a_compiled_module_follows_changes_to_the_model(change):
    model, x = _mlp(), torch.randn(5, 4)
    fast = compiler.compile(model, (x,))
    _same_as_eager(fast, model, x)
    change(model)
    _same_as_eager(fast, model, x)
    assert len(fast.retraces) == 1


def test_a_compiled_module_follows_an_attribute_its_forward_reads():
    model, x = Scaled(), torch.randn(2, 3)
    fast = compiler.compile(model, (x,))
    model.scale = 100.0
    with torch.no_grad():
        assert torch.allclose(fast(x), model(x), atol=1e-4)
    assert fast.retraces == ["the attribute 'scale' that forward read changed (2.0 -> 100.0)"]
    with torch.no_grad():
        fast(x)
    assert len(fast.retraces) == 1  # checked once, not again at every call


def test_compile_refuses_pytorchs_dynamic_net():
    with pytest.raises(compiler.CompileError, match="Python's random module"):
        compiler.compile(DynamicNet(), (torch.randn(2, 3),))


def test_a_compiled_train_step_follows_a_replaced_activation():
    model, x, y = _mlp(), torch.randn(5, 4), torch.randn(5, 3)
    twin = _mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    twin_opt = torch.optim.SGD(twin.parameters(), lr=0.1)
    step = compiler.compile_train_step(model, nn.MSELoss(), opt, (x, y))
    model[1] = nn.Tanh()
    twin[1] = nn.Tanh()
    loss = step(x, y)
    twin_opt.zero_grad()
    eager_loss = nn.MSELoss()(twin(x), y)
    eager_loss.backward()
    twin_opt.step()
    assert step.retraces == ["submodule '1' was replaced (ReLU -> Tanh)"]
    assert abs(loss.item() - eager_loss.item()) < 1e-5
    for p, q in zip(model.parameters(), twin.parameters()):
        assert torch.allclose(p, q, atol=1e-5)
