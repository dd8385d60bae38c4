"""The task translation_merged_batches: --merge-batches K trains on the sentences of --update-freq K's update in one
batch (the accum-mix row of Table 3)."""

from fairseq_vanilla.tasks.translation_merged_batches import merge_consecutive
from tests.conftest import TINY_TRAIN_FLAGS, USER_DIR, fairseq


def test_merge_consecutive_by_hand():
    merged = merge_consecutive([[1, 2], [3], [4, 5, 6], [7], [8, 9]], 2)
    assert [m.tolist() for m in merged] == [[1, 2, 3], [4, 5, 6, 7], [8, 9]]  # the short last group is kept
    assert [m.tolist() for m in merge_consecutive([[1], [2]], 1)] == [[1], [2]]


def _epoch_batches(data, task_name, epoch=1, **extra):
    from fairseq import tasks
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf
    from fairseq.options import get_training_parser, parse_args_and_arch

    argv = [str(data), "--user-dir", str(USER_DIR), "--task", task_name, "--arch", "vanilla_transformer_tiny"]
    argv += [f"--{k.replace('_', '-')}={v}" for k, v in extra.items()]
    cfg = convert_namespace_to_omegaconf(parse_args_and_arch(get_training_parser(), argv))
    task = tasks.setup_task(cfg.task)
    task.load_dataset("train")
    itr = task.get_batch_iterator(task.dataset("train"), max_tokens=256, seed=3, epoch=epoch)
    return [b["id"].tolist() for b in itr.next_epoch_itr(shuffle=True)]


def test_each_merged_batch_holds_the_sentences_of_one_accumulated_update(tiny_corpus):
    """Epoch 2 of the same seed: batch i of --merge-batches 4 holds exactly the sentences of fairseq's batches
    4i … 4i + 3, the four that --update-freq 4 accumulates into update i (in another order of updates: fairseq
    shuffles the merged batches again)."""
    plain = _epoch_batches(tiny_corpus, "translation", epoch=2)
    merged = _epoch_batches(tiny_corpus, "translation_merged_batches", epoch=2, merge_batches=4)
    updates = [sorted(i for b in plain[j : j + 4] for i in b) for j in range(0, len(plain), 4)]
    assert len(plain) > 8 and len(merged) == len(updates)
    assert sorted(sorted(b) for b in merged) == sorted(updates)
    assert len(set(map(len, plain))) > 1  # batches of several lengths are mixed, not one bucket copied
    lengths = [len(b) for b in merged]
    assert max(lengths) > max(map(len, plain))  # one forward pass over four batches' sentences


def test_stock_fairseq_train_runs_merged_batches_and_refuses_zero(tiny_corpus, tmp_path):
    common = ("fairseq-train", tiny_corpus, "--user-dir", USER_DIR, *TINY_TRAIN_FLAGS, "--max-update", "2")
    proc = fairseq(
        *common, "--task", "translation_merged_batches", "--merge-batches", "4", "--save-dir", tmp_path / "a"
    )
    assert "done training" in proc.stderr + proc.stdout
    bad = fairseq(*common, "--task", "translation_merged_batches", "--merge-batches", "0", "--save-dir",
                  tmp_path / "b", check=False)  # fmt: skip
    assert bad.returncode != 0 and "--merge-batches must be at least 1, got 0" in bad.stderr
