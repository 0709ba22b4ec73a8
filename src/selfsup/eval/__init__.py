"""Evaluation of frozen encoders: features, weighted kNN, linear probe."""

from selfsup.eval.features import extract_features
from selfsup.eval.knn import knn_accuracy, knn_predict
from selfsup.eval.linear import linear_probe
from selfsup.eval.protocol import evaluate_encoder, evaluate_features, raw_pixel_features

__all__ = [
    "evaluate_encoder",
    "evaluate_features",
    "extract_features",
    "knn_accuracy",
    "knn_predict",
    "linear_probe",
    "raw_pixel_features",
]
