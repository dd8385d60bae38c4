"""fairseq ``--tokenizer`` choices that repeat the prepare scripts' own text processing, for raw text in and out.

``vanilla_moses``: sacremoses punctuation normalisation + tokenisation without XML escaping (what
``scripts/prepare-*.sh`` ran), lower-cased with ``--moses-lower`` (their ``--lower``); decoding joins ``@-@`` and
detokenises. fairseq's stock ``moses`` differs: it escapes ``'`` as ``&apos;`` unless ``--moses-no-escape``, does not
normalise punctuation and cannot lower-case. ``vanilla_lower``: lower-casing only, for sentencepiece data prepared
with ``--lower`` (sentencepiece ran on the raw text there, so no Moses step).
"""

from dataclasses import dataclass, field

from fairseq.data.encoders import register_tokenizer
from fairseq.dataclass import FairseqDataclass

from .text.moses import moses_detokenizer, moses_tokenizer


@dataclass
class VanillaMosesConfig(FairseqDataclass):
    source_lang: str = field(default="en", metadata={"help": "source language (Moses rules for the input)"})
    target_lang: str = field(default="de", metadata={"help": "target language (Moses rules for the output)"})
    moses_lower: bool = field(default=False, metadata={"help": "lower-case the input, as the prepare scripts' --lower"})


@register_tokenizer("vanilla_moses", dataclass=VanillaMosesConfig)
class VanillaMosesTokenizer:
    def __init__(self, cfg: VanillaMosesConfig):
        self.encode = moses_tokenizer(cfg.source_lang, lower=cfg.moses_lower)
        self.decode = moses_detokenizer(cfg.target_lang)


@dataclass
class VanillaLowerConfig(FairseqDataclass):
    pass


@register_tokenizer("vanilla_lower", dataclass=VanillaLowerConfig)
class VanillaLowerTokenizer:
    def __init__(self, cfg: VanillaLowerConfig):
        pass

    def encode(self, x: str) -> str:
        return x.lower()

    def decode(self, x: str) -> str:
        return x
