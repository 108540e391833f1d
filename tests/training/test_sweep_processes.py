"""A sweep's worker processes die with it: kill -9 of the coordinator, and SIGTERM, which ends it as Ctrl-C does."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def _children(pid: int) -> set[int]:
    out = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] != "Z":
                out.add(int(entry))
    return out


def _alive(pids: set[int]) -> set[int]:
    alive = set()
    for p in pids:
        try:
            with open(f"/proc/{p}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] != "Z":
                    alive.add(p)
        except OSError:
            pass
    return alive


def _start(tmp_path) -> tuple[subprocess.Popen, set[int]]:
    """A real sweep of long runs on two worker processes, once its workers are busy."""
    cmd = [sys.executable, "-m", "nalu_np", "sweep", "simple-add:NAU", "--seeds", "4", "--steps", "5000000",
           "--engine", "python", "--workers", "2", "--quiet", "--out", str(tmp_path / "runs")]
    env = {k: v for k, v in os.environ.items() if k != "NALU_NP_BACKEND"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=tmp_path,
                            start_new_session=True)
    deadline = time.monotonic() + 60
    workers: set[int] = set()
    while time.monotonic() < deadline and len(workers) < 2:
        time.sleep(0.2)
        workers = _children(proc.pid)
        assert proc.poll() is None, proc.communicate()
    assert len(workers) >= 2, "the sweep did not start its workers"
    time.sleep(1.0)  # the workers are training now
    return proc, workers


def _wait_gone(workers: set[int], seconds: float = 10.0) -> set[int]:
    deadline = time.monotonic() + seconds
    while _alive(workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    return _alive(workers)


def test_kill_9_of_the_coordinator_leaves_no_worker(tmp_path):
    proc, workers = _start(tmp_path)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    survivors = _wait_gone(workers)
    for p in survivors:  # clean up before failing
        os.kill(p, signal.SIGKILL)
    assert survivors == set()


def test_sigterm_ends_the_sweep_like_ctrl_c(tmp_path):
    proc, workers = _start(tmp_path)
    t0 = time.monotonic()
    os.kill(proc.pid, signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert time.monotonic() - t0 < 20  # it does not wait for the 5,000,000-step runs in flight
    assert proc.returncode == 130 and b"interrupted" in err, err
    assert _wait_gone(workers) == set()
    assert not list((tmp_path / "runs").glob("*/seed-*"))  # the runs in flight are not written


def test_a_sweep_after_parallel_numba_kernels_in_the_same_process(tmp_path):
    """A forked worker of a process that ran parallel Numba kernels dies at its first one; spawned ones do not."""
    pytest.importorskip("numba")
    import numpy as np

    import nalu_np as nn
    from nalu_np import sweep as sw

    layer = nn.NALU(2, 1, rng=0)
    layer.forward(np.ones((1 << 16, 2), np.float32), backend="numba")  # starts Numba's thread pool here
    rows = sw.run_sweep(sw.Config("simple-add", "NAU", {"steps": 20, "eval_every": 10}), [0, 1], str(tmp_path),
                        max_workers=2, backend="numba", engine="python", progress=False)
    assert rows[0].seeds == 2
