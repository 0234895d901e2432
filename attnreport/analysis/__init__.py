"""Analysis stage: numpy / scikit-learn on traces. Small pure functions, one concept a module."""

from attnreport.analysis.predictions import Metrics, classification_metrics, softmax
from attnreport.analysis.rollout import read_row, rollout

__all__ = ["Metrics", "classification_metrics", "read_row", "rollout", "softmax"]
