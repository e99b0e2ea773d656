"""nn.Module (runtime/nn/module.py): registration by attribute assignment, dotted names, modes,
gradients, dtype conversion, state_dict loading with PyTorch's errors, hooks and printing."""

import numpy as np
import pytest

import runtime
from runtime import nn


class TwoLayers(nn.Module):
    def __init__(self):
        super().__init__()
        self.hidden = nn.Linear(3, 4)
        self.act = nn.ReLU()
        self.out = nn.Linear(4, 2)
        self.scale = nn.Parameter(runtime.ones(()))
        self.register_buffer("running", runtime.zeros(2))
        self.note = "plain attribute"

    def forward(self, x):
        return self.out(self.act(self.hidden(x))) * self.scale + self.running


# ----- registration ------------------------------------------------------------------------------

def test_assignment_registers_parameters_modules_and_buffers():
    model = TwoLayers()
    assert list(model._parameters) == ["scale"]
    assert list(model._modules) == ["hidden", "act", "out"]
    assert list(model._buffers) == ["running"]
    assert "note" not in model._parameters and model.note == "plain attribute"
    assert model.hidden is model._modules["hidden"] and model.scale is model._parameters["scale"]


def test_reassigning_an_attribute_moves_it_between_registries():
    model = TwoLayers()
    model.act = nn.Parameter(runtime.zeros(1))
    assert "act" in model._parameters and "act" not in model._modules
    model.scale = None
    assert model._parameters["scale"] is None and model.scale is None
    assert [name for name, _ in model.named_parameters()].count("scale") == 0


def test_wrong_values_for_registered_names_are_type_errors():
    model = TwoLayers()
    with pytest.raises(TypeError, match=r"cannot assign 'runtime.FloatTensor' as parameter "
                                        r"'scale' \(torch.nn.Parameter or None expected\)"):
        model.scale = runtime.ones(())
    with pytest.raises(TypeError, match="cannot assign 'int' as child module 'hidden'"):
        model.hidden = 3
    with pytest.raises(TypeError, match="cannot assign 'str' as buffer 'running'"):
        model.running = "zeros"


def test_assigning_before_super_init_is_an_attribute_error():
    class Forgetful(nn.Module):
        def __init__(self):
            self.layer = nn.Linear(1, 1)

    with pytest.raises(AttributeError,
                       match=r"cannot assign module before Module.__init__\(\) call"):
        Forgetful()


@pytest.mark.parametrize("register, name, error, message", [
    ("register_parameter", "a.b", KeyError, "parameter name can.+t contain"),
    ("register_parameter", "", KeyError, "parameter name can.+t be empty string"),
    ("register_parameter", "note", KeyError, "attribute 'note' already exists"),
    ("register_buffer", "a.b", KeyError, "buffer name can.+t contain"),
    ("add_module", "", KeyError, "module name can.+t be empty string"),
    ("add_module", 3, TypeError, "module name should be a string. Got int"),
])
def test_bad_names_are_refused(register, name, error, message):
    value = {"register_parameter": nn.Parameter(runtime.ones(1)),
             "register_buffer": runtime.ones(1), "add_module": nn.ReLU()}[register]
    with pytest.raises(error, match=message):
        getattr(TwoLayers(), register)(name, value)


def test_a_computed_tensor_cannot_become_a_parameter():
    model = TwoLayers()
    with pytest.raises(TypeError, match="cannot assign 'runtime.FloatTensor' object to parameter"):
        model.register_parameter("w", runtime.ones(2))
    with pytest.raises(TypeError, match="is not a Module subclass"):
        model.add_module("m", runtime.ones(2))


def test_delattr_removes_registered_entries():
    model = TwoLayers()
    del model.scale, model.running, model.act, model.note
    assert "scale" not in model._parameters and "running" not in model._buffers
    assert "act" not in model._modules and not hasattr(model, "note")
    with pytest.raises(AttributeError, match="'TwoLayers' object has no attribute 'act'"):
        model.act  # noqa: B018


def test_dir_lists_parameters_buffers_and_children():
    names = dir(TwoLayers())
    assert {"scale", "running", "hidden", "forward", "note"} <= set(names)
    assert names == sorted(names)


# ----- walking the tree --------------------------------------------------------------------------

def test_named_parameters_use_dotted_names_in_registration_order():
    names = [name for name, _ in TwoLayers().named_parameters()]
    assert names == ["scale", "hidden.weight", "hidden.bias", "out.weight", "out.bias"]
    assert [n for n, _ in TwoLayers().named_parameters(prefix="model", recurse=False)] == [
        "model.scale"]


def test_shared_parameters_and_modules_are_yielded_once():
    layer = nn.Linear(2, 2)
    tied = nn.Sequential(layer, nn.ReLU(), layer)
    assert [name for name, _ in tied.named_parameters()] == ["0.weight", "0.bias"]
    assert len(list(tied.named_parameters(remove_duplicate=False))) == 4
    assert [name for name, _ in tied.named_modules()] == ["", "0", "1"]
    assert len(list(tied.children())) == 2
    assert list(tied.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]


