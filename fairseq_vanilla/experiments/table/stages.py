"""Stock fairseq binaries as resumable stages of a job: each stage runs once, logs to a file in the job's folder and
leaves a marker when it succeeds, so a killed job continues where it stopped; and the figures read back from the logs.
"""

import ctypes
import datetime
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from typing import Dict, List

from ...text.io import read_lines

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
USER_DIR = os.path.join(ROOT, "fairseq_vanilla")


def binary(name: str) -> str:
    """A fairseq console script: the running interpreter's own (a venv's) first, else PATH's."""
    here = os.path.join(os.path.dirname(sys.executable), name)
    return here if os.path.exists(here) else name


def log(message: str) -> None:
    """A progress line with the time."""
    print(f"[{datetime.datetime.now():%H:%M:%S}] {message}", flush=True)


def _exit_on_sigterm(signum, frame):
    raise SystemExit(128 + signum)


PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def die_with_parent(signum: int = signal.SIGTERM):
    """A ``preexec_fn`` under which the child gets ``signum`` when the thread that started it ends, a SIGKILL of the
    parent included (Linux's ``prctl(PR_SET_PDEATHSIG)``); None where there is no prctl."""
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up here: the child only calls it
    except (OSError, AttributeError):
        return None
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    parent = os.getpid()

    def arm_parent_death_signal():
        prctl(PR_SET_PDEATHSIG, signum, 0, 0, 0)
        if os.getppid() != parent:  # the parent ended before prctl: no signal would come
            os.kill(os.getpid(), signum)

    return arm_parent_death_signal


def end_group_on_signal(grace: float = 30.0) -> None:
    """SIGTERM or SIGHUP to this process, when it leads a process group (the driver starts the jobs process so, and
    it gets SIGTERM when the driver dies): the whole group is sent SIGTERM (a launcher's workers, their trainings),
    its children are reaped as they stop their own (up to ``grace`` seconds), then this process exits. Inside
    :func:`run` its own handler stops and reaps the child instead."""
    if os.getpgrp() != os.getpid():
        return

    def stop(signum, frame):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # its own copy of the group's signal
        os.killpg(os.getpgrp(), signal.SIGTERM)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            try:
                if os.waitpid(-1, os.WNOHANG)[0] == 0:
                    time.sleep(0.1)
            except ChildProcessError:  # none left
                break
        raise SystemExit(128 + signum)

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, stop)


def run(cmd: List[str], logfile: str, threads: int) -> None:
    """Run ``cmd`` with ``threads`` OpenMP threads, appending its output to ``logfile``; a failure raises with the
    log's tail.

    SIGTERM to this process (``pkill``, a Slurm time limit) becomes ``SystemExit`` while ``cmd`` runs: subprocess.run
    then kills and reaps the child (Python's default SIGTERM would leave it running, orphaned) and the caller's
    ``finally`` blocks run. The child gets SIGTERM if this process dies outright (SIGKILL): :func:`die_with_parent`."""
    env = dict(
        os.environ, OMP_NUM_THREADS=str(threads), PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")
    )
    main_thread = threading.current_thread() is threading.main_thread()  # only it may set a handler
    previous = signal.signal(signal.SIGTERM, _exit_on_sigterm) if main_thread else None
    try:
        with open(logfile, "a", encoding="utf-8") as f:
            f.write("$ " + shlex.join(cmd) + "\n")
            f.flush()
            proc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=env, preexec_fn=die_with_parent())
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)
    if proc.returncode != 0:
        with open(logfile, encoding="utf-8", errors="replace") as f:
            tail = f.readlines()[-15:]
        raise RuntimeError(f"{cmd[0]} failed (exit {proc.returncode}); log {logfile}:\n{''.join(tail)}")


def run_forwarding_sigterm(cmd: List[str], env: Dict[str, str]) -> int:
    """Run ``cmd`` in a process group of its own and return its exit status; SIGTERM, SIGHUP or SIGINT to this process
    is passed on as SIGTERM to the whole group (the Hydra jobs process, a launcher's workers, their trainings), and
    waited for, so that every stage can stop what it runs (:func:`run` stops and reaps a training) and none is
    orphaned. If this process dies outright (SIGKILL), ``cmd`` gets SIGTERM (:func:`die_with_parent`) and passes it on
    to its group (:func:`end_group_on_signal`)."""
    proc = subprocess.Popen(cmd, env=env, start_new_session=True, preexec_fn=die_with_parent())

    def forward(signum, frame):
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:  # the group has ended already
            pass

    main_thread = threading.current_thread() is threading.main_thread()
    signals = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)
    previous = {sig: signal.signal(sig, forward) for sig in signals} if main_thread else {}
    try:
        return proc.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def versions() -> Dict[str, str]:
    """The versions a result depends on, the project's commit (FAIRSEQ_VANILLA_COMMIT names it where the tree is a
    copy without git history, e.g. on a GPU machine) and the device it ran on."""
    import fairseq
    import sacrebleu
    import torch

    commit = os.environ.get("FAIRSEQ_VANILLA_COMMIT", "")
    if not commit:
        try:
            git = ["git", "-C", ROOT, "rev-parse", "--short", "HEAD"]
            commit = subprocess.run(git, capture_output=True, text=True).stdout.strip()
        except OSError:
            pass
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"cpu ({os.cpu_count()} cores)"
    return {
        "torch": torch.__version__,
        "fairseq": fairseq.__version__,
        "sacrebleu": sacrebleu.__version__,
        "fairseq_vanilla_commit": commit,
        "python": sys.version.split()[0],
        "device": device,
    }


