"""Every public function of `runtime` and every Tensor method, called as PyTorch code calls it,
against PyTorch. A function or method added without a case here fails the coverage tests, so the
table below is the list of what `import runtime as torch` supports."""

import numpy as np
import pytest

import runtime
from runtime import _arrangement, _creation, _functions

torch = pytest.importorskip("torch")

RNG = np.random.default_rng(0)
A = RNG.standard_normal((2, 3))
B = RNG.standard_normal((3, 4))
V = RNG.standard_normal(3)
P = RNG.uniform(0.5, 2.0, (2, 3))
I = np.array([[0, 2, 1], [1, 1, 0]])


def t(lib, data=A, dtype="float64"):
    return lib.tensor(data, dtype=getattr(lib, dtype))


def shape_only(value):
    """For random draws: compare what is not random."""
    return ("shape", tuple(value.shape), str(value.dtype).split(".")[-1])


# name -> lambda lib: result (tensor, tuple of tensors, or plain value)
FUNCTIONS = {
    "abs": lambda lib: lib.abs(t(lib)),
    "add": lambda lib: lib.add(t(lib), t(lib, V), alpha=2),
    "all": lambda lib: lib.all(t(lib) > -5),
    "allclose": lambda lib: lib.allclose(t(lib), t(lib) + 1e-9),
    "amax": lambda lib: lib.amax(t(lib), 1),
    "amin": lambda lib: lib.amin(t(lib), (0, 1)),
    "any": lambda lib: lib.any(t(lib) > 1, dim=0),
    "arange": lambda lib: lib.arange(1, 7, 2),
    "argmax": lambda lib: lib.argmax(t(lib), dim=1),
    "argmin": lambda lib: lib.argmin(t(lib)),
    "as_tensor": lambda lib: lib.as_tensor([1, 2]),
    "bitwise_and": lambda lib: lib.bitwise_and(t(lib) > 0, t(lib) < 1),
    "bitwise_not": lambda lib: lib.bitwise_not(lib.tensor([3, -1])),
    "bitwise_or": lambda lib: lib.bitwise_or(t(lib) > 0, t(lib) < -1),
    "bitwise_xor": lambda lib: lib.bitwise_xor(t(lib) > 0, t(lib) < 1),
    "bmm": lambda lib: lib.bmm(t(lib, A[None]), t(lib, B[None])),
    "broadcast_to": lambda lib: lib.broadcast_to(t(lib, V), (2, 3)),
    "cat": lambda lib: lib.cat([t(lib), t(lib)], dim=1),
    "clamp": lambda lib: lib.clamp(t(lib), -0.5, 0.5),
    "clip": lambda lib: lib.clip(t(lib), min=0.0),
    "clone": lambda lib: lib.clone(t(lib)),
    "concat": lambda lib: lib.concat([t(lib), t(lib)]),
    "detach": lambda lib: lib.detach(t(lib)),
    "div": lambda lib: lib.div(t(lib), t(lib, P)),
    "dot": lambda lib: lib.dot(t(lib, V), t(lib, V)),
    "empty": lambda lib: shape_only(lib.empty(2, 3)),
    "empty_like": lambda lib: shape_only(lib.empty_like(t(lib))),
    "eq": lambda lib: lib.eq(t(lib), 0),
    "equal": lambda lib: lib.equal(t(lib), t(lib)),
    "exp": lambda lib: lib.exp(t(lib)),
    "expand": lambda lib: t(lib, V).expand(2, 3),
    "eye": lambda lib: lib.eye(3),
    "flatten": lambda lib: lib.flatten(t(lib)),
    "from_numpy": lambda lib: lib.from_numpy(np.arange(3)),
    "full": lambda lib: lib.full((2, 2), 1.5),
    "full_like": lambda lib: lib.full_like(t(lib), 7),
    "gather": lambda lib: lib.gather(t(lib), 1, lib.tensor(I)),
    "ge": lambda lib: lib.ge(t(lib), 0.5),
    "gt": lambda lib: lib.gt(t(lib), t(lib, V)),
    "is_tensor": lambda lib: lib.is_tensor(t(lib)),
    "isnan": lambda lib: lib.isnan(lib.log(t(lib))),
    "le": lambda lib: lib.le(t(lib), 0.0),
    "linspace": lambda lib: lib.linspace(-1, 1, 5),
    "log": lambda lib: lib.log(t(lib, P)),
    "log1p": lambda lib: lib.log1p(t(lib, P)),
    "log_softmax": lambda lib: lib.log_softmax(t(lib), dim=1),
    "logical_and": lambda lib: lib.logical_and(t(lib) > 0, t(lib)),
    "logical_not": lambda lib: lib.logical_not(t(lib) > 0),
    "logical_or": lambda lib: lib.logical_or(t(lib) > 0, t(lib) < -1),
    "logical_xor": lambda lib: lib.logical_xor(t(lib) > 0, t(lib) < 1),
    "lt": lambda lib: lib.lt(t(lib), 0),
    "matmul": lambda lib: lib.matmul(t(lib), t(lib, B)),
    "max": lambda lib: tuple(lib.max(t(lib), 1)) + (lib.max(t(lib)),),
    "maximum": lambda lib: lib.maximum(t(lib), t(lib, V)),
    "mean": lambda lib: lib.mean(t(lib), dim=0, keepdim=True),
    "min": lambda lib: tuple(lib.min(t(lib), dim=0)) + (lib.min(t(lib)),),
    "minimum": lambda lib: lib.minimum(t(lib), t(lib, V)),
    "mm": lambda lib: lib.mm(t(lib), t(lib, B)),
    "mul": lambda lib: lib.mul(t(lib), 3),
    "mv": lambda lib: lib.mv(t(lib), t(lib, V)),
    "ne": lambda lib: lib.ne(t(lib), t(lib)),
    "neg": lambda lib: lib.neg(t(lib)),
    "norm": lambda lib: lib.norm(t(lib)),
    "normal": lambda lib: shape_only(lib.normal(0.0, 1.0, (2, 3))),
    "numel": lambda lib: lib.numel(t(lib)),
    "ones": lambda lib: lib.ones(2, 3),
    "ones_like": lambda lib: lib.ones_like(t(lib)),
    "permute": lambda lib: lib.permute(t(lib), (1, 0)),
    "pow": lambda lib: lib.pow(t(lib, P), 1.5),
    "promote_types": lambda lib: str(lib.promote_types(lib.int32, lib.float16)).split(".")[-1],
    "rand": lambda lib: shape_only(lib.rand(2, 3)),
    "rand_like": lambda lib: shape_only(lib.rand_like(t(lib))),
    "randint": lambda lib: shape_only(lib.randint(0, 4, (2, 3))),
    "randn": lambda lib: shape_only(lib.randn(2, 3, dtype=lib.float64)),
    "randn_like": lambda lib: shape_only(lib.randn_like(t(lib))),
    "randperm": lambda lib: sorted(lib.randperm(4).tolist()),
    "reciprocal": lambda lib: lib.reciprocal(t(lib, P)),
    "relu": lambda lib: lib.relu(t(lib)),
    "reshape": lambda lib: lib.reshape(t(lib), (3, 2)),
    "result_type": lambda lib: str(lib.result_type(lib.arange(2), 2.5)).split(".")[-1],
    "rsqrt": lambda lib: lib.rsqrt(t(lib, P)),
    "rsub": lambda lib: lib.rsub(t(lib), t(lib, V), alpha=2),
    "sigmoid": lambda lib: lib.sigmoid(t(lib)),
    "softmax": lambda lib: lib.softmax(t(lib), dim=0),
    "sqrt": lambda lib: lib.sqrt(t(lib, P)),
    "square": lambda lib: lib.square(t(lib)),
    "squeeze": lambda lib: lib.squeeze(t(lib, A[:, None])),
    "stack": lambda lib: lib.stack([t(lib), t(lib)], dim=2),
    "std": lambda lib: lib.std(t(lib), dim=1),
    "sub": lambda lib: lib.sub(t(lib), 1, alpha=3),
    "sum": lambda lib: lib.sum(t(lib), dim=-1),
    "swapaxes": lambda lib: lib.swapaxes(t(lib), 0, 1),
    "t": lambda lib: lib.t(t(lib)),
    "take_along_dim": lambda lib: lib.take_along_dim(t(lib), lib.tensor(I), dim=1),
    "tanh": lambda lib: lib.tanh(t(lib)),
    "tensor": lambda lib: lib.tensor([[1, 2.5]]),
    "transpose": lambda lib: lib.transpose(t(lib), 1, 0),
    "true_divide": lambda lib: lib.true_divide(lib.arange(3), 2),
    "unflatten": lambda lib: lib.unflatten(t(lib), 1, (3, 1)),
    "unsqueeze": lambda lib: lib.unsqueeze(t(lib), 1),
    "var": lambda lib: lib.var(t(lib), unbiased=False),
    "where": lambda lib: lib.where(t(lib) > 0, t(lib), 0.0),
    "zeros": lambda lib: lib.zeros((2, 3), dtype=lib.int32),
    "zeros_like": lambda lib: lib.zeros_like(t(lib)),
}


