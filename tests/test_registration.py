"""How fairseq finds our registrations: ``--user-dir`` (the package registers itself), or one visible call,
``fairseq_vanilla.register()``, idempotent; without fairseq, importing the package costs neither torch nor fairseq."""

import subprocess
import sys

import fairseq_vanilla
from conftest import BIN, ROOT, USER_DIR

LIGHT = (
    "fairseq_vanilla",
    "fairseq_vanilla.experiments.precision",  # scripts/train.sh --precision
    "fairseq_vanilla.evaluation.seed_statistics",
    "fairseq_vanilla.inference.compute_type",
    "fairseq_vanilla.fairseq_fixes.hydra_objective",  # what the Hydra plugin's worker processes import by name
)


def test_importing_the_package_or_a_light_submodule_loads_neither_torch_nor_fairseq():
    heavy = "sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'fairseq'})"
    code = f"import sys, {', '.join(LIGHT)}; print({heavy})"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout == "[]\n"


def test_register_is_idempotent():
    from fairseq.distributed import utils as distributed_utils
    from fairseq.models import ARCH_MODEL_REGISTRY
    from fairseq.optim.lr_scheduler import LR_SCHEDULER_REGISTRY

    from fairseq_vanilla.fairseq_fixes.bf16 import bf16_without_tpu_call_main
    from fairseq_vanilla.fairseq_fixes.patching import upstream

    fairseq_vanilla.register()
    fairseq_vanilla.register()
    assert ARCH_MODEL_REGISTRY["vanilla_transformer"] is fairseq_vanilla.VanillaTransformerModel
    assert "noam" in LR_SCHEDULER_REGISTRY
    assert distributed_utils.call_main is bf16_without_tpu_call_main  # installed once: no wrapper of a wrapper
    assert upstream(distributed_utils, "call_main") is not bf16_without_tpu_call_main


def test_fairseq_user_dir_finds_every_registration():
    """The stock binary with ``--user-dir``: the package, imported by fairseq, registers what fairseq's own
    ``tasks/`` and ``models/`` import leaves out (criteria, scheduler, tokenizers)."""

    def train(*args):
        cmd = [str(BIN / "fairseq-train"), "--user-dir", USER_DIR, *args]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=300)

    helped = train("--help")
    assert helped.returncode == 0, helped.stderr[-2000:]
    for name in ("vanilla_label_smoothed_cross_entropy", "noam", "vanilla_moses"):
        assert name in helped.stdout, name
    unknown = train("DATA", "--arch", "no_such_arch")  # fairseq lists the architectures it knows
    assert unknown.returncode == 2 and "vanilla_transformer_classifier" in unknown.stderr


def test_the_package_names_only_the_model_classes():
    assert fairseq_vanilla.VanillaTransformerClassifier.__name__ == "VanillaTransformerClassifier"
    try:
        fairseq_vanilla.NoSuchName  # noqa: B018
    except AttributeError as e:
        assert "NoSuchName" in str(e)
    else:
        raise AssertionError("fairseq_vanilla.NoSuchName did not raise AttributeError")
