"""Attribution: attention rollout, erasure, rank correlation, the HTML page, and scripts/explain.py end to end."""

import json
import re
import subprocess
import sys

import pytest
import torch

from conftest import ROOT, fairseq
from fairseq_vanilla.evaluation.attribution import (
    attention_scores,
    comprehensiveness,
    erase,
    erasure_count,
    kendall,
    random_scores,
    rollout,
    rollout_scores,
    spearman,
    top_positions,
)
from fairseq_vanilla.explain.erasure import summarise
from fairseq_vanilla.explain.explainer import Explanation, group_pieces
from fairseq_vanilla.explain.page import render_page
from fairseq_vanilla.explain.report import report

# ---------------------------------------------------------------- pure functions, against hand-computed values


def test_rollout_of_two_layers_matches_the_hand_computed_product():
    # layer 1, two heads: mean = [[.75, .25], [.25, .75]]; A'1 = ½·mean + ½·I = [[.875, .125], [.125, .875]]
    layer1 = torch.tensor([[[1.0, 0.0], [0.5, 0.5]], [[0.5, 0.5], [0.0, 1.0]]])[None]  # (1, 2, 2, 2)
    # layer 2, both heads [[.2, .8], [.6, .4]]: A'2 = [[.6, .4], [.3, .7]]
    layer2 = torch.tensor([[0.2, 0.8], [0.6, 0.4]]).expand(1, 2, 2, 2)  # (1, 2, 2, 2)
    # R = A'2 · A'1: row 0 = [.6·.875 + .4·.125, .6·.125 + .4·.875] = [.575, .425]
    #                row 1 = [.3·.875 + .7·.125, .3·.125 + .7·.875] = [.35, .65]
    expected = torch.tensor([[0.575, 0.425], [0.35, 0.65]])
    torch.testing.assert_close(rollout([layer1, layer2])[0], expected)
    no_pad = torch.zeros(1, 2, dtype=torch.bool)
    torch.testing.assert_close(rollout_scores([layer1, layer2], no_pad, "first")[0], expected[0])
    # mean pooling averages the rows: [(.575 + .35)/2, (.425 + .65)/2] = [.4625, .5375]
    torch.testing.assert_close(rollout_scores([layer1, layer2], no_pad, "mean")[0], torch.tensor([0.4625, 0.5375]))
    # raw attention reads the last layer only: row 0 of mean_heads(layer2) = [.2, .8]
    torch.testing.assert_close(attention_scores([layer1, layer2], no_pad, "first")[0], torch.tensor([0.2, 0.8]))


def test_rollout_renormalises_rows_and_pooling_skips_padding():
    # a row summing to ½ (as after attention dropout): ½·[.5, 0] + ½·[1, 0] = [.75, 0] → renormalised [1, 0]
    layer = torch.tensor([[[0.5, 0.0], [0.5, 0.5]]])[None]  # (1, 1, 2, 2)
    torch.testing.assert_close(rollout([layer])[0], torch.tensor([[1.0, 0.0], [0.25, 0.75]]))
    # left padding: position 0 is a pad; "first" reads row 1 (the <s>), and the pad column scores 0
    padded = torch.tensor([[[0.5, 0.5, 0.0], [0.0, 0.5, 0.5], [0.0, 0.25, 0.75]]])[None]  # (1, 1, 3, 3)
    pad = torch.tensor([[True, False, False]])
    # A' row 1 = ½·[0, .5, .5] + ½·[0, 1, 0] = [0, .75, .25]; mean of rows 1, 2: row 2 = [0, .125, .875]
    torch.testing.assert_close(rollout_scores([padded], pad, "first")[0], torch.tensor([0.0, 0.75, 0.25]))
    torch.testing.assert_close(rollout_scores([padded], pad, "mean")[0], torch.tensor([0.0, 0.4375, 0.5625]))