def in_place(name, *args):
    def call(lib):
        x = t(lib, P).clone()
        out = getattr(x, name)(*(a(lib) if callable(a) else a for a in args))
        assert out is x  # in-place methods return the tensor itself
        return x

    return call


METHODS = {
    "T": lambda lib: t(lib).T,
    "abs_": in_place("abs_"),
    "add_": in_place("add_", 2),
    "addcdiv": lambda lib: t(lib).addcdiv(t(lib, P), t(lib, P) + 1, value=0.5),
    "addcdiv_": in_place("addcdiv_", lambda lib: t(lib), lambda lib: t(lib, P) + 1),
    "addcmul": lambda lib: t(lib).addcmul(t(lib), t(lib, P), value=2),
    "addcmul_": in_place("addcmul_", lambda lib: t(lib), lambda lib: t(lib)),
    "bool": lambda lib: t(lib).bool(),
    "clamp_": in_place("clamp_", 0.7, 1.2),
    "clip_": in_place("clip_", 0.7),
    "contiguous": lambda lib: t(lib).t().contiguous(),
    "copy_": in_place("copy_", lambda lib: t(lib, V)),
    "cpu": lambda lib: t(lib).cpu(),
    "div_": in_place("div_", 4),
    "double": lambda lib: t(lib, dtype="float32").double(),
    "exp_": in_place("exp_"),
    "expand_as": lambda lib: t(lib, V).expand_as(t(lib)),
    "fill_": in_place("fill_", 3),
    "float": lambda lib: t(lib).float(),
    "half": lambda lib: t(lib).half(),
    "int": lambda lib: t(lib, P).int(),
    "lerp": lambda lib: t(lib).lerp(t(lib, P), 0.25),
    "lerp_": in_place("lerp_", lambda lib: t(lib), 0.5),
    "log_": in_place("log_"),
    "long": lambda lib: t(lib, P).long(),
    "mT": lambda lib: t(lib, A[None]).mT,
    "mul_": in_place("mul_", lambda lib: t(lib)),
    "neg_": in_place("neg_"),
    "new_empty": lambda lib: shape_only(t(lib).new_empty(2)),
    "new_full": lambda lib: t(lib).new_full((2,), 4),
    "new_ones": lambda lib: t(lib).new_ones(3),
    "new_tensor": lambda lib: t(lib).new_tensor([1, 2]),
    "new_zeros": lambda lib: t(lib).new_zeros((1, 2)),
    "pow_": in_place("pow_", 2),
    "relu_": in_place("relu_"),
    "reshape_as": lambda lib: t(lib).reshape_as(t(lib, A.T)),
    "sigmoid_": in_place("sigmoid_"),
    "sqrt_": in_place("sqrt_"),
    "sub_": in_place("sub_", lambda lib: t(lib)),
    "tanh_": in_place("tanh_"),
    "to": lambda lib: t(lib).to(lib.float32),
    "tolist": lambda lib: t(lib).tolist(),
    "type_as": lambda lib: t(lib).type_as(lib.arange(2)),
    "view": lambda lib: t(lib).view(3, 2),
    "view_as": lambda lib: t(lib).view_as(t(lib, A.T)),
    "zero_": in_place("zero_"),
    "bernoulli_": lambda lib: shape_only(t(lib).bernoulli_(0.5)),
    "uniform_": lambda lib: shape_only(t(lib).uniform_(-1, 1)),
    "normal_": lambda lib: shape_only(t(lib).normal_(0, 2)),
}

