"""Training-loop pieces that keep a long run safe (atomic checkpoints, a stop on non-finite values, DDP on CPU),
and inference from a config and weights (the model loader and the predictor)."""
from .checkpoint import AtomicCheckpointer
from .distributed import create_ddp_model
from .learning_curve import CURVE_FILE, LearningCurveHook, read_curve
from .finite import FiniteAMPTrainer, FiniteSimpleTrainer, NonFiniteError, build_finite_trainer
from .predictor import SpottedImage, SpottedWord, TextSpotterPredictor, build_model_from_config, load_config

__all__ = [
    "AtomicCheckpointer",
    "CURVE_FILE",
    "LearningCurveHook",
    "read_curve",
    "FiniteAMPTrainer",
    "FiniteSimpleTrainer",
    "NonFiniteError",
    "build_finite_trainer",
    "create_ddp_model",
    "SpottedImage",
    "SpottedWord",
    "TextSpotterPredictor",
    "build_model_from_config",
    "load_config",
]