def test_erasing_the_top_ranked_tokens_deletes_exactly_them():
    tokens = torch.tensor([0, 10, 11, 12, 13, 14, 2])  # <s> five review tokens </s>
    candidates = torch.tensor([False, True, True, True, True, True, False])
    scores = torch.tensor([9.0, 0.1, 0.5, 0.3, 0.9, 0.2, 9.0])  # <s> and </s> score highest but are never erased
    assert erasure_count(5, 0.2) == 1  # ⌈0.2·5⌉
    assert erase(tokens, top_positions(scores, candidates, 1)).tolist() == [0, 10, 11, 12, 14, 2]
    assert erasure_count(5, 0.5) == 3  # ⌈2.5⌉
    assert top_positions(scores, candidates, 3).tolist() == [2, 3, 4]  # .9, .5, .3
    assert erase(tokens, top_positions(scores, candidates, 3)).tolist() == [0, 10, 14, 2]
    ties = torch.tensor([0.0, 0.5, 0.5, 0.5, 0.1, 0.1, 0.0])
    assert top_positions(ties, candidates, 2).tolist() == [1, 2]  # a tie goes to the earlier token
    # floating point: 0.2·35 = 7.000000000000001 and 0.2·200 = 40.00000000000001 must not round up
    assert [erasure_count(35, 0.2), erasure_count(200, 0.2), erasure_count(200, 0.01), erasure_count(3, 0.01)] == [
        7,
        40,
        2,
        1,
    ]
    with pytest.raises(ValueError, match="fraction"):
        erasure_count(5, 0.0)


def test_comprehensiveness_and_random_baseline():
    full = torch.tensor([[0.9, 0.1], [0.3, 0.7], [0.6, 0.4]])
    erased = torch.tensor([[0.4, 0.6], [0.2, 0.8], [0.5, 0.5]])
    labels = torch.tensor([0, 1, 1])
    got = comprehensiveness(full, erased, labels)
    # predicted [0, 1, 0]: drops .5, -.1, .1 → mean 1/6; accuracy 2/3 before, 1/3 after (argmax [1, 1, 0])
    assert got["probability_drop"] == pytest.approx(0.5 / 3)
    assert got["accuracy"] == pytest.approx(2 / 3) and got["accuracy_erased"] == pytest.approx(1 / 3)
    assert got["accuracy_drop"] == pytest.approx(1 / 3)
    candidates = torch.tensor([False, True, True, True, False])
    a, b = random_scores(candidates, 5), random_scores(candidates, 6)
    assert torch.equal(a, random_scores(candidates, 5)) and not torch.equal(a, b)
    assert a[0] == 0 and a[-1] == 0 and bool((a[1:4] > 0).all())


