"""Analysis stage: numpy / scipy / scikit-learn on traces. Small pure functions, one concept a module."""

from attnreport.analysis.faithfulness import Faithfulness, faithfulness, random_faithfulness
from attnreport.analysis.flow import MAX_FLOW_TOKENS, attention_flow, attention_flow_matrix
from attnreport.analysis.heads import PATTERNS, HeadScores, HeadThresholds, head_scores, induction_scores
from attnreport.analysis.predictions import Metrics, classification_metrics, softmax
from attnreport.analysis.rollout import read_row, rollout
from attnreport.analysis.shapley import ShapleyResult, exact_shapley, occlusion, sampled_shapley, shapley

__all__ = [
    "MAX_FLOW_TOKENS",
    "PATTERNS",
    "Faithfulness",
    "HeadScores",
    "HeadThresholds",
    "Metrics",
    "ShapleyResult",
    "attention_flow",
    "attention_flow_matrix",
    "classification_metrics",
    "exact_shapley",
    "faithfulness",
    "head_scores",
    "induction_scores",
    "occlusion",
    "random_faithfulness",
    "read_row",
    "rollout",
    "sampled_shapley",
    "shapley",
    "softmax",
]
