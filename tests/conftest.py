"""Shared test set-up: every test starts from runtime's defaults (grad mode on, float32 default
dtype), whatever the test before it switched, so tests never depend on their order."""

import pytest

import runtime


@pytest.fixture(autouse=True)
def runtime_defaults():
    grad_enabled = runtime.is_grad_enabled()
    default_dtype = runtime.get_default_dtype()
    runtime.set_grad_enabled(True)
    runtime.set_default_dtype(runtime.float32)
    yield
    runtime.set_grad_enabled(grad_enabled)
    runtime.set_default_dtype(default_dtype)
