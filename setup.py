"""fairseq-vanilla: a from-scratch "Attention Is All You Need" Transformer for fairseq's --user-dir.

Install with ``bash scripts/setup.sh`` (makes ``.venv``, pins torch, builds fairseq-fixed); see README.md.
"""

from setuptools import find_packages, setup

setup(
    name="fairseq-vanilla",
    version="0.1.0",
    description="Paper-faithful Transformer, label-smoothed criteria and pipeline scripts as a fairseq plugin",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    # hydra_plugins.fairseq_vanilla_sweeper: Hydra finds plugins only in the hydra_plugins namespace package.
    packages=find_packages(include=["fairseq_vanilla", "fairseq_vanilla.*"])
    + ["hydra_plugins.fairseq_vanilla_sweeper"],
    python_requires=">=3.9",
    # torch is installed first by scripts/setup.sh (CPU wheel pinned there, or the user's CUDA build);
    # a range here, not a pin, so that an installed build is kept. >=2.6: torch.serialization.safe_globals.
    install_requires=[
        "torch>=2.6",
        "fairseq-fixed==0.12.3.1",
        "sacremoses",
        "subword-nmt",
        "sentencepiece",
        "sacrebleu>=2.0",
        "scipy",  # Student t quantiles of the seed-aware comparison (evaluation/significance.py)
        "tensorboardX",
        "matplotlib",
    ],
    # eflomal (GPL-3.0, a separate program the alignment script calls): word alignments for
    # scripts/prepare-alignments.sh; scripts/setup.sh installs it.
    # ctranslate2: fast CPU/GPU translation of exported models (scripts/export-ctranslate2.py, scripts/translate.py).
    # sweep: Hydra's Optuna sweeper and joblib/submitit launchers at versions that install beside fairseq-fixed's
    # hydra-core==1.3.2; the Optuna sweeper needs optuna<3, and optuna 2.10's SQLite storage needs SQLAlchemy<2.
    extras_require={
        "test": ["pytest"],
        "lint": ["ruff==0.17.6"],
        "align": ["eflomal"],
        "fast": ["ctranslate2==4.8.5"],
        "explain": ["captum==0.9.0"],  # gradient attributions (scripts/explain.py, bench/erasure.py)
        "sweep": [
            "hydra-optuna-sweeper==1.2.0",
            "optuna==2.10.1",
            "sqlalchemy==1.4.54",
            "hydra-joblib-launcher==1.2.0",
            "hydra-submitit-launcher==1.2.0",
            "submitit==1.5.4",
        ],
    },
)
