"""Attention weights of one sentence, per layer and head, and their heatmaps (what ``scripts/plot-attention.py`` draws).

Every map is ``(h, T_rows, T_cols)``: one row per query token, the weights over the key tokens in it (softmax
rows, so each sums to 1 over the unpadded keys). Translation: encoder self-attention (source × source), decoder
self-attention (target × target, causal) and encoder-decoder attention (target × source), teacher-forced on
the given or the beam-search translation. Classifier: the encoder's self-attention over the review.
"""

from typing import Dict, List, Optional, Tuple

import torch

AttentionMap = Tuple[torch.Tensor, List[str], List[str]]  # weights (h, rows, cols), row labels, column labels


def _labels(dictionary, tokens: torch.Tensor) -> List[str]:
    return [dictionary[int(t)] for t in tokens]


@torch.no_grad()
def translation_attention(
    hub, sentence: str, target: Optional[str] = None, layer: int = -1, beam: int = 5
) -> Dict[str, AttentionMap]:
    """The three maps of one layer for ``sentence`` and its translation (``target`` raw text, else beam search)."""
    model = hub.models[0]
    src = hub.encode(sentence)  # (S,): BPE ids, </s> last
    if target is None:
        tgt = hub.generate([src], beam=beam)[0][0]["tokens"].cpu()  # (T,), </s> last
    else:
        tgt = hub.task.target_dictionary.encode_line(hub.apply_bpe(hub.tokenize(target)), add_if_not_exist=False).long()
    eos = hub.task.target_dictionary.eos()
    prev = torch.cat([tgt.new_tensor([eos]), tgt[:-1]])  # (T,): teacher forcing, shifted right
    enc = model.encoder(src[None], torch.tensor([len(src)]), return_all_attention=True)
    _, extra = model.decoder(prev[None], enc, return_all_attention=True)
    n_layers = len(extra["cross_attention"])
    layer = layer % n_layers
    src_words = _labels(hub.task.source_dictionary, src)
    tgt_words = _labels(hub.task.target_dictionary, tgt)
    prev_words = _labels(hub.task.target_dictionary, prev)
    return {
        "encoder_self_attention": (enc["encoder_attention"][layer][0].float(), src_words, src_words),
        "decoder_self_attention": (extra["self_attention"][layer][0].float(), tgt_words, prev_words),
        "encoder_decoder_attention": (extra["cross_attention"][layer][0].float(), tgt_words, src_words),
    }


@torch.no_grad()
def classifier_attention(classifier, review: str, layer: int = -1) -> Dict[str, AttentionMap]:
    """The classifier encoder's self-attention of one layer over ``review`` (as the task frames and truncates it)."""
    tokens = classifier.encode(review)  # (T,): <s> review </s>
    enc = classifier.model.encoder(tokens[None], torch.tensor([len(tokens)]), return_all_attention=True)
    maps = enc["encoder_attention"]
    words = _labels(classifier.task.source_dictionary, tokens)
    return {"classifier_self_attention": (maps[layer % len(maps)][0].float(), words, words)}


def plot_heads(weights: torch.Tensor, rows: List[str], cols: List[str], title: str, path: str) -> None:
    """One heatmap panel per head, query tokens down the side, key tokens along the bottom; PNG at ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    h = weights.size(0)
    cell = 0.22
    width = max(3.0, cell * len(cols) + 1.2)
    height = max(2.5, cell * len(rows) + 1.2)
    fig, axes = plt.subplots(1, h, figsize=(width * h, height), squeeze=False)
    for i, ax in enumerate(axes[0]):
        ax.imshow(weights[i].numpy(), cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto")
        ax.set_title(f"head {i + 1}", fontsize=9)
        ax.set_xticks(range(len(cols)))
        ax.set_xticklabels(cols, rotation=90, fontsize=7)
        ax.set_yticks(range(len(rows)))
        ax.set_yticklabels(rows if i == 0 else [""] * len(rows), fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
