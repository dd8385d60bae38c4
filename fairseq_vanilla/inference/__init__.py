"""Raw text in, raw text out: trained models exported to CTranslate2 (:mod:`.ctranslate2`) and translated by it
(:mod:`.fast_translator`)."""
