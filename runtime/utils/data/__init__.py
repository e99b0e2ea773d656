"""runtime.utils.data: datasets, samplers and the DataLoader, with torch.utils.data's names and
behaviour (batches collated by `default_collate`, shuffling reproducible from a seeded Generator).
"""

from runtime.utils.data.collate import default_collate, default_convert
from runtime.utils.data.dataloader import DataLoader
from runtime.utils.data.dataset import ConcatDataset, Dataset, Subset, TensorDataset, random_split
from runtime.utils.data.sampler import (
    BatchSampler,
    RandomSampler,
    Sampler,
    SequentialSampler,
    SubsetRandomSampler,
)

__all__ = ["BatchSampler", "ConcatDataset", "DataLoader", "Dataset", "RandomSampler", "Sampler",
           "SequentialSampler", "Subset", "SubsetRandomSampler", "TensorDataset",
           "default_collate", "default_convert", "random_split"]
