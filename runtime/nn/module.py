"""`nn.Module`: the base class of layers and models, with PyTorch's semantics.

A module keeps three ordered registries, filled by plain attribute assignment: `_parameters`
(Parameters), `_buffers` (tensors that are state but not trained, e.g. a loss's class weights) and
`_modules` (child modules). Everything else is derived from them by walking the tree: dotted names
(`linear_relu_stack.0.weight`), `parameters()`, `state_dict()`, `train()/eval()`, dtype conversion,
and the printed layout. Calling a module runs its forward hooks around `forward`.

Every change to any module's attributes, registries or hooks advances one counter,
`tree_version()`: code compiled from a traced forward compares it with the value it last saw
(one integer comparison a call) and re-checks what its trace depended on only when it moved.

This module never computes on tensor data: conversions and loading go through tensor methods
under `no_grad`, so a traced model sees the same parameters.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict, namedtuple
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from runtime import _dtype
from runtime._grad_mode import no_grad
from runtime._tensor import Tensor
from runtime.nn.parameter import Parameter


class _IncompatibleKeys(namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])):
    """What load_state_dict(strict=False) returns: the keys it could not match."""

    __slots__ = ()

    def __repr__(self) -> str:
        if not self.missing_keys and not self.unexpected_keys:
            return "<All keys matched successfully>"
        return super().__repr__()

    __str__ = __repr__


_tree_version = 0


def tree_version() -> int:
    """A number that changes whenever any module's attributes, children, parameters, buffers or
    hooks change (assignment, deletion, hook registration or removal, train()/eval())."""
    return _tree_version


def _tree_changed() -> None:
    global _tree_version
    _tree_version += 1


class _Registry(dict):
    """A module's registry (children, parameters, buffers, hooks): a dict whose every change
    advances `tree_version()`. Reading costs what a dict read costs."""

    __slots__ = ()

    def __setitem__(self, key: Any, value: Any) -> None:
        _tree_changed()
        super().__setitem__(key, value)

    def __delitem__(self, key: Any) -> None:
        _tree_changed()
        super().__delitem__(key)

    def pop(self, *args: Any) -> Any:
        _tree_changed()
        return super().pop(*args)

    def popitem(self) -> Any:
        _tree_changed()
        return super().popitem()

    def clear(self) -> None:
        _tree_changed()
        super().clear()

    def update(self, *args: Any, **kwargs: Any) -> None:
        _tree_changed()
        super().update(*args, **kwargs)

    def setdefault(self, key: Any, default: Any = None) -> Any:
        _tree_changed()
        return super().setdefault(key, default)


class RemovableHandle:
    """Returned by register_forward_hook and friends: `handle.remove()` unregisters the hook
    (and forgets its flags, such as with_kwargs)."""

    _next_id = itertools.count()

    def __init__(self, hooks: dict[int, Callable[..., Any]],
                 extra: tuple[Any, ...] = ()) -> None:
        self._hooks = hooks
        self._extra = extra  # sets or dicts keyed by the same id (with_kwargs, always_call)
        self.id = next(self._next_id)

    def remove(self) -> None:
        self._hooks.pop(self.id, None)
        for flags in self._extra:
            if isinstance(flags, dict):
                flags.pop(self.id, None)
            else:
                flags.discard(self.id)

    def __enter__(self) -> RemovableHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()


def _typename(value: Any) -> str:
    """How PyTorch names a value's type in errors: `runtime.FloatTensor`, `int`, `mod.Class`."""
    if isinstance(value, Tensor):
        return value.type()
    kind = type(value)
    if kind.__module__ == "builtins":
        return kind.__qualname__
    return f"{kind.__module__}.{kind.__qualname__}"


def _addindent(text: str, spaces: int) -> str:
    """Indent every line but the first (blank lines stay empty), for nested module reprs."""
    first, *rest = text.split("\n")
    return "\n".join([first, *((" " * spaces + line) if line.strip() else "" for line in rest)])


