from .label_smoothed_classification import VanillaLabelSmoothedClassificationCriterion  # noqa: F401
from .label_smoothed_cross_entropy import VanillaLabelSmoothedCrossEntropyCriterion, label_smoothed_nll_loss  # noqa: F401
from .label_smoothed_cross_entropy_with_alignment import (  # noqa: F401
    VanillaLabelSmoothedCrossEntropyWithAlignmentCriterion,
    alignment_nll_loss,
)