def test_children_modules_and_buffers():
    model = TwoLayers()
    assert [name for name, _ in model.named_children()] == ["hidden", "act", "out"]
    assert [type(m).__name__ for m in model.modules()] == ["TwoLayers", "Linear", "ReLU", "Linear"]
    assert [name for name, _ in model.named_buffers()] == ["running"]
    assert list(model.buffers())[0] is model.running


def test_apply_visits_children_before_the_parent():
    visited = []
    TwoLayers().apply(lambda m: visited.append(type(m).__name__))
    assert visited == ["Linear", "ReLU", "Linear", "TwoLayers"]


def test_apply_can_reinitialise_weights():
    def init_weights(m):
        if isinstance(m, nn.Linear):
            nn.init.zeros_(m.weight)

    model = TwoLayers().apply(init_weights)
    assert model.hidden.weight.abs().sum().item() == 0 and model.out.weight.requires_grad


# ----- modes and gradients -----------------------------------------------------------------------

def test_train_and_eval_set_the_flag_everywhere():
    model = nn.Sequential(TwoLayers(), nn.Dropout())
    assert all(m.training for m in model.modules())
    assert model.eval() is model
    assert not any(m.training for m in model.modules())
    model.train()
    assert all(m.training for m in model.modules())
    with pytest.raises(ValueError, match="training mode is expected to be boolean"):
        model.train("yes")


def test_zero_grad_sets_none_or_zeros():
    model = TwoLayers()
    model(runtime.randn(5, 3)).sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    model.zero_grad(set_to_none=False)
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and g.abs().sum().item() == 0 for g in grads)
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())


def test_gradients_accumulate_until_zero_grad():
    model = nn.Linear(2, 1)
    x = runtime.ones(1, 2)
    model(x).sum().backward()
    model(x).sum().backward()
    assert model.weight.grad.tolist() == [[2.0, 2.0]]


def test_requires_grad_false_freezes_the_module():
    model = TwoLayers().requires_grad_(False)
    assert not any(p.requires_grad for p in model.parameters())
    assert model(runtime.randn(2, 3)).grad_fn is None


# ----- dtype -------------------------------------------------------------------------------------

def test_double_converts_parameters_in_place_and_keeps_their_identity():
    model = TwoLayers()
    model(runtime.randn(2, 3)).sum().backward()
    weight = model.hidden.weight
    assert model.double() is model
    assert model.hidden.weight is weight and isinstance(weight, nn.Parameter)
    assert weight.dtype == runtime.float64 and weight.grad.dtype == runtime.float64
    assert model.running.dtype == runtime.float64
    out = model(runtime.randn(2, 3, dtype=runtime.float64))
    assert out.dtype == runtime.float64
    out.sum().backward()
    assert weight.grad.dtype == runtime.float64


def test_to_accepts_dtype_cpu_and_tensor_and_refuses_the_rest():
    model = TwoLayers()
    assert model.to("cpu") is model
    assert model.to(runtime.float64).hidden.bias.dtype == runtime.float64
    model.to(runtime.zeros(1, dtype=runtime.float32))
    assert model.hidden.bias.dtype == runtime.float32
    assert model.to("cpu", runtime.float64).scale.dtype == runtime.float64
    assert model.float().scale.dtype == runtime.float32
    with pytest.raises(TypeError, match="only accepts floating point"):
        model.to(runtime.int64)
    with pytest.raises(AssertionError, match="Torch not compiled with CUDA enabled"):
        model.to("cuda")


# ----- state_dict --------------------------------------------------------------------------------

def test_state_dict_holds_detached_views_of_parameters_and_persistent_buffers():
    model = TwoLayers()
    model.register_buffer("scratch", runtime.zeros(1), persistent=False)
    state = model.state_dict()
    assert list(state) == ["scale", "running", "hidden.weight", "hidden.bias", "out.weight",
                           "out.bias"]
    assert not state["hidden.weight"].requires_grad
    state["hidden.weight"][0, 0] = 42.0  # shares memory with the parameter
    assert model.hidden.weight[0, 0].item() == 42.0
    assert model.state_dict(keep_vars=True)["hidden.weight"] is model.hidden.weight


def test_load_state_dict_round_trip_reproduces_outputs():
    source, target = TwoLayers(), TwoLayers()
    x = runtime.randn(4, 3)
    weight = target.hidden.weight
    result = target.load_state_dict(source.state_dict())
    assert repr(result) == "<All keys matched successfully>"
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert target.hidden.weight is weight  # copied into, not replaced
    np.testing.assert_array_equal(target(x).detach().numpy(), source(x).detach().numpy())


def test_load_state_dict_converts_dtype_and_does_not_record_history():
    model = nn.Linear(2, 2)
    model.load_state_dict({"weight": runtime.ones(2, 2, dtype=runtime.float64),
                           "bias": runtime.zeros(2, dtype=runtime.float64)})
    assert model.weight.dtype == runtime.float32 and model.weight.is_leaf
    assert model.weight.tolist() == [[1.0, 1.0], [1.0, 1.0]] and model.weight.requires_grad


