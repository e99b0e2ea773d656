"""Sequential, ModuleList and ModuleDict (runtime/nn/containers.py)."""

from collections import OrderedDict

import pytest

import runtime
from runtime import nn


def three_layers():
    return nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))


def test_sequential_runs_its_modules_in_order():
    model = three_layers()
    x = runtime.randn(4, 2)
    expected = model[2](model[1](model[0](x)))
    assert model(x).tolist() == expected.tolist()


def test_sequential_from_ordered_dict_keeps_the_names():
    model = nn.Sequential(OrderedDict([("fc", nn.Linear(2, 3)), ("act", nn.ReLU())]))
    assert [name for name, _ in model.named_parameters()] == ["fc.weight", "fc.bias"]
    assert model.fc is model[0] and isinstance(model.act, nn.ReLU)


def test_sequential_indexing_length_and_iteration():
    model = three_layers()
    assert len(model) == 3
    assert model[-1] is model[2] and isinstance(model[-2], nn.ReLU)
    assert [type(m).__name__ for m in model] == ["Linear", "ReLU", "Linear"]
    with pytest.raises(IndexError, match="index 3 is out of range"):
        model[3]  # noqa: B018


def test_sequential_slice_is_a_sequential_sharing_the_modules():
    model = three_layers()
    head = model[1:]
    assert isinstance(head, nn.Sequential) and len(head) == 2
    assert head[0] is model[1] and list(head._modules) == ["1", "2"]


def test_append_extend_insert_and_delete_keep_numbering():
    model = nn.Sequential(nn.ReLU())
    assert model.append(nn.Tanh()) is model
    model.extend([nn.Sigmoid(), nn.Identity()])
    model.insert(0, nn.Flatten())
    assert [type(m).__name__ for m in model] == ["Flatten", "ReLU", "Tanh", "Sigmoid", "Identity"]
    del model[1]
    del model[-2:]
    assert [type(m).__name__ for m in model] == ["Flatten", "Tanh"]
    assert list(model._modules) == ["0", "1"]
    model[1] = nn.ReLU()
    assert isinstance(model[1], nn.ReLU)
    with pytest.raises(IndexError, match="Index out of range: 5"):
        model.insert(5, nn.ReLU())


def test_sequential_concatenation_and_pop():
    joined = three_layers() + nn.Sequential(nn.Sigmoid())
    assert len(joined) == 4 and list(joined._modules) == ["0", "1", "2", "3"]
    assert isinstance(joined.pop(-1), nn.Sigmoid) and len(joined) == 3
    with pytest.raises(ValueError, match="supports only objects of Sequential class"):
        three_layers() + nn.ReLU()  # noqa: B018


def test_sequential_repr_equals_torch():
    torch = pytest.importorskip("torch")

    def build(nn):
        return nn.Sequential(nn.Linear(2, 3), nn.Sequential(nn.ReLU(), nn.Linear(3, 1)),
                             nn.Softmax(dim=1))

    assert repr(build(nn)) == repr(build(torch.nn))
    assert repr(nn.Sequential()) == repr(torch.nn.Sequential()) == "Sequential()"


def test_module_list_registers_parameters_for_its_owner():
    class Stack(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)])

        def forward(self, x):
            for layer in self.layers:
                x = layer(x)
            return x

    model = Stack()
    assert len(list(model.parameters())) == 6
    assert [name for name, _ in model.named_parameters()][:2] == ["layers.0.weight",
                                                                 "layers.0.bias"]
    assert model(runtime.ones(1, 2)).shape == (1, 2)


def test_module_list_operations():
    layers = nn.ModuleList([nn.ReLU(), nn.Tanh()])
    layers.append(nn.Sigmoid())
    layers += [nn.Identity()]
    layers.insert(1, nn.Flatten())
    assert [type(m).__name__ for m in layers] == ["ReLU", "Flatten", "Tanh", "Sigmoid", "Identity"]
    assert isinstance(layers[-1], nn.Identity) and isinstance(layers[1:3], nn.ModuleList)
    del layers[0]
    assert list(layers._modules) == ["0", "1", "2", "3"] and isinstance(layers[0], nn.Flatten)
    with pytest.raises(TypeError, match="ModuleList.extend should be called with an iterable"):
        layers.extend(nn.ReLU())
    with pytest.raises(NotImplementedError):
        layers(runtime.ones(1))


def test_module_list_repr_groups_repeated_modules_like_torch():
    expected = ("ModuleList(\n"
                "  (0-2): 3 x Linear(in_features=2, out_features=2, bias=True)\n"
                "  (3): ReLU()\n"
                ")")
    layers = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)] + [nn.ReLU()])
    assert repr(layers) == expected
    assert repr(nn.ModuleList()) == "ModuleList()"


def test_module_dict_behaves_like_an_ordered_dict_of_modules():
    heads = nn.ModuleDict({"a": nn.Linear(2, 1)})
    heads.update([("b", nn.ReLU())])
    heads["c"] = nn.Tanh()
    assert list(heads) == ["a", "b", "c"] and list(heads.keys()) == ["a", "b", "c"]
    assert "b" in heads and len(heads) == 3
    assert isinstance(heads.pop("b"), nn.ReLU) and "b" not in heads
    assert [name for name, _ in heads.named_parameters()] == ["a.weight", "a.bias"]
    assert [type(m).__name__ for m in heads.values()] == ["Linear", "Tanh"]
    with pytest.raises(ValueError, match="has length 3; 2 is required"):
        heads.update([("x", nn.ReLU(), 3)])
    heads.clear()
    assert len(heads) == 0
