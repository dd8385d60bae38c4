"""Why a trained model answered as it did: attributions of a classifier's decision to the words of a review
(:mod:`.explainer`: attention, rollout, gradients, integrated gradients), their faithfulness by erasure
(:mod:`.erasure`, tables and plot in :mod:`.report`), the HTML page (:mod:`.page`), and where a translation model's
attention and gradients align (:mod:`.alignment_probe`). The math is in :mod:`fairseq_vanilla.evaluation`
(``attribution``, ``alignment_scores``); this room wires it to our models and the hub. Only scripts and benches
import it."""
