"""Translate with an exported CTranslate2 model, by the same search as fairseq-generate.

    from fairseq_vanilla.inference.fast_translator import FastTranslator
    mt = FastTranslator("runs/m30/ct2")            # a folder written by scripts/export-ctranslate2.py
    mt.translate("A man is riding a bike.", beam=5)  # same signature as the fairseq hub's .translate()

fairseq's ``SequenceGenerator`` options map onto CTranslate2's ``translate_batch`` one to one (:func:`search_options`):
beam size; ``--lenpen`` α, by which both divide a finished hypothesis' log-probability by its length (counting
``</s>``) to the power α; at most ``min(max_len_a·|x| + max_len_b, max_target_positions - 1)`` tokens before ``</s>``;
no ``</s>`` as the first token (fairseq's ``min_len=1``); the best ``nbest`` hypotheses; stop when ``beam``
hypotheses have finished (CTranslate2's ``patience=1``). One difference is repaired after the search: a hypothesis
stopped by the maximum length gets fairseq's forced ``</s>`` and its log-probability (re-scored, finalists re-ranked);
beam search can still differ there, since fairseq's last step finalises every live beam. Raw text goes through the
prepare scripts' own steps, read from the folder's ``pipeline.txt``: Moses (sacremoses) + subword-nmt BPE with the
per-language vocabulary filter, or sentencepiece; and back: BPE removal as ``fairseq-generate --remove-bpe``, then Moses
detokenisation.
"""

import math
import os
import sys
from typing import Dict, Iterable, Iterator, List, Optional, Sequence, Union

from ..text.io import read_settings
from .compute_type import choose_compute_type, supported_compute_types
from .ctranslate2_spec import ExportError, import_ctranslate2
from .lengths import SKIP_FLAG, model_positions, too_long_sources


def search_options(
    beam: int = 5,
    lenpen: float = 1.0,
    max_len_a: float = 0,
    max_len_b: int = 200,
    nbest: int = 1,
    max_positions: int = 1024,
    **unsupported,
) -> Dict[str, object]:
    """fairseq-generate's search flags as ``ctranslate2.Translator.translate_batch`` keyword arguments."""
    if unsupported:
        raise ValueError(
            f"not supported by the CTranslate2 engine: {', '.join(sorted(unsupported))} "
            "(it takes beam, lenpen, max_len_b, nbest, batch_size)"
        )
    if max_len_a != 0:
        raise ValueError("max_len_a must be 0 with CTranslate2 (its maximum length is one number per batch)")
    if beam < 1 or nbest < 1 or nbest > beam:
        raise ValueError(f"need 1 <= nbest ({nbest}) <= beam ({beam})")
    return dict(
        beam_size=beam,
        length_penalty=lenpen,
        patience=1,
        num_hypotheses=nbest,
        max_decoding_length=min(int(max_len_b), max_positions - 1),
        min_decoding_length=1,
        return_scores=True,
        return_end_token=False,
        max_input_length=0,  # no truncation: too-long sources are refused first (too_long_sources)
        sampling_topk=1,
        repetition_penalty=1,
        no_repeat_ngram_size=0,
        disable_unk=False,
    )


