"""Training-loop pieces that keep a long run safe: atomic checkpoints, a stop on non-finite values, DDP on CPU."""
from .checkpoint import AtomicCheckpointer
from .distributed import create_ddp_model
from .learning_curve import CURVE_FILE, LearningCurveHook, read_curve
from .finite import FiniteAMPTrainer, FiniteSimpleTrainer, NonFiniteError, build_finite_trainer

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
]
