"""Loaders from published personalization dataset layouts (and plain folders) to ConceptDataset."""

from lewis_env.data.loaders.folder import load_folder
from lewis_env.data.loaders.myvlm import load_myvlm
from lewis_env.data.loaders.perva import load_perva
from lewis_env.data.loaders.yollava import load_yollava

__all__ = ["load_folder", "load_myvlm", "load_perva", "load_yollava"]
