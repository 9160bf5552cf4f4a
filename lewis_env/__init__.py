"""lewis-bench environments: the Lewis game, recognition, VQA and identification as Gymnasium envs."""

__version__ = "0.1.0"
