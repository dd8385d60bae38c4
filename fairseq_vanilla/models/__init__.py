from .vanilla_transformer import VanillaTransformerConfig, VanillaTransformerModel  # noqa: F401 (registers)
