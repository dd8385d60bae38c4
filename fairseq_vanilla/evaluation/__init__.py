"""Scoring translations: BLEU / chrF, paired significance tests, seed spread (no fairseq)."""
