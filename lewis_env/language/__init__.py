"""What speakers say: language metrics (EGG-style), state/location evaluation and refinement of descriptions."""

from lewis_env.language.lexicon import evaluate_text, refine_text
from lewis_env.language.metrics import METRICS, Utterance, language_metrics

__all__ = ["METRICS", "Utterance", "evaluate_text", "language_metrics", "refine_text"]
