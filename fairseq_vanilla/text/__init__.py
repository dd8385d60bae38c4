"""Corpora: reading and atomic writing, Moses, BPE/sentencepiece, cleaning, IMDB extraction and augmentation (no
fairseq, no model)."""
