"""Concept data: the data model, the synthetic world, real-dataset loaders and hard negatives."""

from lewis_env.data.negatives import hard_negatives, load_negatives, save_negatives
from lewis_env.data.registry import clear_memo, list_datasets, load_dataset, register_dataset
from lewis_env.data.support import supported_tasks
from lewis_env.data.synthetic import ATTRIBUTE_VALUES, CATEGORIES, make_synthetic
from lewis_env.data.types import Concept, ConceptDataset, ImageRef, VQAQuestion

__all__ = [
    "ATTRIBUTE_VALUES",
    "CATEGORIES",
    "Concept",
    "ConceptDataset",
    "ImageRef",
    "VQAQuestion",
    "clear_memo",
    "hard_negatives",
    "list_datasets",
    "load_dataset",
    "load_negatives",
    "make_synthetic",
    "register_dataset",
    "save_negatives",
    "supported_tasks",
]
