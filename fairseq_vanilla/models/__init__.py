from .config import VanillaTransformerConfig  # noqa: F401
from .vanilla_lstm_classifier import VanillaLSTMClassifier  # noqa: F401 (registers)
from .vanilla_transformer import VanillaTransformerModel  # noqa: F401 (registers)
from .vanilla_transformer_align import VanillaTransformerAlignModel  # noqa: F401 (registers)
from .vanilla_transformer_classifier import VanillaTransformerClassifier  # noqa: F401 (registers)
