"""One side of the Transformer in the paper's symbols (§3.1, §3.2.2, §5.4), the base model's values as defaults.

Plain Python. The fairseq glue converts its flags to a :class:`SideSizes` once (``models/config.py:side_sizes``) and
hands it to the encoder and decoder, which hand it to their layers; the flags' defaults and the memory planner's are
read from :data:`BASE`, so the paper's base model is written here and nowhere else.
"""

from dataclasses import dataclass
from typing import Optional, Tuple


def head_dims(d_model: int, h: int, d_k: Optional[int] = None, d_v: Optional[int] = None) -> Tuple[int, int]:
    """(d_k, d_v): d_model / h each unless given (§3.2.2); the config's checks reject an h that does not divide."""
    return (d_model // h if d_k is None else d_k, d_model // h if d_v is None else d_v)


@dataclass(frozen=True)
class SideSizes:
    """N layers of width d_model, FFN width d_ff, h heads of d_k (queries, keys) and d_v (values), P_drop (§5.4).

    d_k and d_v left unset are d_model / h (:func:`head_dims`), resolved on construction. Two departures from the
    paper, off by default: dropout on the attention weights and after the FFN's ReLU (fairseq's
    ``--attention-dropout``, ``--activation-dropout``), and pre-norm residuals (``pre_norm``, Xiong et al. 2020; the
    paper's are post-norm, §3.1) with a final LayerNorm after the stack.
    """

    N: int = 6
    d_model: int = 512
    d_ff: int = 2048
    h: int = 8
    d_k: Optional[int] = None
    d_v: Optional[int] = None
    P_drop: float = 0.1
    attention_dropout: float = 0.0
    activation_dropout: float = 0.0
    pre_norm: bool = False

    def __post_init__(self):
        d_k, d_v = head_dims(self.d_model, self.h, self.d_k, self.d_v)
        object.__setattr__(self, "d_k", d_k)  # frozen: resolved once, here
        object.__setattr__(self, "d_v", d_v)


BASE = SideSizes()  # Table 3, "base": N 6, d_model 512, d_ff 2048, h 8, d_k = d_v = 64, P_drop 0.1
