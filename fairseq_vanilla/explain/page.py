"""A page that highlights each word of a review by its score, one line per attribution method.

Colour strength is the score divided by the largest absolute score on that line (methods have different scales):
orange = evidence for the predicted class, blue = against it; the exact score is the word's tooltip. Every piece of
text (review, words, labels) is HTML-escaped, so a review containing markup is shown, never run.
"""

import html
from typing import List, Sequence

from ..text.outputs import html_generator
from .explainer import Explanation

TOOL = "explain"  # the page's generator tag: scripts/explain.py replaces only a page that carries it

STYLE = """body { font-family: sans-serif; max-width: 60em; margin: 2em auto; line-height: 1.9; }
table { border-collapse: collapse; } td { vertical-align: top; padding: 0.2em 0.6em; }
td.method { font-weight: bold; white-space: nowrap; } span.w { padding: 0.1em 0.15em; border-radius: 0.2em; }
p.review { color: #444; font-style: italic; }"""


def word_colour(score: float, scale: float) -> str:
    """CSS background for a score: orange (positive) or blue (negative), opacity |score| / scale."""
    alpha = 0.0 if scale <= 0 else min(1.0, abs(score) / scale)
    rgb = "255, 140, 0" if score >= 0 else "30, 144, 255"
    return f"rgba({rgb}, {alpha:.3f})"


def method_line(words: Sequence[str], scores: Sequence[float]) -> str:
    """One method's words as highlighted spans, the score in each span's tooltip (``title``)."""
    scale = max((abs(s) for s in scores), default=0.0)
    return " ".join(
        f'<span class="w" title="{s:.4g}" data-score="{s:.6g}" style="background: {word_colour(s, scale)}">'
        f"{html.escape(w)}</span>"
        for w, s in zip(words, scores)
    )


def render_page(explanations: List[Explanation], methods: Sequence[str], title: str = "Which words decided") -> str:
    """The whole page: per review its text, prediction and one highlighted line per method."""
    parts = [
        "<!DOCTYPE html>",
        f'<html lang="en"><head><meta charset="utf-8">{html_generator(TOOL)}',
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        "<p>Each word is highlighted by its score: orange = for the predicted class, blue = against it, strength "
        "relative to the line's largest score; hover a word for its score. A word's score is the sum of its "
        "subword pieces' scores.</p>",
    ]
    for n, e in enumerate(explanations, 1):
        parts.append(f"<h2>Review {n}: {html.escape(e.label)} ({e.probability:.3f})</h2>")
        parts.append(f'<p class="review">{html.escape(e.review)}</p><table>')
        for method in methods:
            line = method_line(e.words, e.scores[method])
            parts.append(f'<tr><td class="method">{html.escape(method)}</td><td>{line}</td></tr>')
        parts.append("</table>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