def _check_name(kind: str, name: Any, owner: Module, registry: dict[str, Any]) -> None:
    if not isinstance(name, str):
        raise TypeError(f"{kind} name should be a string. Got {_typename(name)}")
    if "." in name:
        raise KeyError(f"{kind} name can't contain \".\", got: {name}" if kind == "module"
                       else f"{kind} name can't contain \".\"")
    if name == "":
        raise KeyError(f"{kind} name can't be empty string \"\"")
    if hasattr(owner, name) and name not in registry:
        raise KeyError(f"attribute '{name}' already exists")


class Module:
    """Base class of all layers and models: subclass it, assign layers in `__init__`, write
    `forward`; call the module (not `forward`) to run it."""

    training: bool
    _parameters: dict[str, Parameter | None]
    _buffers: dict[str, Tensor | None]
    _non_persistent_buffers_set: set[str]
    _modules: dict[str, Module | None]

    def __init__(self) -> None:
        set_plain = object.__setattr__
        set_plain(self, "training", True)
        set_plain(self, "_parameters", _Registry())
        set_plain(self, "_buffers", _Registry())
        set_plain(self, "_non_persistent_buffers_set", set())
        set_plain(self, "_modules", _Registry())
        set_plain(self, "_forward_pre_hooks", _Registry())
        set_plain(self, "_forward_pre_hooks_with_kwargs", set())
        set_plain(self, "_forward_hooks", _Registry())
        set_plain(self, "_forward_hooks_with_kwargs", set())
        set_plain(self, "_forward_hooks_always_called", set())

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f'Module [{type(self).__name__}] is missing the required '
                                  '"forward" function')

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Run forward pre-hooks, `forward`, then forward hooks, as PyTorch: a pre-hook may
        replace the positional args (and, with_kwargs, the kwargs); a hook may replace the
        output; hooks registered with always_call run even when forward raises."""
        called: set[int] = set()
        try:
            for hook_id, hook in list(self._forward_pre_hooks.items()):
                if hook_id in self._forward_pre_hooks_with_kwargs:
                    changed = hook(self, args, kwargs)
                    if changed is not None:
                        if not (isinstance(changed, tuple) and len(changed) == 2):
                            raise RuntimeError("forward pre-hook must return None or a tuple of "
                                               f"(new_args, new_kwargs), but got {changed}.")
                        args, kwargs = changed
                else:
                    changed = hook(self, args)
                    if changed is not None:
                        args = changed if isinstance(changed, tuple) else (changed,)
            output = self.forward(*args, **kwargs)
            for hook_id, hook in list(self._forward_hooks.items()):
                called.add(hook_id)
                if hook_id in self._forward_hooks_with_kwargs:
                    changed = hook(self, args, kwargs, output)
                else:
                    changed = hook(self, args, output)
                if changed is not None:
                    output = changed
            return output
        except Exception:
            for hook_id, hook in list(self._forward_hooks.items()):
                if hook_id in self._forward_hooks_always_called and hook_id not in called:
                    try:
                        if hook_id in self._forward_hooks_with_kwargs:
                            hook(self, args, kwargs, None)
                        else:
                            hook(self, args, None)
                    except Exception:  # the original error is the one to report
                        pass
            raise

    @staticmethod
    def _add_hook(hooks: dict[int, Callable[..., Any]], hook: Callable[..., Any],
                  prepend: bool, handle: RemovableHandle) -> None:
        hooks[handle.id] = hook
        if prepend:
            order = [handle.id, *(k for k in hooks if k != handle.id)]
            reordered = {k: hooks[k] for k in order}
            hooks.clear()
            hooks.update(reordered)

    def register_forward_pre_hook(self, hook: Callable[..., Any], *, prepend: bool = False,
                                  with_kwargs: bool = False) -> RemovableHandle:
        """Call `hook(module, args)` before each forward; a non-None result replaces args (a
        non-tuple result becomes a 1-tuple). With with_kwargs, `hook(module, args, kwargs)`
        returns None or (args, kwargs). prepend runs it before the hooks already registered."""
        handle = RemovableHandle(self._forward_pre_hooks, (self._forward_pre_hooks_with_kwargs,))
        self._add_hook(self._forward_pre_hooks, hook, prepend, handle)
        if with_kwargs:
            self._forward_pre_hooks_with_kwargs.add(handle.id)
        return handle

    def register_forward_hook(self, hook: Callable[..., Any], *, prepend: bool = False,
                              with_kwargs: bool = False,
                              always_call: bool = False) -> RemovableHandle:
        """Call `hook(module, args, output)` (with_kwargs: `hook(module, args, kwargs, output)`)
        after each forward; a non-None result replaces the output. always_call runs it even
        when forward raises (with output None)."""
        handle = RemovableHandle(self._forward_hooks, (self._forward_hooks_with_kwargs,
                                                       self._forward_hooks_always_called))
        self._add_hook(self._forward_hooks, hook, prepend, handle)
        if with_kwargs:
            self._forward_hooks_with_kwargs.add(handle.id)
        if always_call:
            self._forward_hooks_always_called.add(handle.id)
        return handle

    # ----- printing -------------------------------------------------------------------------------

    def extra_repr(self) -> str:
        """The module's own settings, shown inside its parentheses; override in layers."""
        return ""

    def _get_name(self) -> str:
        return type(self).__name__

    def __repr__(self) -> str:
        """PyTorch's layout: `Name(extra)`, or one line per setting and `(name): Child(...)`."""
        extra = self.extra_repr()
        extra_lines = extra.split("\n") if extra else []
        child_lines = [f"({name}): " + _addindent(repr(child), 2)
                       for name, child in self._modules.items()]
        if len(extra_lines) == 1 and not child_lines:
            return f"{self._get_name()}({extra_lines[0]})"
        lines = extra_lines + child_lines
        body = "\n  " + "\n  ".join(lines) + "\n" if lines else ""
        return f"{self._get_name()}({body})"

    # ----- registration ---------------------------------------------------------------------------

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Add a parameter (or None, a declared-but-absent parameter) under `name`."""
        if "_parameters" not in self.__dict__:
            raise AttributeError("cannot assign parameter before Module.__init__() call")
        _check_name("parameter", name, self, self._parameters)
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"cannot assign '{_typename(param)}' object to parameter '{name}' "
                            "(torch.nn.Parameter or None required)")
        if param is not None and param.grad_fn is not None:
            raise ValueError(f"Cannot assign non-leaf Tensor to parameter '{name}'. Model "
                             f"parameters must be created explicitly. To express '{name}' as a "
                             "function of another Tensor, compute the value in the forward() "
                             "method.")
        self._parameters[name] = param

    def register_buffer(self, name: str, tensor: Tensor | None, persistent: bool = True) -> None:
        """Add a tensor that is module state but not a parameter; persistent ones are saved in
        the state_dict."""
        if "_buffers" not in self.__dict__:
            raise AttributeError("cannot assign buffer before Module.__init__() call")
        _check_name("buffer", name, self, self._buffers)
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"cannot assign '{_typename(tensor)}' object to buffer '{name}' "
                            "(torch Tensor or None required)")
        self._buffers[name] = tensor
        if persistent:
            self._non_persistent_buffers_set.discard(name)
        else:
            self._non_persistent_buffers_set.add(name)

    def add_module(self, name: str, module: Module | None) -> None:
        """Add a child module under `name` (what `self.name = module` does)."""
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{_typename(module)} is not a Module subclass")
        _check_name("module", name, self, self._modules)
        self._modules[name] = module

    register_module = add_module

    def __setattr__(self, name: str, value: Any) -> None:
        _tree_changed()
        params = self.__dict__.get("_parameters")
        modules = self.__dict__.get("_modules")
        buffers = self.__dict__.get("_buffers")
        if isinstance(value, Parameter):
            if params is None:
                raise AttributeError("cannot assign parameters before Module.__init__() call")
            self._forget(name, self.__dict__, self._buffers, self._modules)
            self.register_parameter(name, value)
        elif params is not None and name in params:
            if value is not None:
                raise TypeError(f"cannot assign '{_typename(value)}' as parameter '{name}' "
                                "(torch.nn.Parameter or None expected)")
            self.register_parameter(name, value)
        elif isinstance(value, Module):
            if modules is None:
                raise AttributeError("cannot assign module before Module.__init__() call")
            self._forget(name, self.__dict__, self._parameters, self._buffers)
            modules[name] = value
        elif modules is not None and name in modules:
            if value is not None:
                raise TypeError(f"cannot assign '{_typename(value)}' as child module '{name}' "
                                "(torch.nn.Module or None expected)")
            modules[name] = value
        elif buffers is not None and name in buffers:
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(f"cannot assign '{_typename(value)}' as buffer '{name}' "
                                "(torch.Tensor or None expected)")
            buffers[name] = value
        else:
            object.__setattr__(self, name, value)

    def _forget(self, name: str, *registries: dict[str, Any]) -> None:
        """Remove `name` from other registries when an attribute changes kind."""
        for registry in registries:
            registry.pop(name, None)
        self._non_persistent_buffers_set.discard(name)

    def __getattr__(self, name: str) -> Any:
        # Only called when normal lookup fails: parameters, buffers and children live here.
        for registry in ("_parameters", "_buffers", "_modules"):
            entries = self.__dict__.get(registry)
            if entries is not None and name in entries:
                return entries[name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name: str) -> None:
        _tree_changed()
        if name in self._parameters:
            del self._parameters[name]
        elif name in self._buffers:
            del self._buffers[name]
            self._non_persistent_buffers_set.discard(name)
        elif name in self._modules:
            del self._modules[name]
        else:
            object.__delattr__(self, name)

    def __dir__(self) -> list[str]:
        keys = [*dir(type(self)), *self.__dict__, *self._parameters, *self._modules,
                *self._buffers]
        return sorted({key for key in keys if not key[0].isdigit()})

    # ----- walking the tree ---------------------------------------------------------------------

    def named_modules(self, memo: set[Module] | None = None, prefix: str = "",
                      remove_duplicate: bool = True) -> Iterator[tuple[str, Module]]:
        """This module and all below it, with dotted names ("" for this one), each once."""
        memo = set() if memo is None else memo
        if self in memo:
            return
        if remove_duplicate:
            memo.add(self)
        yield prefix, self
        for name, module in self._modules.items():
            if module is not None:
                child_prefix = f"{prefix}.{name}" if prefix else name
                yield from module.named_modules(memo, child_prefix, remove_duplicate)

    def modules(self) -> Iterator[Module]:
        for _, module in self.named_modules():
            yield module

    def named_children(self) -> Iterator[tuple[str, Module]]:
        """The direct children, each once."""
        seen: set[Module] = set()
        for name, module in self._modules.items():
            if module is not None and module not in seen:
                seen.add(module)
                yield name, module

    def children(self) -> Iterator[Module]:
        for _, module in self.named_children():
            yield module

    def _named_members(self, members_of: Callable[[Module], Any], prefix: str, recurse: bool,
                       remove_duplicate: bool) -> Iterator[tuple[str, Any]]:
        """(dotted name, tensor) over this module (and below it if recurse), shared ones once."""
        seen: set[Tensor] = set()
        owners = (self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate)
                  if recurse else [(prefix, self)])
        for owner_prefix, owner in owners:
            for name, value in members_of(owner):
                if value is None or value in seen:
                    continue
                if remove_duplicate:
                    seen.add(value)
                yield (f"{owner_prefix}.{name}" if owner_prefix else name), value

    def named_parameters(self, prefix: str = "", recurse: bool = True,
                         remove_duplicate: bool = True) -> Iterator[tuple[str, Parameter]]:
        """(name, parameter) pairs, named as PyTorch does: `linear_relu_stack.0.weight`."""
        return self._named_members(lambda m: m._parameters.items(), prefix, recurse,
                                   remove_duplicate)

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        for _, param in self.named_parameters(recurse=recurse):
            yield param

    def named_buffers(self, prefix: str = "", recurse: bool = True,
                      remove_duplicate: bool = True) -> Iterator[tuple[str, Tensor]]:
        return self._named_members(lambda m: m._buffers.items(), prefix, recurse,
                                   remove_duplicate)

    def buffers(self, recurse: bool = True) -> Iterator[Tensor]:
        for _, buffer in self.named_buffers(recurse=recurse):
            yield buffer

    def apply(self, fn: Callable[[Module], Any]) -> Module:
        """Call fn on every submodule (children first) and on self, e.g. to initialise weights."""
        for module in self.children():
            module.apply(fn)
        fn(self)
        return self

    # ----- modes and gradients ------------------------------------------------------------------

    def train(self, mode: bool = True) -> Module:
        """Set training mode (what Dropout looks at) here and in every submodule."""
        if not isinstance(mode, bool):
            raise ValueError("training mode is expected to be boolean")
        self.training = mode
        for module in self.children():
            module.train(mode)
        return self

    def eval(self) -> Module:
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        """Set requires_grad of every parameter (False freezes the module)."""
        for param in self.parameters():
            param.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset the gradients of all parameters: to None, or to zeros in place."""
        for param in self.parameters():
            if param.grad is None:
                continue
            if set_to_none:
                param.grad = None
            else:
                param.grad.detach_().zero_()

    # ----- dtype and device -----------------------------------------------------------------------

    def _apply(self, convert: Callable[[Tensor], Tensor]) -> Module:
        """Convert every parameter in place (same Parameter object, new data) and every buffer."""
        for module in self.children():
            module._apply(convert)
        with no_grad():
            for param in self._parameters.values():
                if param is None:
                    continue
                param.data = convert(param)
                if param._grad is not None:
                    param._grad.data = convert(param._grad)
            for name, buffer in self._buffers.items():
                if buffer is not None:
                    self._buffers[name] = convert(buffer)
        return self

    def to(self, *args: Any, **kwargs: Any) -> Module:
        """to(dtype), to(device), to(device, dtype), to(tensor): converts floating point
        parameters and buffers in place. The only device is the CPU."""
        dtype = kwargs.pop("dtype", None)
        device = kwargs.pop("device", None)
        kwargs.pop("non_blocking", None)
        if kwargs:
            raise TypeError(f"to() got an unexpected keyword argument '{next(iter(kwargs))}'")
        for arg in args:
            if isinstance(arg, _dtype.dtype):
                dtype = arg
            elif isinstance(arg, Tensor):
                dtype = arg.dtype
            elif arg is not None:
                device = arg
        if device is not None:
            from runtime._device import check_device

            check_device(device)  # PyTorch's error for a device this build does not have
        if dtype is None:
            return self
        if not dtype.is_floating_point:
            raise TypeError(f"nn.Module.to only accepts floating point or complex dtypes, but got "
                            f"desired dtype={dtype}")
        return self._apply(lambda t: t.to(dtype) if t.is_floating_point() else t)

    def float(self) -> Module:
        return self.to(_dtype.float32)

    def double(self) -> Module:
        return self.to(_dtype.float64)

    def cpu(self) -> Module:
        return self

    # ----- state_dict -----------------------------------------------------------------------------

    def _local_state(self) -> dict[str, Tensor]:
        """This module's own parameters and persistent buffers that are not None."""
        buffers = ((k, v) for k, v in self._buffers.items()
                   if k not in self._non_persistent_buffers_set)
        return {k: v for k, v in itertools.chain(self._parameters.items(), buffers)
                if v is not None}

    def state_dict(self, *, destination: dict[str, Tensor] | None = None, prefix: str = "",
                   keep_vars: bool = False) -> dict[str, Tensor]:
        """Every parameter and persistent buffer by dotted name, sharing memory with them."""
        destination = OrderedDict() if destination is None else destination
        for name, value in self._local_state().items():
            destination[prefix + name] = value if keep_vars else value.detach()
        for name, module in self._modules.items():
            if module is not None:
                module.state_dict(destination=destination, prefix=f"{prefix}{name}.",
                                  keep_vars=keep_vars)
        return destination

    def load_state_dict(self, state_dict: Mapping[str, Any],
                        strict: bool = True) -> _IncompatibleKeys:
        """Copy values from `state_dict` into the existing parameters and buffers.

        With strict=True (the default), a missing or unexpected key is an error; a shape mismatch
        is always one. Returns the (missing_keys, unexpected_keys) namedtuple.
        """
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"Expected state_dict to be dict-like, got {type(state_dict)}.")
        missing: list[str] = []
        unexpected: list[str] = []
        errors: list[str] = []
        self._load_tree(dict(state_dict), "", missing, unexpected, errors)
        if strict and unexpected:
            keys = ", ".join(f'"{k}"' for k in unexpected)
            errors.insert(0, f"Unexpected key(s) in state_dict: {keys}. ")
        if strict and missing:
            keys = ", ".join(f'"{k}"' for k in missing)
            errors.insert(0, f"Missing key(s) in state_dict: {keys}. ")
        if errors:
            raise RuntimeError(f"Error(s) in loading state_dict for {type(self).__name__}:\n\t"
                               + "\n\t".join(errors))
        return _IncompatibleKeys(missing, unexpected)

    def _load_tree(self, state_dict: dict[str, Any], prefix: str, missing: list[str],
                   unexpected: list[str], errors: list[str]) -> None:
        self._load_local(state_dict, prefix, missing, unexpected, errors)
        for name, child in self._modules.items():
            if child is not None:
                child_prefix = f"{prefix}{name}."
                below = {k: v for k, v in state_dict.items() if k.startswith(child_prefix)}
                child._load_tree(below, child_prefix, missing, unexpected, errors)

    def _load_local(self, state_dict: dict[str, Any], prefix: str, missing: list[str],
                    unexpected: list[str], errors: list[str]) -> None:
        local = self._local_state()
        for name, target in local.items():
            key = prefix + name
            if key not in state_dict:
                missing.append(key)
                continue
            _copy_into(key, target, state_dict[key], errors)
        for key in state_dict:
            if not key.startswith(prefix):
                continue
            head, *rest = key[len(prefix):].split(".", 1)
            if (rest and head not in self._modules) or (not rest and head not in local):
                unexpected.append(key)


def _copy_into(key: str, target: Tensor, source: Any, errors: list[str]) -> None:
    """Copy a checkpoint value into a parameter or buffer in place, or record why not."""
    if not isinstance(source, Tensor):
        errors.append(f'While copying the parameter named "{key}", expected torch.Tensor or '
                      f"Tensor-like object from checkpoint but received {type(source)}")
        return
    if source.shape != target.shape:
        errors.append(f"size mismatch for {key}: copying a param with shape {source.shape} from "
                      f"checkpoint, the shape in current model is {target.shape}.")
        return
    try:
        with no_grad():
            target.copy_(source)
    except Exception as error:  # reported with the key, as PyTorch does
        errors.append(f'While copying the parameter named "{key}", whose dimensions in the model '
                      f"are {target.size()} and whose dimensions in the checkpoint are "
                      f"{source.size()}, an exception occurred : {error.args}.")