def train(work: str, train_cmd: List[str], threads: int, label: str) -> float:
    """Stage 1: fairseq-train (which resumes from its checkpoint_last.pt); returns the seconds spent training, every
    sitting of the log counted (:func:`sitting_seconds`)."""
    done, logfile = os.path.join(work, "train.done"), os.path.join(work, "train.log")
    if not os.path.exists(done):
        log(f"{label}: train → {work}/train.log")
        run(train_cmd, logfile, threads)
        open(done, "w").close()
    return sum(sitting_seconds(logfile))


FAIRSEQ_TIME = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) \| ")


def sitting_seconds(logfile: str) -> List[float]:
    """Each sitting's training seconds, read from the log :func:`run` appends to: a sitting starts at a ``$ command``
    line and lasts from its first time-stamped fairseq line to its last. A sitting killed outright (SIGKILL at a
    session's end: nothing of it can write a record) still counts up to its last line; a stopped process
    (SIGSTOP) counts while it stays inside a sitting, but not after its last line."""
    spans: List[List[datetime.datetime]] = []
    for line in read_lines(logfile) if os.path.exists(logfile) else []:
        if line.startswith("$ "):
            spans.append([])
        elif spans and (m := FAIRSEQ_TIME.match(line)):
            spans[-1].append(datetime.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S"))
    return [(t[-1] - t[0]).total_seconds() if t else 0.0 for t in spans]


def validate(work: str, cmd: List[str], threads: int, label: str) -> str:
    """Stage 2: fairseq-validate once; returns its log."""
    valid_log = os.path.join(work, "validate.log")
    if not os.path.exists(valid_log + ".done"):
        log(f"{label}: validate")
        open(valid_log, "w").close()
        run(cmd, valid_log, threads)
        os.rename(valid_log, valid_log + ".done")
    return valid_log + ".done"


def read_log(path: str) -> str:
    """A fairseq log's whole text (undecodable bytes replaced: a log is read for figures, not kept)."""
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read()


def last_float(path: str, key: str) -> float:
    """The last figure after ``key`` in a fairseq log (``key 4.2`` or ``key=4.2``)."""
    found = re.findall(re.escape(key) + r"[ =|]*([0-9.]+)", read_log(path))
    if not found:
        raise RuntimeError(f"{path}: no '{key}' figure found")
    return float(found[-1].rstrip("."))


def tokenised_bleu(bleu_txt: str, lower: bool) -> float:
    """generate.sh's fairseq-score BLEU on Moses-tokenised text (the lower-cased line for lower-cased data)."""
    want = "tokenised, lower-cased:" if lower else "fairseq-score, tokenised:"
    for line in read_lines(bleu_txt):
        if want in line:
            return float(re.search(r"BLEU4 = ([0-9.]+)", line).group(1).rstrip("."))
    raise RuntimeError(f"{bleu_txt}: no '{want}' line")


def last_int(path: str, key: str) -> int:
    """The last integer after ``key`` in a fairseq log."""
    return int(last_float(path, key))


def logged_parameter_count(train_log: str) -> int:
    """The model's parameter count, as fairseq-train logged it."""
    found = re.findall(r"num\. shared model params: ([\d,]+)", read_log(train_log))
    if not found:
        raise RuntimeError(f"{train_log}: fairseq-train did not log its parameter count")
    return int(found[-1].replace(",", ""))


def valid_curve(train_log: str, metric: str = "ppl") -> List[List[float]]:
    """[updates, dev ``metric``] (perplexity; accuracy for a classifier) at every validation fairseq-train logged (a
    resumed training's repeat replaced)."""
    found = {}
    for line in read_log(train_log).splitlines():
        if "| valid on '" in line:
            value, updates = re.search(rf"\| {metric} ([0-9.]+)", line), re.search(r"\| num_updates (\d+)", line)
            if value and updates:
                found[int(updates.group(1))] = float(value.group(1))
    return [[u, found[u]] for u in sorted(found)]
