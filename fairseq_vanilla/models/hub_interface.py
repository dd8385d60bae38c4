"""fairseq's hub interface for a checkpoint of ours, with the tokenizer's and BPE's own flags as keyword arguments.

What ``VanillaTransformerModel.from_pretrained`` returns, and what :func:`fairseq_vanilla.inference.hub.load_translator`
builds from a prepared folder. The caller registers our architectures first (:func:`fairseq_vanilla.register`).
"""

from dataclasses import fields


def generator_hub_interface(
    model_name_or_path: str, checkpoint_file: str = "checkpoint_best.pt", data_name_or_path: str = ".", **kwargs
):
    """fairseq's hub interface (``.translate``, ``.sample``, ``.generate``) around a trained checkpoint.

    As ``BaseFairseqModel.from_pretrained``, with one addition: ``tokenizer=`` and ``bpe=`` name a registered
    choice and that choice's flags are keyword arguments too (``bpe_codes=…``, ``moses_lower=True``); fairseq
    itself applies such flags only to old checkpoints that hold an argparse Namespace.
    """
    from fairseq import hub_utils
    from fairseq.data import encoders  # noqa: F401  (sets up the tokenizer and bpe registries)
    from fairseq.registry import REGISTRIES
    from omegaconf import OmegaConf, open_dict

    loaded = hub_utils.from_pretrained(model_name_or_path, checkpoint_file, data_name_or_path, **kwargs)
    cfg = loaded["args"]
    with open_dict(cfg):
        for group in ("tokenizer", "bpe"):
            registry, name = REGISTRIES[group]["dataclass_registry"], kwargs.get(group)
            if name is None:
                continue
            if name not in registry:
                raise ValueError(
                    f"{group}={name!r} is not a registered --{group} (known: {', '.join(sorted(registry))})"
                )
            names = {f.name for f in fields(registry[name])}
            values = {k: v for k, v in kwargs.items() if k in names}
            for lang in ("source_lang", "target_lang"):  # the Moses rules follow the model's languages
                if lang in names and lang not in values and cfg.task.get(lang):
                    values[lang] = cfg.task[lang]
            cfg[group] = OmegaConf.create({"_name": name, **values})
    return hub_utils.GeneratorHubInterface(cfg, loaded["task"], loaded["models"])
