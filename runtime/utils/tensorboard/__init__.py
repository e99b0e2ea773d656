"""runtime.utils.tensorboard: `SummaryWriter`, as torch.utils.tensorboard's, writing TensorBoard
event files through the `tensorboard` package (an optional dependency: without it, importing
this module raises ModuleNotFoundError naming the package to install)."""

try:
    import tensorboard  # noqa: F401 - only asks whether the package is there
except ImportError as error:
    raise ModuleNotFoundError(
        "runtime.utils.tensorboard writes its event files with the 'tensorboard' package, which "
        "is not installed; install it with `pip install tensorboard`",
        name="tensorboard") from error

from runtime.utils.tensorboard.writer import SummaryWriter

__all__ = ["SummaryWriter"]
