"""Per-review predictions of a classifier checkpoint on a binarised split, so that its accuracy can be recomputed.

    python -m fairseq_vanilla.inference.split_predictions --path CKPT --data BIN --subset test --out FILE.json

The split is read as fairseq-validate reads it (the task's ``load_dataset``, its batches, no shuffling); the record
holds, in the dataset's order, each review's predicted and true class as one character each (the class's index in
``classes``), so a table can recompute the accuracy that fairseq-validate printed, and compare two runs review by
review.
"""

import argparse
import json
import sys
from typing import Any, Dict, List

ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"  # one character per class index
RECORD_KEYS = ("subset", "classes", "predicted", "true")  # of a record of :func:`predict_split`


def encode_classes(indices: List[int]) -> str:
    """[0, 1, 1] → ``"011"`` (at most 36 classes)."""
    if any(not 0 <= i < len(ALPHABET) for i in indices):
        raise ValueError(f"a class index outside 0…{len(ALPHABET) - 1}")
    return "".join(ALPHABET[i] for i in indices)


def accuracy(record: Dict[str, Any]) -> float:
    """The fraction of reviews whose predicted class is the true one, from a record of :func:`predict_split`."""
    predicted, true = record["predicted"], record["true"]
    if len(predicted) != len(true) or not true:
        raise ValueError("predicted and true classes differ in number, or are empty")
    return sum(p == t for p, t in zip(predicted, true)) / len(true)


def predict_split(path: str, data: str, subset: str = "test", batch_size: int = 64) -> Dict[str, Any]:
    """``{"subset", "classes", "predicted", "true"}`` for every review of ``subset``, ordered by its index."""
    import torch
    from fairseq import checkpoint_utils

    from fairseq_vanilla import register
    from fairseq_vanilla.tasks.text_classification import TextClassificationTask

    register()  # the task and models, the safe loader
    models, _cfg, task = checkpoint_utils.load_model_ensemble_and_task([path], arg_overrides={"data": data})
    if not isinstance(task, TextClassificationTask):
        raise ValueError(f"--path {path}: not a classifier checkpoint (task {type(task).__name__})")
    model = models[0].eval()
    task.load_dataset(subset)
    dataset = task.dataset(subset)
    batches = task.get_batch_iterator(
        dataset, max_sentences=batch_size, ignore_invalid_inputs=False, num_workers=0
    ).next_epoch_itr(shuffle=False)
    predicted, true = {}, {}
    with torch.no_grad():
        for sample in batches:
            logits = model(**sample["net_input"])  # (B, C)
            for i, p, t in zip(sample["id"].tolist(), logits.argmax(-1).tolist(), sample["target"].view(-1).tolist()):
                predicted[i], true[i] = p, t
    order = sorted(true)
    if order != list(range(len(dataset))):
        raise RuntimeError(f"{subset}: {len(order)} of {len(dataset)} reviews were predicted")
    return {
        "subset": subset,
        "classes": TextClassificationTask.class_names(task.label_dictionary),
        "predicted": encode_classes([predicted[i] for i in order]),
        "true": encode_classes([true[i] for i in order]),
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--path", required=True, help="classifier checkpoint (.pt)")
    p.add_argument("--data", required=True, help="the binarised folder it was trained on (bin/ of prepare-imdb.sh)")
    p.add_argument("--subset", default="test")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--out", required=True, help="JSON file to write (a temporary name, renamed when complete)")
    a = p.parse_args(argv)
    from fairseq_vanilla.text.io import PipelineError, atomic_write, check_json_output

    try:
        check_json_output(a.out, RECORD_KEYS, reads=(a.path,))
        record = predict_split(a.path, a.data, a.subset, a.batch_size)
    except (OSError, ValueError, PipelineError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    with atomic_write(a.out) as f:
        f.write(json.dumps(record) + "\n")
    print(f"{a.subset}: {len(record['true'])} reviews, accuracy {accuracy(record):.4f} → {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
