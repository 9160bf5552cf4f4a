"""Concept data: the data model, the synthetic world, real-dataset loaders and hard negatives."""

from lewis_env.data.types import Concept, ConceptDataset, ImageRef, VQAQuestion

__all__ = ["Concept", "ConceptDataset", "ImageRef", "VQAQuestion"]
