"""Meta-learners, one per file, sharing one inner loop (``base``) and one outer loop (``trainer``)."""

from fewcast.learners.anil import ANIL
from fewcast.learners.base import LOSSES, GradientLearner, window_loss
from fewcast.learners.maml import MAML
from fewcast.learners.metasgd import MetaSGD
from fewcast.learners.pretrain import Pretrain
from fewcast.learners.reptile import Reptile
from fewcast.learners.trainer import MetaTrainer, TrainingDiverged, TrainingInterrupted

LEARNERS = {
    "maml": MAML,
    "fomaml": lambda model, **kw: MAML(model, **{**kw, "first_order": True}),
    "anil": ANIL,
    "metasgd": MetaSGD,
    "reptile": Reptile,
}


def build_learner(name: str, model, **options) -> GradientLearner:
    """A learner by name: ``maml``, ``fomaml``, ``anil``, ``metasgd`` or ``reptile``."""
    from fewcast.errors import InputError

    if name not in LEARNERS:
        raise InputError(f"unknown learner {name!r}; choose one of {', '.join(LEARNERS)}")
    return LEARNERS[name](model, **options)


__all__ = [
    "ANIL", "LEARNERS", "LOSSES", "MAML", "GradientLearner", "MetaSGD", "MetaTrainer", "Pretrain", "Reptile",
    "TrainingDiverged", "TrainingInterrupted", "build_learner", "window_loss",
]
