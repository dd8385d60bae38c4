"""Which CTranslate2 compute type to translate with on this machine (``--compute-type auto``): a measured rule.

Pure functions over the compute types CTranslate2 offers (:func:`supported_compute_types` asks it); the choice of
the *training* precision is :mod:`fairseq_vanilla.experiments.precision`.
"""

from typing import Iterable, Tuple


def choose_compute_type(requested: str, supported: Iterable[str], device: str = "cpu") -> Tuple[str, str]:
    """``(compute_type, why)`` for CTranslate2: ``auto`` picks float32 on the CPU, the type that keeps the outputs.

    Measured (BENCHMARKS.md; Multi30k models, beam 5, 2 threads, load excluded): int8 changes about a quarter of the
    beam outputs in every measurement (a third on the Table 3 base), and its speed depends on the model as much as on
    the CPU: on AVX2 EPYCs 0.59x and 0.90x float32 at batch 1 on two 6+6/d_model 128 models (A-h1, the Table 3 base),
    1.64x on a 3+3/d_model 256 one; on an AVX-512 VNNI EPYC 4x
    slower at batch 1 (whole commands, 3+3/d_model 256). No type is fastest on every model, and only float32 gives
    fairseq-generate's hypotheses, so ``auto`` is float32 on the CPU. Other values are passed through when supported.
    """
    supported = set(supported)
    if requested != "auto":
        if requested != "default" and requested not in supported:
            raise ValueError(
                f"--compute-type {requested} is not supported here (supported: {', '.join(sorted(supported))})"
            )
        return requested, "asked for"
    if device == "cpu" and "float32" in supported:
        return "float32", (
            "auto: on the CPU float32 keeps fairseq-generate's outputs; int8 changes about a quarter of them and is "
            "faster only on some models (BENCHMARKS.md); ask for int8_float32 to trade"
        )
    return "default", "auto: as exported (float32 unsupported here)"


def supported_compute_types(device: str = "cpu") -> frozenset:
    """The compute types CTranslate2 offers on ``device`` here (imports ctranslate2)."""
    import ctranslate2

    return frozenset(ctranslate2.get_supported_compute_types(device))