def test_strict_load_lists_missing_unexpected_and_mismatched_keys():
    bad = {"weight": runtime.zeros(3, 3), "extra": runtime.zeros(1), "x.y": runtime.zeros(1)}
    with pytest.raises(RuntimeError) as error:
        nn.Linear(2, 3).load_state_dict(bad)
    assert str(error.value) == (
        "Error(s) in loading state_dict for Linear:\n"
        '\tMissing key(s) in state_dict: "bias". \n'
        '\tUnexpected key(s) in state_dict: "extra", "x.y". \n'
        "\tsize mismatch for weight: copying a param with shape runtime.Size([3, 3]) from "
        "checkpoint, the shape in current model is runtime.Size([3, 2]).")


def test_non_strict_load_returns_the_keys_but_still_refuses_wrong_shapes():
    model = nn.Sequential(nn.Linear(2, 3))
    result = model.load_state_dict({"0.weight": runtime.ones(3, 2), "1.bias": runtime.ones(1)},
                                   strict=False)
    assert result == (["0.bias"], ["1.bias"])
    assert repr(result) == ("_IncompatibleKeys(missing_keys=['0.bias'], "
                            "unexpected_keys=['1.bias'])")
    assert model[0].weight.sum().item() == 6.0
    with pytest.raises(RuntimeError, match="size mismatch for 0.weight"):
        model.load_state_dict({"0.weight": runtime.ones(2, 2)}, strict=False)


def test_load_state_dict_refuses_non_tensors_and_non_mappings():
    with pytest.raises(RuntimeError, match='While copying the parameter named "bias", expected'):
        nn.Linear(2, 1).load_state_dict({"weight": runtime.ones(1, 2), "bias": [0.0]})
    with pytest.raises(TypeError, match="Expected state_dict to be dict-like"):
        nn.Linear(2, 1).load_state_dict([("weight", runtime.ones(1, 2))])


def test_load_error_message_equals_torch_message():
    torch = pytest.importorskip("torch")

    def attempt(lib):
        model = lib.nn.Sequential(lib.nn.Linear(2, 3), lib.nn.ReLU(), lib.nn.Linear(3, 1))
        bad = {"0.weight": lib.zeros(3, 2), "0.bias": lib.zeros(4), "2.weight": lib.zeros(1, 3),
               "1.weight": lib.zeros(1), "3.bias": lib.zeros(1)}
        with pytest.raises(RuntimeError) as error:
            model.load_state_dict(bad)
        return str(error.value)

    assert attempt(runtime) == attempt(torch).replace("torch.Size", "runtime.Size")


# ----- calling and printing ----------------------------------------------------------------------

def test_calling_a_module_without_forward_raises():
    with pytest.raises(NotImplementedError, match=r'Module \[Module\] is missing the required '
                                                  '"forward" function'):
        nn.Module()(runtime.ones(1))


def test_forward_hooks_see_and_may_replace_inputs_and_outputs():
    model = nn.Linear(2, 2)
    seen = []
    pre = model.register_forward_pre_hook(lambda m, args: (args[0] * 0,))
    post = model.register_forward_hook(lambda m, args, out: seen.append(args[0].sum().item()))
    assert model(runtime.ones(1, 2)).tolist() == [model.bias.tolist()]
    assert seen == [0.0]
    pre.remove()
    post.remove()
    model(runtime.ones(1, 2))
    assert seen == [0.0]


def test_repr_nests_children_and_shows_extra_repr():
    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = nn.Sequential(nn.Linear(1, 2, bias=False), nn.Softmax(dim=-1))

        def extra_repr(self):
            return "depth=2\nwidth=1"

    assert repr(Block()) == (
        "Block(\n"
        "  depth=2\n"
        "  width=1\n"
        "  (inner): Sequential(\n"
        "    (0): Linear(in_features=1, out_features=2, bias=False)\n"
        "    (1): Softmax(dim=-1)\n"
        "  )\n"
        ")")


def test_repr_equals_torch_repr_for_a_custom_module():
    torch = pytest.importorskip("torch")

    def build(nn):
        class Model(nn.Module):
            def __init__(self):
                super().__init__()
                self.encoder = nn.Sequential(nn.Flatten(), nn.Linear(4, 8), nn.LeakyReLU(0.2),
                                             nn.Dropout(0.1))
                self.heads = nn.ModuleDict({"a": nn.Linear(8, 2), "b": nn.Identity()})
                self.blocks = nn.ModuleList([nn.Tanh(), nn.Tanh(), nn.Sigmoid()])
                self.missing = None

        return Model()

    assert repr(build(nn)) == repr(build(torch.nn))


def test_pickled_and_deep_copied_modules_are_independent():
    import copy
    import pickle

    model = TwoLayers()
    for clone in (copy.deepcopy(model), pickle.loads(pickle.dumps(model))):
        assert clone.hidden.weight is not model.hidden.weight
        np.testing.assert_array_equal(clone.hidden.weight.numpy(force=True),
                                      model.hidden.weight.numpy(force=True))
        clone(runtime.randn(2, 3)).sum().backward()
        assert clone.hidden.weight.grad is not None and model.hidden.weight.grad is None
