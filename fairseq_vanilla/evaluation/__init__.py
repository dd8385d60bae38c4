"""Scoring translations (no fairseq): BLEU / chrF, paired significance tests and seed spread, hypothesis extraction
and compound splitting, word-alignment symmetrisation and AER, attention maps."""
