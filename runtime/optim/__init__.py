"""runtime.optim: PyTorch's optimizers (`SGD`, `Adam`, `AdamW`, `RMSprop`, `Adagrad`) over a
common `Optimizer` base, and learning-rate schedules in `runtime.optim.lr_scheduler`.

Each optimizer follows PyTorch's documented update formulas; its state and state_dict are laid
out as PyTorch's. Updates change parameters in place and are not recorded by autograd.
"""

from runtime.optim import lr_scheduler
from runtime.optim.adagrad import Adagrad
from runtime.optim.adam import Adam, AdamW
from runtime.optim.optimizer import Optimizer
from runtime.optim.rmsprop import RMSprop
from runtime.optim.sgd import SGD

__all__ = ["SGD", "Adam", "AdamW", "Adagrad", "Optimizer", "RMSprop", "lr_scheduler"]
