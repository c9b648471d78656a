"""Inference at any scale: sliding windows with blended logits, test-time augmentation, full-size
outputs in bounded memory, and a streaming predictor (``zoo.Predictor``)."""

from zoo.inference.predictor import Prediction, PredictResult, Predictor
from zoo.inference.settings import InferenceSettings

__all__ = ["Predictor", "Prediction", "PredictResult", "InferenceSettings"]
