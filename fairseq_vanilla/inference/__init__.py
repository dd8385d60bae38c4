"""Raw text in, raw text out: trained models with the pipeline's own preprocessing (:mod:`.hub`), exported to
CTranslate2 (:mod:`.ctranslate2`) and translated by it (:mod:`.fast_translator`), and a classifier's predictions on
a split (:mod:`.split_predictions`)."""
