"""scripts/prepare-wmt16-en-de.sh: archives in the WMT layout served from a local HTTP server (download path),
the same archives from --from, and bad input."""

import functools
import http.server
import io
import subprocess
import tarfile
import threading
from pathlib import Path

import pytest

from conftest import ROOT
from fairseq_vanilla.text.synthetic import generate

SCRIPT = ROOT / "scripts" / "prepare-wmt16-en-de.sh"


def sgm(lines, lang):
    body = "".join(f'<seg id="{i + 1}">{line}</seg>\n' for i, line in enumerate(lines))
    return f'<srcset setid="x" srclang="any"><doc docid="d" genre="news" origlang="{lang}">\n{body}</doc></srcset>\n'


def add(tar: tarfile.TarFile, name: str, text: str):
    data = text.encode("utf-8")
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def make_archives(folder: Path, sizes=(300, 200, 150), n_eval=(23, 17, 11)):
    """Tiny archives with the official names and inner paths, filled from the synthetic grammar."""
    folder.mkdir(parents=True, exist_ok=True)
    pairs = generate(sum(sizes) + sum(n_eval), seed=5)
    corpora = [
        ("training-parallel-europarl-v7.tgz", "training/europarl-v7.de-en"),
        ("training-parallel-commoncrawl.tgz", "commoncrawl.de-en"),
        ("training-parallel-nc-v11.tgz", "training-parallel-nc-v11/news-commentary-v11.de-en"),
    ]
    start = 0
    for (archive, stem), n in zip(corpora, sizes):
        chunk = pairs[start : start + n]
        start += n
        with tarfile.open(folder / archive, "w:gz") as tar:
            add(tar, stem + ".en", "".join(p[0] + "\n" for p in chunk))
            add(tar, stem + ".de", "".join(p[1] + "\n" for p in chunk))
    evals = {}
    for (year, naming), n in zip(((2015, "ende"), (2014, "deen"), (2016, "ende")), n_eval):
        evals[year] = (pairs[start : start + n], naming)
        start += n
    for archive, folder_name, years in (("dev.tgz", "dev", (2015, 2014)), ("test.tgz", "test", (2016,))):
        with tarfile.open(folder / archive, "w:gz") as tar:
            for year in years:
                chunk, naming = evals[year]
                add(tar, f"{folder_name}/newstest{year}-{naming}-src.en.sgm", sgm([p[0] for p in chunk], "en"))
                add(tar, f"{folder_name}/newstest{year}-{naming}-ref.de.sgm", sgm([p[1] for p in chunk], "de"))
    return folder


def run(*args, env=None):
    import os

    return subprocess.run(
        ["bash", str(SCRIPT), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=900,
        env=dict(os.environ, **(env or {})),
    )


@pytest.fixture
def server(tmp_path):
    folder = make_archives(tmp_path / "served")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def check_layout(out: Path):
    assert (out / "bin" / "splits.tsv").read_text().splitlines() == [
        "train\teuroparl-v7.de-en+commoncrawl.de-en+news-commentary-v11.de-en",
        "valid\tnewstest2015",
        "test\tnewstest2014",
        "test1\tnewstest2016",
    ]
    for split, n in (("valid", 23), ("test", 17), ("test1", 11)):
        assert len((out / "raw" / f"{split}.de").read_text().splitlines()) == n
        assert (out / "bin" / f"{split}.en-de.en.bin").exists()
    assert len((out / "raw" / "train.en").read_text().splitlines()) == 650
    assert 600 <= len((out / "clean" / "train.en").read_text().splitlines()) <= 650
    assert not list(out.glob("*.tmp"))


def test_download_path_from_local_server(tmp_path, server):
    out = tmp_path / "out"
    proc = run("--out", out, "--bpe-ops", "300", env={"WMT16_MIRROR": server})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("download http://127.0.0.1") == 5
    check_layout(out)


def test_from_archives_offline(tmp_path):
    archives = make_archives(tmp_path / "archives")
    out = tmp_path / "out"
    proc = run("--from", archives, "--out", out, "--bpe-ops", "300", env={"WMT16_MIRROR": "http://127.0.0.1:9"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "download" not in proc.stdout
    check_layout(out)


def test_mismatched_plain_files_are_named(tmp_path):
    src = tmp_path / "plain"
    src.mkdir()
    pairs = generate(10, seed=1)
    for stem in ("europarl-v7.de-en", "commoncrawl.de-en", "news-commentary-v11.de-en"):
        (src / f"{stem}.en").write_text("".join(p[0] + "\n" for p in pairs))
        (src / f"{stem}.de").write_text("".join(p[1] + "\n" for p in pairs))
    (src / "commoncrawl.de-en.de").write_text("".join(p[1] + "\n" for p in pairs[:9]))
    out = tmp_path / "out"
    proc = run("--from", src, "--out", out, env={"WMT16_MIRROR": "http://127.0.0.1:9"})
    assert proc.returncode != 0
    assert "commoncrawl.de-en.en has 10 lines but" in proc.stderr and "has 9" in proc.stderr, proc.stderr
    assert not (out / "raw").exists()
