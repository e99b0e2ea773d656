"""runtime.utils: helpers around the core, as torch.utils; `runtime.utils.data` loads datasets."""

from runtime.utils import data

__all__ = ["data"]
