"""README "Extending", done: a new architecture and a new task in a user's own ``--user-dir`` plugin folder, read by
the stock fairseq parser and ``fairseq-train``; a new row in a copy of a table file, turned into its job's flags."""

import math
import re
from pathlib import Path

import pytest
from test_text_classification import PREPARE, WORDS, run, toy_text

from conftest import ROOT, fairseq
from fairseq_vanilla.experiments.table import spec as T

# ---------------------------------------------------------------- (a) an architecture

ARCH_PLUGIN = '''\
"""my_transformer_small: vanilla_transformer with N=3, d_model=64, d_ff=96, h=2 (the decoder follows)."""

from fairseq.models import register_model_architecture

import fairseq_vanilla
from fairseq_vanilla.models.config import apply_preset

fairseq_vanilla.register()  # idempotent: our models, criteria, tasks, scheduler, tokenizers and repairs


@register_model_architecture("vanilla_transformer", "my_transformer_small")
def my_transformer_small(args):
    preset = dict(encoder_layers=3, encoder_embed_dim=64, encoder_ffn_embed_dim=96, encoder_attention_heads=2)
    apply_preset(args, preset)  # then the paper's defaults for every flag not given; the decoder's from the encoder's
'''


def plugin(folder: Path, source: str) -> Path:
    """A ``--user-dir`` package: ``folder/__init__.py`` holding ``source``."""
    folder.mkdir(parents=True)
    (folder / "__init__.py").write_text(source, encoding="utf-8")
    return folder


def test_an_architecture_is_a_preset_in_a_user_dir(tmp_path):
    """What ``fairseq-train DATA --user-dir my_arch --arch my_transformer_small`` does before training: fairseq's
    training parser imports the plugin, fills the flags from the preset, the task builds the model."""
    from fairseq import options, tasks

    user_dir = plugin(tmp_path / "toy_arch", ARCH_PLUGIN)
    data = tmp_path / "bin"
    data.mkdir()
    for lang in ("en", "de"):  # setup_task reads the dictionaries only: 12 words + 4 specials = V 16
        (data / f"dict.{lang}.txt").write_text("".join(f"w{i} 1\n" for i in range(12)))
    argv = [str(data), "--user-dir", str(user_dir), "--arch", "my_transformer_small", "-s", "en", "-t", "de"]
    argv += ["--share-all-embeddings"]
    args = options.parse_args_and_arch(options.get_training_parser(), argv)
    sizes = ("layers", "embed_dim", "ffn_embed_dim", "attention_heads")
    for side in ("encoder", "decoder"):
        assert [getattr(args, f"{side}_{s}") for s in sizes] == [3, 64, 96, 2], side
    assert args.dropout == 0.1  # not in the preset: the paper's default

    task = tasks.setup_task(args)
    model = task.build_model(args)
    assert (len(model.encoder.layers), len(model.decoder.layers)) == (3, 3)
    v, d, f, n = 16, 64, 96, 3
    attention, norm, ffn = 4 * (d * d + d), 2 * d, (d * f + f) + (f * d + d)  # W_Q,K,V,O; LayerNorm; W_1, W_2
    encoder_layer, decoder_layer = attention + ffn + 2 * norm, 2 * attention + ffn + 3 * norm
    embeddings = v * d  # one matrix: source, target and output layer (§3.4)
    assert sum(p.numel() for p in model.parameters()) == embeddings + n * (encoder_layer + decoder_layer)


# ---------------------------------------------------------------- (b) a task

TASK_PLUGIN = '''\
"""topic_classification: text_classification for the labels food, sport and tech only, texts of at most 64 tokens."""

from dataclasses import dataclass, field

from fairseq.tasks import register_task

import fairseq_vanilla
from fairseq_vanilla.fairseq_fixes.errors import OneLineError
from fairseq_vanilla.tasks.text_classification import TextClassificationConfig, TextClassificationTask

fairseq_vanilla.register()

LABELS = ["food", "sport", "tech"]


@dataclass
class TopicClassificationConfig(TextClassificationConfig):
    max_positions: int = field(default=64, metadata={"help": "longest sample in tokens, <s> and </s> included"})


@register_task("topic_classification", dataclass=TopicClassificationConfig)
class TopicClassificationTask(TextClassificationTask):
    @classmethod
    def setup_task(cls, cfg, **kwargs):
        task = super().setup_task(cfg, **kwargs)
        found = sorted(cls.class_names(task.label_dictionary))
        if found != LABELS:  # OneLineError: the command ends with this one line, `error: …`
            labels = ", ".join(found)
            raise OneLineError(f"{cfg.data}: labels {labels}; topic_classification needs {', '.join(LABELS)}")
        return task
'''


ARCH = "vanilla_transformer_classifier_tiny"