class TextPipeline:
    """The prepare scripts' segmentation of raw text and its inverse, from an exported folder's ``pipeline.txt``."""

    def __init__(self, model_dir: str):
        path = os.path.join(model_dir, "pipeline.txt")
        if not os.path.isfile(path):
            raise ExportError(f"{path}: missing: export with scripts/export-ctranslate2.py --data PREPARED_DIR")
        settings = read_settings(path)
        lower = settings.get("lower") == "1"
        src, tgt = settings.get("src", "en"), settings.get("tgt", "de")
        from ..text.moses import moses_detokenizer, moses_tokenizer

        if settings.get("segmentation", "bpe") == "spm":  # sentencepiece ran on the raw (lower-cased) text
            import sentencepiece as spm

            sp = spm.SentencePieceProcessor(model_file=os.path.join(model_dir, "spm.model"))
            self.encode = lambda line: sp.encode(line.lower() if lower else line, out_type=str)
            self.remove_bpe, self.detokenize = "sentencepiece", (lambda line: line)
        else:  # subword-nmt BPE on Moses tokens, with the vocabulary filter of scripts/lib.sh's learn_apply_bpe
            from subword_nmt.apply_bpe import BPE, read_vocabulary

            vocab_path = os.path.join(model_dir, f"vocab.{src}")
            vocab = None
            if os.path.isfile(vocab_path):
                with open(vocab_path, encoding="utf-8") as f:
                    vocab = read_vocabulary(f, 1)
            with open(os.path.join(model_dir, "codes"), encoding="utf-8") as codes:
                bpe = BPE(codes, vocab=vocab)
            tokenize = moses_tokenizer(src, lower=lower)
            self.encode = lambda line: bpe.process_line(tokenize(line)).split()
            self.remove_bpe, self.detokenize = "subword_nmt", moses_detokenizer(tgt)

    def decode(self, tokens: Sequence[str]) -> str:
        """Output tokens → detokenised text, as ``fairseq-generate --remove-bpe`` + ``pipeline detokenize``."""
        from fairseq.data.data_utils import post_process

        return self.detokenize(post_process(" ".join(tokens), self.remove_bpe))


class FastTranslator:
    """An exported model in CTranslate2, with the fairseq hub's
    ``translate(sentences, beam=5, verbose=False, **kwargs)``. ``compute_type="auto"`` picks this CPU's fastest
    measured type (:func:`.compute_type.choose_compute_type`); ``compute_type_why`` says why."""

    def __init__(
        self,
        model_dir: str,
        compute_type: str = "default",
        threads: int = 0,
        batch_size: int = 64,
        skip_too_long: bool = False,
        **search,
    ):
        ctranslate2 = import_ctranslate2()
        if not os.path.isfile(os.path.join(model_dir, "model.bin")):
            raise ExportError(
                f"{model_dir}: no CTranslate2 model here (model.bin missing); "
                "make one with scripts/export-ctranslate2.py"
            )
        threads = threads or int(os.environ.get("OMP_NUM_THREADS", "0") or 0)
        supported = supported_compute_types("cpu")
        compute_type, self.compute_type_why = choose_compute_type(compute_type, supported)
        self.compute_type = compute_type
        self.translator = ctranslate2.Translator(
            model_dir, device="cpu", compute_type=compute_type, inter_threads=1, intra_threads=threads
        )
        self.model_dir, self.batch_size, self.search = model_dir, batch_size, search
        self.skip_too_long = skip_too_long
        self.max_positions = model_positions(model_dir)
        self._text: Optional[TextPipeline] = None

    @classmethod
    def from_checkpoint(cls, checkpoint: str, data: str, out: Optional[str] = None, **kwargs) -> "FastTranslator":
        """Export ``checkpoint`` (trained on the prepared folder ``data``) into ``out`` (a temporary folder by
        default) and load it."""
        import tempfile

        from .ctranslate2 import export

        out = out or os.path.join(tempfile.mkdtemp(prefix="ctranslate2-"), "model")
        return cls(export(checkpoint, data, out), **kwargs)

    @property
    def text(self) -> TextPipeline:
        if self._text is None:
            self._text = TextPipeline(self.model_dir)
        return self._text

    def translate_tokens(self, sources: List[List[str]], **kwargs) -> List[List[dict]]:
        """Segmented sources → per source, the ``nbest`` hypotheses ``{"tokens", "score"}``, in input order, in
        batches of ``batch_size`` sentences. The score is fairseq's: log-probability (natural log, ``</s>``
        included) divided by (|y| + 1)^α, which is what CTranslate2 returns for beam and greedy search alike."""
        options = {**self.search, **kwargs}
        batch_size = int(options.pop("batch_size", self.batch_size))
        ct2 = search_options(max_positions=self.max_positions[1], **options)
        nbest, ct2["num_hypotheses"] = ct2["num_hypotheses"], ct2["beam_size"]  # all finalists, for the cut ones
        skipped = set(too_long_sources(sources, self.max_positions, self.skip_too_long))
        if skipped:
            print(
                f"warning: {SKIP_FLAG}: skipped {len(skipped)} source(s) longer than max_positions="
                f"{self.max_positions} (an empty line each): {sorted(skipped)[:100]}",
                file=sys.stderr,
            )
        kept = [src for k, src in enumerate(sources) if k not in skipped]
        translated = []
        for i in range(0, len(kept), batch_size):
            batch = kept[i : i + batch_size]
            for src, out in zip(batch, self.translator.translate_batch(batch, max_batch_size=batch_size, **ct2)):
                hyps = [{"tokens": toks, "score": score} for toks, score in zip(out.hypotheses, out.scores)]
                translated.append(self._end_cut_hypotheses(src, hyps, ct2)[:nbest])
        found = iter(translated)
        return [[{"tokens": [], "score": float("-inf")}] if k in skipped else next(found) for k in range(len(sources))]

    def _end_cut_hypotheses(self, source: List[str], hyps: List[dict], ct2: Dict[str, object]) -> List[dict]:
        """Hypotheses stopped by the maximum length, scored as fairseq finalises them: with a forced ``</s>``.

        CTranslate2 returns them without ``</s>`` and without its log-probability; fairseq appends ``</s>`` at
        step ``max_len`` and counts it, which can reorder the finalists."""
        cut = [h for h in hyps if len(h["tokens"]) >= ct2["max_decoding_length"]]
        if not cut:
            return hyps
        alpha = ct2["length_penalty"]
        for h, scored in zip(cut, self.translator.score_batch([source] * len(cut), [h["tokens"] for h in cut])):
            h["score"] = sum(scored.log_probs) / len(scored.log_probs) ** alpha  # (|y| + 1)^α, </s> included
        return sorted(hyps, key=lambda h: -h["score"])

    def translate(
        self, sentences: Union[str, List[str]], beam: int = 5, verbose: bool = False, **kwargs
    ) -> Union[str, List[str]]:
        """Raw sentence(s) → detokenised translation(s), the best hypothesis of each."""
        single = isinstance(sentences, str)
        batch = [sentences] if single else list(sentences)
        hyps = self.translate_tokens([self.text.encode(s) for s in batch], beam=beam, **kwargs)
        outputs = [self.text.decode(h[0]["tokens"]) for h in hyps]
        if verbose:
            for src, h, out in zip(batch, hyps, outputs):
                print(f"S\t{src}\nH\t{h[0]['score']:.4f}\t{out}")
        return outputs[0] if single else outputs

    def translate_lines(self, lines: Iterable[str], **kwargs) -> Iterator[str]:
        """Raw lines (a stream) → detokenised translations, in order, ``batch_size`` lines at a time."""
        batch: List[str] = []
        for line in lines:
            batch.append(line.rstrip("\n"))
            if len(batch) == self.batch_size:
                yield from self.translate(batch, **kwargs)
                batch = []
        if batch:
            yield from self.translate(batch, **kwargs)


