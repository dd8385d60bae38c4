"""Run a command and measure its peak resident memory (shared by the bench scripts)."""

import subprocess
import threading
import time


def run_measured(cmd, env, poll_seconds: float = 0.05):
    """Run cmd; return (stdout, stderr, peak resident set size in MiB from /proc's VmHWM, polled)."""
    proc = subprocess.Popen([str(c) for c in cmd], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    peak = [0]

    def poll():
        while proc.poll() is None:
            try:
                for line in open(f"/proc/{proc.pid}/status"):
                    if line.startswith("VmHWM:"):
                        peak[0] = max(peak[0], int(line.split()[1]) // 1024)
            except OSError:
                pass
            time.sleep(poll_seconds)

    t = threading.Thread(target=poll, daemon=True)
    t.start()
    out, err = proc.communicate()
    t.join()
    if proc.returncode != 0:
        raise SystemExit(f"error: {' '.join(map(str, cmd[:3]))} failed:\n{err[-3000:]}")
    return out, err, peak[0]