UNARY_MATH = ["sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh", "asinh", "acosh",
              "atanh", "arcsin", "arccos", "arctan", "arcsinh", "arccosh", "arctanh", "erf",
              "erfc", "exp2", "expm1", "log2", "log10", "floor", "ceil", "round", "trunc", "fix",
              "frac", "sign"]


def unary(name):
    return lambda lib: getattr(lib, name)(t(lib, P))


FUNCTIONS.update({name: unary(name) for name in UNARY_MATH})
FUNCTIONS.update({
    "atan2": lambda lib: lib.atan2(t(lib), t(lib, P)),
    "arctan2": lambda lib: lib.arctan2(t(lib), t(lib, P)),
    "lerp": lambda lib: lib.lerp(t(lib), t(lib, P), t(lib, P) / 4),
    "isinf": lambda lib: lib.isinf(lib.tensor([1.0, float("inf"), -float("inf"), float("nan")])),
    "isfinite": lambda lib: lib.isfinite(lib.tensor([1.0, float("inf"), float("nan")])),
})
METHODS.update({name + "_": in_place(name + "_") for name in UNARY_MATH})
FUNCTIONS.update({
    "prod": lambda lib: lib.prod(t(lib), 1),
    "logsumexp": lambda lib: lib.logsumexp(t(lib), dim=1),
    "cumsum": lambda lib: lib.cumsum(t(lib), dim=0),
    "cumprod": lambda lib: lib.cumprod(t(lib), 1),
    "sort": lambda lib: lib.sort(t(lib), descending=True),
    "argsort": lambda lib: lib.argsort(t(lib), dim=0),
    "topk": lambda lib: lib.topk(t(lib), 2),
    "kthvalue": lambda lib: lib.kthvalue(t(lib), 2, 1),
    "tril": lambda lib: lib.tril(t(lib)),
    "triu": lambda lib: lib.triu(t(lib), 1),
    "flip": lambda lib: lib.flip(t(lib), (0,)),
    "roll": lambda lib: lib.roll(t(lib), 1, 1),
    "tile": lambda lib: lib.tile(t(lib), (2, 1)),
    "masked_fill": lambda lib: lib.masked_fill(t(lib), t(lib) > 0, -1.0),
    "split": lambda lib: lib.split(t(lib), 2, 1),
    "chunk": lambda lib: lib.chunk(t(lib), 2),
    "unbind": lambda lib: lib.unbind(t(lib), 1),
    "einsum": lambda lib: lib.einsum("ij,kj->ik", t(lib), t(lib)),
    "multinomial": lambda lib: shape_only(lib.multinomial(t(lib, P), 2)),
})
METHODS.update({
    "repeat": lambda lib: t(lib).repeat(2, 1, 3),
    "masked_fill_": in_place("masked_fill_", lambda lib: t(lib) > 1, 0.0),
    "tril_": in_place("tril_"), "triu_": in_place("triu_", -1), "cumsum_": in_place("cumsum_", 1),
})

