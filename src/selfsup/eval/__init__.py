"""Evaluation of frozen encoders (kNN, linear probe, retrieval), fine-tuning and health metrics."""

from selfsup.eval.features import extract_features
from selfsup.eval.finetune import few_label_finetune, finetune
from selfsup.eval.health import HealthCallback, health_metrics
from selfsup.eval.knn import knn_accuracy, knn_predict
from selfsup.eval.knn_callback import KNNCallback
from selfsup.eval.linear import linear_probe
from selfsup.eval.protocol import (
    EvalProtocol,
    EvaluationError,
    evaluate_encoder,
    evaluate_features,
    raw_pixel_features,
)
from selfsup.eval.retrieval import retrieval_metrics

__all__ = [
    "EvalProtocol",
    "EvaluationError",
    "HealthCallback",
    "KNNCallback",
    "evaluate_encoder",
    "evaluate_features",
    "extract_features",
    "few_label_finetune",
    "finetune",
    "health_metrics",
    "knn_accuracy",
    "knn_predict",
    "linear_probe",
    "raw_pixel_features",
    "retrieval_metrics",
]
