"""nn.utils.clip_grad_norm_ / clip_grad_value_ and nn.ParameterList / ParameterDict against
PyTorch: returned norms, clipped gradients, printed forms and registration."""

import numpy as np
import pytest

import runtime

torch = pytest.importorskip("torch")


def grads_after(lib, clip):
    lib.manual_seed(0)
    params = [lib.nn.Parameter(lib.tensor(np.arange(6.0).reshape(2, 3))),
              lib.nn.Parameter(lib.tensor([-4.0, 0.5])),
              lib.nn.Parameter(lib.tensor([1.0]))]  # no gradient: skipped
    ((params[0] ** 2).sum() * 3 + (params[1] ** 3).sum()).backward()
    result = clip(lib, params)
    return result, [p.grad.numpy().copy() for p in params[:2]]


@pytest.mark.parametrize("clip", [
    lambda lib, ps: lib.nn.utils.clip_grad_norm_(ps, 10.0),
    lambda lib, ps: lib.nn.utils.clip_grad_norm_(ps, 1e3),
    lambda lib, ps: lib.nn.utils.clip_grad_norm_(ps, 5.0, norm_type=1),
    lambda lib, ps: lib.nn.utils.clip_grad_norm_(ps, 5.0, norm_type=float("inf")),
    lambda lib, ps: lib.nn.utils.clip_grad_norm_(iter(ps), 2.0),
    lambda lib, ps: lib.nn.utils.clip_grad_value_(ps, 7.5),
])
def test_clipping_matches_torch(clip):
    (ours, our_grads), (theirs, their_grads) = grads_after(runtime, clip), grads_after(torch, clip)
    if theirs is None:
        assert ours is None
    else:
        np.testing.assert_allclose(ours.item(), theirs.item(), rtol=1e-6)
    for a, b in zip(our_grads, their_grads):
        np.testing.assert_allclose(a, b, rtol=1e-6)


def test_nonfinite_norm_can_raise():
    p = runtime.nn.Parameter(runtime.ones(2))
    p.grad = runtime.tensor([float("inf"), 1.0])
    with pytest.raises(RuntimeError, match="non-finite"):
        runtime.nn.utils.clip_grad_norm_([p], 1.0, error_if_nonfinite=True)


def test_parameter_list_and_dict_register_and_print_as_torch():
    for make in (lambda lib: lib.nn.ParameterList([lib.nn.Parameter(lib.ones(3, 4)),
                                                    lib.nn.Parameter(lib.ones(2).double())]),
                 lambda lib: lib.nn.ParameterDict({"a": lib.nn.Parameter(lib.ones(2)),
                                                   "b": lib.nn.Parameter(lib.ones(2, 2))})):
        ours, theirs = make(runtime), make(torch)
        assert repr(ours) == repr(theirs)
        assert [n for n, _ in ours.named_parameters()] == \
            [n for n, _ in theirs.named_parameters()]
    plist = runtime.nn.ParameterList()
    plist.append(runtime.ones(2))  # a plain tensor becomes a Parameter
    assert isinstance(plist[0], runtime.nn.Parameter) and len(plist) == 1
    assert isinstance(plist[-1], runtime.nn.Parameter)