METHODS.update({
    "atan2_": in_place("atan2_", lambda lib: t(lib)),
    "arctan2_": in_place("arctan2_", lambda lib: t(lib)),
    "square_": in_place("square_"), "reciprocal_": in_place("reciprocal_"),
    "rsqrt_": in_place("rsqrt_"), "log1p_": in_place("log1p_"),
})


# Methods that are also public functions are covered by FUNCTIONS (with the same name), the
# autograd and metadata methods by tests/runtime/autograd and test_tensor_basics.py, the device
# methods by tests/runtime/test_device.py.
METADATA = {"backward", "cuda", "data", "detach_", "device", "get_device", "is_cpu", "is_cuda",
            "dim", "dtype", "element_size", "grad", "grad_fn", "is_contiguous", "is_floating_point",
            "is_leaf", "item", "ndim", "numpy", "requires_grad", "requires_grad_", "retain_grad",
            "register_hook", "retains_grad", "shape", "size", "stride", "type"}


def assert_same(ours, theirs):
    if isinstance(theirs, torch.Tensor):
        assert isinstance(ours, runtime.Tensor)
        assert ours.dtype.name == str(theirs.dtype).removeprefix("torch."), (ours, theirs)
        assert tuple(ours.shape) == tuple(theirs.shape)
        np.testing.assert_allclose(ours.detach().numpy().astype(np.float64),
                                   theirs.detach().numpy().astype(np.float64), rtol=1e-6,
                                   atol=1e-7)
    elif isinstance(theirs, (tuple, list)):
        assert len(ours) == len(theirs)
        for a, b in zip(ours, theirs):
            assert_same(a, b)
    else:
        assert ours == theirs


def test_every_public_function_has_a_case():
    public = {name for name in runtime.__all__
              if getattr(getattr(runtime, name), "__module__", None) in
              (_functions.__name__, _creation.__name__, _arrangement.__name__)}
    assert public - set(FUNCTIONS) == set()


def test_every_tensor_method_has_a_case():
    methods = {name for name in dir(runtime.Tensor) if not name.startswith("_")}
    assert methods - set(METHODS) - set(FUNCTIONS) - METADATA == set()


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_public_function_matches_torch(name):
    runtime.manual_seed(0)
    assert_same(FUNCTIONS[name](runtime), FUNCTIONS[name](torch))


@pytest.mark.parametrize("name", sorted(METHODS))
def test_tensor_method_matches_torch(name):
    assert_same(METHODS[name](runtime), METHODS[name](torch))


# Where the function calls the method (Tensor's own detach and numel), or the method is div.
OWN_METHODS = {"detach", "numel", "true_divide"}


@pytest.mark.parametrize("name", sorted(set(FUNCTIONS) & set(dir(runtime.Tensor)) - OWN_METHODS))
def test_method_spelling_of_a_function_is_that_function(name):
    """x.exp() is runtime.exp(x): the method table attaches the functions themselves."""
    assert getattr(runtime.Tensor, name) is getattr(runtime, name)
