"""Forward hooks and pre-hooks with PyTorch's semantics (prepend, with_kwargs, always_call,
replacing arguments and outputs, removal), buffers and Module.apply, side by side with torch."""

import pytest

import runtime

torch = pytest.importorskip("torch")


def make(lib):
    class Scale(lib.nn.Module):
        def forward(self, x, factor=2.0):
            if factor == 0:
                raise ValueError("factor 0")
            return x * factor

    return Scale()


def run_hooks(lib):
    log = []
    m = make(lib)
    m.register_forward_pre_hook(lambda mod, args: log.append("pre") or None)
    m.register_forward_pre_hook(lambda mod, args: log.append("first") or None, prepend=True)
    m.register_forward_pre_hook(lambda mod, args, kwargs: (args, {"factor": 3.0}),
                                with_kwargs=True)
    m.register_forward_hook(lambda mod, args, out: out + 1)
    handle = m.register_forward_hook(lambda mod, args, kwargs, out: log.append(kwargs) or None,
                                     with_kwargs=True)
    out = m(lib.ones(2))
    handle.remove()
    m(lib.ones(2))
    always = []
    m.register_forward_hook(lambda mod, args, out: always.append(out), always_call=True)
    m.register_forward_pre_hook(lambda mod, args, kwargs: (args, {"factor": 0}),
                                with_kwargs=True)
    with pytest.raises(ValueError):
        m(lib.ones(1))
    return out.tolist(), log, always


def test_forward_hooks_behave_as_torch():
    assert run_hooks(runtime) == run_hooks(torch)


def test_pre_hook_result_that_is_not_a_tuple_becomes_the_only_argument():
    for lib in (runtime, torch):
        m = make(lib)
        m.register_forward_pre_hook(lambda mod, args: args[0] + 1)
        assert m(lib.zeros(1)).tolist() == [2.0]


def test_buffers_and_apply_as_torch():
    results = []
    for lib in (runtime, torch):
        m = lib.nn.Sequential(lib.nn.Linear(2, 2), lib.nn.BatchNorm1d(2))
        m[0].register_buffer("scratch", lib.zeros(1), persistent=False)
        visited: list[str] = []
        m.apply(lambda mod, seen=visited: seen.append(type(mod).__name__))
        results.append((visited, [n for n, _ in m.named_buffers()], list(m.state_dict())))
    assert results[0] == results[1]