def test_rank_correlations_against_hand_values():
    # one swapped pair of four: Spearman 1 − 6·Σd²/(n(n²−1)) = 1 − 6·2/60 = 0.8; Kendall (5 − 1)/6
    assert spearman([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(0.8)
    assert kendall([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(4 / 6)
    assert spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    # ties: a = [1, 1, 2] has ranks [1.5, 1.5, 3]; τ-b = (2 − 0)/√(2·3)
    assert kendall([1, 1, 2], [1, 2, 3]) == pytest.approx(2 / 6**0.5)


def test_pieces_are_regrouped_into_words():
    pieces = ["un@@", "believ@@", "able", "film", "."]
    assert group_pieces(pieces, [0, 1, 2, 3, 4], sentencepiece=False) == [
        ("unbelievable", [0, 1, 2]),
        ("film", [3]),
        (".", [4]),
    ]
    # head_tail truncation dropped pieces 2–5: "un@@" must not join the piece after the cut
    assert [w for w, _ in group_pieces(["un@@", "believ@@", "film"], [0, 1, 6], False)] == ["unbeliev", "film"]
    assert group_pieces(["\u2581un", "believable", "\u2581film"], [0, 1, 2], sentencepiece=True) == [
        ("unbelievable", [0, 1]),
        ("film", [2]),
    ]


def test_html_escapes_the_review():
    review = '<script>alert("x")</script> a great film & more'
    e = Explanation(review, "pos<b>", 0.9, ["<script>", "great"], {"rollout": [0.5, -1.0]})
    page = render_page([e], ["rollout"])
    assert "<script>" not in page and "<b>" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; a great film &amp; more" in page
    assert re.search(r'title="0\.5"[^>]*rgba\(255, 140, 0, 0\.500\)">&lt;script&gt;</span>', page)
    assert re.search(r'title="-1"[^>]*rgba\(30, 144, 255, 1\.000\)">great</span>', page)


# ---------------------------------------------------------------- a tiny trained classifier, through the scripts

REVIEWS = ["A great, wonderful and superb film.<br />Brilliant!", "<script>x</script> Awful, boring film."]


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    """test_imdb's synthetic aclImdb, prepare-imdb.sh, and a two-layer classifier trained for 60 updates."""
    from test_imdb import PREPARE, TRAIN_FLAGS, make_aclimdb, run

    base = tmp_path_factory.mktemp("explain")
    make_aclimdb(base / "src")
    run("bash", PREPARE, "--from", base / "src", "--out", base / "prep", "--bpe-ops", "40", "--valid-size", "10")
    args = (*TRAIN_FLAGS, "--encoder-layers", "2", "--max-update", "60", "--save-dir", base / "ckpt")
    fairseq("fairseq-train", base / "prep" / "bin", *args)
    return base / "prep", base / "ckpt" / "checkpoint_last.pt"


def explain(*args, stdin: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, str(ROOT / "scripts" / "explain.py"), *map(str, args)]
    return subprocess.run(cmd, input=stdin, capture_output=True, text=True)


def test_classifier_returns_its_attention_without_changing_the_logits(classifier):
    from fairseq_vanilla.inference.hub import ReviewClassifier

    clf = ReviewClassifier.from_pretrained(str(classifier[1]), str(classifier[0]))
    tokens = clf.encode(REVIEWS[0])[None]  # (1, T)
    with torch.no_grad():
        fast = clf.model(tokens)  # the fused kernel
        logits, attentions = clf.model(tokens, return_all_attention=True)
    torch.testing.assert_close(logits, fast)
    assert [a.shape for a in attentions] == [(1, 4, tokens.size(1), tokens.size(1))] * 2  # 2 layers, 4 heads
    torch.testing.assert_close(rollout(attentions).sum(-1), torch.ones(1, tokens.size(1)))


def test_integrated_gradients_add_up_to_the_logit_difference(classifier):
    from fairseq_vanilla.explain.explainer import content_mask, token_scores

    pytest.importorskip("captum")
    from fairseq_vanilla.inference.hub import ReviewClassifier

    clf = ReviewClassifier.from_pretrained(str(classifier[1]), str(classifier[0]))
    d = clf.task.source_dictionary
    tokens = clf.encode(REVIEWS[0])[None]  # (1, T)
    target = torch.tensor([0])
    scores = token_scores(clf.model, tokens, "integrated-gradients", target, d, steps=64)  # (1, T)
    assert float(clf.model.encoder.embed_tokens.weight[d.pad()].abs().max()) == 0.0  # the baseline embedding
    content = content_mask(tokens, d)[..., None]  # (1, T, 1)
    # f(baseline): the review's padding mask, its token embeddings zero (the pad's), <s> and </s> kept
    hook = clf.model.encoder.embed_tokens.register_forward_hook(lambda m, i, out: out.masked_fill(content, 0.0))
    with torch.no_grad():
        at_baseline = clf.model(tokens)[0, 0]
    hook.remove()
    with torch.no_grad():
        difference = clf.model(tokens)[0, 0] - at_baseline
    # completeness (Sundararajan et al. 2017): the attributions sum to f(x) − f(baseline)
    assert float(scores.sum()) == pytest.approx(float(difference), rel=0.02, abs=1e-3)


def test_explain_script_scores_every_word_and_writes_the_page(classifier, tmp_path):
    prep, ckpt = classifier
    page = tmp_path / "out.html"
    proc = explain("--path", ckpt, "--data", prep, "--html", page, stdin="\n".join(REVIEWS) + "\n")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    methods = ["attention", "rollout", "gradient", "integrated-gradients"]  # --html without --method: all
    assert len(lines) == 2 * (1 + len(methods))
    for n, review in enumerate(REVIEWS):
        block = lines[n * 5 : n * 5 + 5]
        number, label, prob = block[0].split("\t")
        assert number == f"review {n + 1}" and label in ("pos", "neg") and 0.5 <= float(prob) <= 1
        assert n == 1 or label == "pos"  # GOOD words only
        expected = sorted(re.findall(r"\w+|[^\w\s]", review.replace("<br />", " ")))  # Moses' tokens
        for method, line in zip(methods, block[1:]):
            name, *pairs = line.split("\t")
            words = [p.rsplit(" ", 1)[0] for p in pairs]
            scores = [float(p.rsplit(" ", 1)[1]) for p in pairs]
            assert name == method and sorted(words) == expected
            assert scores == sorted(scores, reverse=True)  # ranked, the most important first
    html = page.read_text()
    assert "<script>" not in html and "&lt;script&gt;x&lt;/script&gt; Awful, boring film." in html
    n_words = sum(len(re.findall(r"\w+|[^\w\s]", r.replace("<br />", " "))) for r in REVIEWS)
    assert html.count('<span class="w"') == len(methods) * n_words  # every word, on every method's line
    assert '<meta name="generator" content="fairseq-vanilla explain">' in html  # what marks the page as its own
    one = explain("--path", ckpt, "--data", prep, "--method", "rollout", "--html", page, stdin="A wonderful film.\n")
    assert [line.split("\t")[0] for line in one.stdout.splitlines()] == ["review 1", "rollout"]
    assert page.read_text().count('<span class="w"') == 4  # its own earlier page replaced: A wonderful film .


def test_explain_script_errors_name_the_flag(classifier, tmp_path):
    prep, ckpt = classifier
    cases = [
        (("--path", tmp_path / "none.pt", "--data", prep), "ok\n", "error: --path: "),
        (("--path", ckpt, "--data", tmp_path), "ok\n", "error: --data: "),
        (("--path", ckpt, "--data", prep, "--html", tmp_path / "no" / "x.html"), "ok\n", "error: --html: "),
        (("--path", ckpt, "--data", prep), "good\n \n", "error: stdin: line 2: empty review"),
    ]
    for args, stdin, message in cases:
        proc = explain(*args, stdin=stdin)
        assert proc.returncode == 2 and proc.stderr.startswith(message) and len(proc.stderr.splitlines()) == 1
        assert proc.stdout == ""


def test_erasure_bench_writes_json_table_and_plot(classifier, tmp_path):
    prep, ckpt = classifier
    out = tmp_path / "erasure"
    cmd = [sys.executable, str(ROOT / "bench" / "erasure.py"), "--data", prep, "--path", ckpt, "--path", ckpt]
    proc = subprocess.run([*map(str, cmd), "--limit", "6", "--out", str(out)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    record = json.loads((out / "erasure.json").read_text())
    assert record["reviews"] == 6 and record["fractions"] == [0.01, 0.05, 0.1, 0.2]
    summary = record["summary"]["erasure"]
    assert set(summary) == {"attention", "rollout", "gradient", "integrated-gradients", "random"}
    assert summary["rollout"]["0.2"]["probability_drop"]["std"] == 0.0  # the same checkpoint twice
    assert "| rollout |" in (out / "erasure.md").read_text()
    paired = record["summary"]["paired"]["gradient~attention"]["0.2"]  # B − A over the same classifiers
    means = {m: summary[m]["0.2"]["probability_drop"]["mean"] for m in ("gradient", "attention")}
    assert paired["delta"] == pytest.approx(means["gradient"] - means["attention"]) and paired["method"] == "paired"
    assert "| gradient − attention |" in (out / "erasure.md").read_text()
    assert (out / "erasure.png").read_bytes()[:4] == b"\x89PNG"
    bad = subprocess.run(
        [*map(str, cmd[:4]), "--path", str(tmp_path / "none.pt"), "--out", str(out)], capture_output=True, text=True
    )
    assert bad.returncode == 1 and bad.stderr == f"error: --path: {tmp_path / 'none.pt'}: no such checkpoint\n"
    again = subprocess.run([*map(str, cmd), "--limit", "2", "--out", str(out)], capture_output=True, text=True)
    assert again.returncode == 0, again.stderr  # its own earlier output is rewritten
    assert json.loads((out / "erasure.json").read_text())["reviews"] == 2
    foreign = tmp_path / "notes"
    foreign.mkdir()
    (foreign / "erasure.md").write_text("my notes\n")
    refused = subprocess.run([*map(str, cmd), "--limit", "2", "--out", str(foreign)], capture_output=True, text=True)
    assert refused.returncode == 1 and refused.stderr.startswith(f"error: --out {foreign / 'erasure.md'}: exists and")
    assert sorted(p.name for p in foreign.iterdir()) == ["erasure.md"]
    assert (foreign / "erasure.md").read_text() == "my notes\n"


def _leaves(tree, path=""):
    """A nested dict's numbers by path ("rollout/0.2/probability_drop/mean"), in sorted order."""
    if isinstance(tree, dict):
        return {k: v for key in sorted(tree) for k, v in _leaves(tree[key], f"{path}/{key}").items()}
    return {path: tree}


def test_committed_erasure_tables_rebuild_from_their_record():
    """examples/attention/results: the summary recomputes from the classifiers' figures, erasure.md from the summary."""
    record = json.loads((ROOT / "examples" / "attention" / "results" / "erasure.json").read_text())
    recomputed, committed = _leaves(summarise(record["per_checkpoint"])), _leaves(record["summary"])
    assert list(recomputed) == list(committed) and len(committed) > 100
    numbers = [k for k, v in committed.items() if isinstance(v, float)]
    assert [recomputed[k] for k in numbers] == pytest.approx([committed[k] for k in numbers], rel=1e-9, abs=1e-12)
    assert {k: v for k, v in recomputed.items() if k not in numbers} == {
        k: v for k, v in committed.items() if k not in numbers
    }
    table = report(record["summary"], record["reviews"], len(record["per_checkpoint"]))
    assert table == (ROOT / "examples" / "attention" / "results" / "erasure.md").read_text()