def generate_split(
    translator: FastTranslator, bin_dir: str, split: str, src: str, tgt: str, remove_bpe: str, **search
) -> Iterator[str]:
    """``fairseq-generate``'s ``S-i``/``H-i`` lines for a binarised split: the same source token ids (fairseq's
    own dataset reader), one best hypothesis per sentence, score in base 2 as fairseq prints it."""
    from fairseq.data import Dictionary, data_utils

    src_dict = Dictionary.load(os.path.join(bin_dir, f"dict.{src}.txt"))
    prefix = os.path.join(bin_dir, f"{split}.{src}-{tgt}.{src}")
    dataset = data_utils.load_indexed_dataset(prefix, src_dict)
    if dataset is None:
        raise ExportError(f"{prefix}.bin: missing: no binarised split {split!r} in {bin_dir}")
    sources = [[src_dict[int(i)] for i in dataset[k][:-1]] for k in range(len(dataset))]  # without </s>
    sources = [["<blank>" if t == "<pad>" else t for t in s] for s in sources]
    for k, hyps in enumerate(translator.translate_tokens(sources, **search)):
        best = hyps[0]
        text = data_utils.post_process(" ".join(best["tokens"]), remove_bpe) if remove_bpe else " ".join(best["tokens"])
        yield f"S-{k}\t{src_dict.string(dataset[k], remove_bpe)}"
        yield f"H-{k}\t{best['score'] / math.log(2):.6f}\t{text}"
