"""runtime.nn: layers, losses and containers with torch.nn's names and behaviour.

`nn.Module` tracks the Parameters and submodules assigned to it; layers (Linear, ReLU, Flatten,
Softmax, Dropout, ...) and losses (CrossEntropyLoss, MSELoss, BCEWithLogitsLoss, ...) are Modules
whose forward calls `nn.functional`, which composes the runtime's primitive ops. `nn.init` fills
parameters with PyTorch's initialisation schemes.
"""

from runtime.nn import functional, init, utils
from runtime.nn.activation import (
    ELU,
    GELU,
    LeakyReLU,
    LogSoftmax,
    Mish,
    ReLU,
    Sigmoid,
    SiLU,
    Softmax,
    Softplus,
    Tanh,
)
from runtime.nn.attention import MultiheadAttention
from runtime.nn.containers import (
    ModuleDict,
    ModuleList,
    ParameterDict,
    ParameterList,
    Sequential,
)
from runtime.nn.conv import Conv1d, Conv2d
from runtime.nn.dropout import AlphaDropout, Dropout, Dropout1d, Dropout2d
from runtime.nn.flatten import Flatten, Unflatten
from runtime.nn.linear import Identity, Linear
from runtime.nn.loss import BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, MSELoss, NLLLoss
from runtime.nn.module import Module
from runtime.nn.normalization import BatchNorm1d, BatchNorm2d, LayerNorm
from runtime.nn.parameter import Parameter
from runtime.nn.pooling import (
    AdaptiveAvgPool1d,
    AdaptiveAvgPool2d,
    AdaptiveMaxPool1d,
    AdaptiveMaxPool2d,
    AvgPool1d,
    AvgPool2d,
    MaxPool1d,
    MaxPool2d,
)
from runtime.nn.sparse import Embedding

__all__ = [
    "MultiheadAttention", "ParameterDict", "ParameterList", "utils",
    "AlphaDropout", "Dropout1d", "Dropout2d", "ELU", "GELU", "Mish",
    "Embedding",
    "BatchNorm1d", "BatchNorm2d", "LayerNorm",
    "AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveMaxPool1d", "AdaptiveMaxPool2d",
    "AvgPool1d", "AvgPool2d", "MaxPool1d", "MaxPool2d",
    "BCELoss", "BCEWithLogitsLoss", "Conv1d", "Conv2d", "CrossEntropyLoss", "Dropout", "Flatten",
    "Identity",
    "LeakyReLU", "Linear", "LogSoftmax", "MSELoss", "Module", "ModuleDict", "ModuleList",
    "NLLLoss", "Parameter", "ReLU", "Sequential", "SiLU", "Sigmoid", "Softmax", "Softplus", "Tanh",
    "Unflatten", "functional", "init",
]