def test_a_task_is_a_subclass_in_a_user_dir(tmp_path):
    """prepare-classification.sh's data, the plugin's task set up by fairseq, then two updates and a validation by
    the stock ``fairseq-train --user-dir toy_task --task topic_classification``."""
    import random

    from fairseq import options, tasks

    from fairseq_vanilla.fairseq_fixes.errors import OneLineError

    user_dir = plugin(tmp_path / "toy_task", TASK_PLUGIN)
    rng, splits = random.Random(0), {}
    for split, n in (("train", 20), ("valid", 5), ("test", 5)):  # n texts a label
        rows = [(label, toy_text(rng, label)) for label in WORDS for _ in range(n)]
        rng.shuffle(rows)
        splits[split] = tmp_path / f"{split}.tsv"
        splits[split].write_text("".join(f"{label}\t{text}\n" for label, text in rows))
    prep = tmp_path / "prep"
    sources = [x for split, path in splits.items() for x in (f"--{split}", path)]
    run("bash", PREPARE, *sources, "--out", prep, "--bpe-ops", "50", "--lower")

    def setup(data):
        argv = [str(data), "--user-dir", str(user_dir), "--task", "topic_classification", "--arch", ARCH]
        return tasks.setup_task(options.parse_args_and_arch(options.get_training_parser(), argv))

    task = setup(prep / "bin")
    assert type(task).__name__ == "TopicClassificationTask" and task.cfg.max_positions == 64
    assert sorted(task.class_names(task.label_dictionary)) == sorted(WORDS)
    task.load_dataset("valid")
    assert sorted(task.dataset("valid").labels.tolist()) == sorted([0, 1, 2] * 5)
    other = tmp_path / "other"  # the same texts' dictionary, two other labels
    for part, words in (("input0", None), ("label", ("pos", "neg"))):
        (other / part).mkdir(parents=True)
        text = (prep / "bin" / part / "dict.txt").read_text() if words is None else "".join(f"{w} 1\n" for w in words)
        (other / part / "dict.txt").write_text(text)
    with pytest.raises(OneLineError, match=rf"^{re.escape(str(other))}: labels neg, pos; topic_classification needs"):
        setup(other)

    trained = fairseq(
        "fairseq-train", prep / "bin", "--user-dir", user_dir, "--task", "topic_classification",
        "--arch", ARCH, "--encoder-embed-dim", "32", "--encoder-ffn-embed-dim", "64",
        "--encoder-layers", "1", "--criterion", "vanilla_label_smoothed_classification", "--optimizer", "adam",
        "--lr", "0.003", "--batch-size", "16", "--max-update", "2", "--no-save", "--num-workers", "0",
        "--log-format", "simple", "--log-interval", "1", "--seed", "1",
    )  # fmt: skip
    log = trained.stdout + trained.stderr
    assert "train: 60 texts, classes [20, 20, 20]" in log and "valid: 15 texts, classes [5, 5, 5]" in log
    assert "'_name': 'topic_classification'" in log and "'max_positions': 64" in log
    valid = next(line for line in log.splitlines() if "valid on 'valid' subset" in line)
    assert "num_updates 2" in valid and "examples 15" in valid
    assert math.isfinite(float(re.search(r"\| loss ([0-9.]+)", valid).group(1)))
    assert 0 <= float(re.search(r"accuracy ([0-9.]+)", valid).group(1)) <= 1


# ---------------------------------------------------------------- (c) a row of a table

NEW_ROW = '  - {id: N2-ff256, row: N2, variant: "N=2, d_ff=256", change: {N: 2, d_ff: 256}}\n'


def flag_values(flags):
    """``[--a, 1, --b, --c, x]`` → ``{--a: "1", --b: "", --c: "x"}`` (a fairseq flag and its value)."""
    values, flag = {}, None
    for token in flags:
        if token.startswith("--"):
            flag, values[token] = token, ""
        else:
            values[flag] = (values[flag] + " " + token).strip()
    return values


def test_a_table_row_is_one_line_of_a_table_file(tmp_path):
    """A copy of examples/positions/table.yaml with one row more: the row's job gets the base's flags, except the
    four the change of N and d_ff makes."""
    source = ROOT / "examples" / "positions" / "table.yaml"
    text = source.read_text(encoding="utf-8")
    anchor = "default_rows: [base, learned, none]\n"
    assert anchor in text
    copy = tmp_path / "table.yaml"
    copy.write_text(text.replace(anchor, NEW_ROW + "default_rows: [base, learned, none, N2]\n"), encoding="utf-8")

    table, original = T.load_table(str(copy)), T.load_table(str(source))
    rows = {r["id"]: r for r in T.select_rows(table, None)}
    assert list(rows) == ["sinusoidal", "learned", "none", "N2-ff256"]
    base = T.train_flags(table, rows["sinusoidal"], "short15", seed=1)
    new = T.train_flags(table, rows["N2-ff256"], "short15", seed=1)
    assert base == T.train_flags(original, original["rows"][0], "short15", seed=1)  # the copy's base is the original's
    base_values, new_values = flag_values(base), flag_values(new)
    assert set(new_values) == set(base_values)
    changed = {flag: value for flag, value in new_values.items() if base_values[flag] != value}
    assert changed == {
        "--encoder-layers": "2",
        "--decoder-layers": "2",
        "--encoder-ffn-embed-dim": "256",
        "--decoder-ffn-embed-dim": "256",
    }
    assert (base_values["--encoder-layers"], base_values["--encoder-ffn-embed-dim"]) == ("3", "512")
