"""Cluster mode on a real local Ray cluster: `ray start --head` in a private temporary folder with one CPU,
then a 4-trial sweep through `--address 127.0.0.1:PORT` (the CLI) and one table2 job fanned out through
RAY_ADDRESS. The head runs in its own process group (`ray start --block`), which the fixture kills at
the end, so no Ray process of this test outlives it and no other Ray on the machine is touched."""
from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

pytest.importorskip("ray")


PORT_FLAGS = ("--port", "--node-manager-port", "--object-manager-port",
              "--dashboard-agent-listen-port", "--dashboard-agent-grpc-port", "--runtime-env-agent-port",
              "--metrics-export-port")
START_TIMEOUT_S = 180


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _pids_using(marker: str) -> list[int]:
    """Processes whose command line names `marker` (our private temporary folder)."""
    pids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if marker.encode() in (d / "cmdline").read_bytes():
                    pids.append(int(d.name))
            except OSError:
                pass
    return pids


@pytest.fixture(scope="module")
def ray_head():
    """(address, temporary folder, environment to join it) of a one-CPU Ray head started for this module;
    stopped (its process group) afterwards."""
    ray_cli = Path(sys.executable).with_name("ray")
    if not ray_cli.exists():
        pytest.skip(f"no `ray` command beside {sys.executable}: install the [sweep] extra")
    tmp = tempfile.mkdtemp(prefix="snray")   # short: Ray's socket paths must fit in 107 bytes
    ports = _free_ports(len(PORT_FLAGS))
    cmd = [str(ray_cli), "start", "--head", "--block", "--num-cpus=1", f"--temp-dir={tmp}",
           "--node-ip-address=127.0.0.1", "--include-dashboard=false", "--disable-usage-stats",
           *[f"{flag}={port}" for flag, port in zip(PORT_FLAGS, ports)]]
    log = open(Path(tmp) / "head.log", "w+")
    # Ray's token authentication with a token of our own, given to the head and to the commands that join
    # it (Ray reads it once per process, so they run as processes of their own); the shared
    # ~/.ray/auth_token is neither read nor written
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env |= {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    address, head = f"127.0.0.1:{ports[0]}", None
    try:
        head = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=env)
        t0 = time.time()
        while "Ray runtime started" not in Path(log.name).read_text():
            if head.poll() is not None:
                pytest.skip(f"`ray start --head` exited with status {head.returncode}: "
                            f"{Path(log.name).read_text()[-500:]}")
            if time.time() - t0 > START_TIMEOUT_S:
                pytest.skip(f"`ray start --head` did not start within {START_TIMEOUT_S} s (machine too busy?)")
            time.sleep(0.5)
        yield address, Path(tmp), env
    finally:
        for sig, wait in ((signal.SIGTERM, 5), (signal.SIGKILL, 10)) if head else ():
            try:
                os.killpg(head.pid, sig)   # the head and every process it started (same group)
            except ProcessLookupError:
                break
            try:
                head.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                continue
        t0 = time.time()
        while (left := _pids_using(tmp)) and time.time() - t0 < 10:
            time.sleep(0.5)   # killed ones vanish from /proc; anything else left the group but names our folder
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        log.close()
        shutil.rmtree(tmp, ignore_errors=True)
        assert not left, f"Ray processes outlived the head's process group: {left}"


def _run(cmd: list[str], env: dict, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
def test_sweep_runs_on_cluster_through_address(tmp_path, ray_head):
    address, head_dir, env = ray_head
    out = tmp_path / "sweep"
    p = _run([sys.executable, "-m", "sparsenest.cli", "sweep", "--address", address, "-o", str(out),
              "--model", "lenet5-small", "--trials", "4", "--levels", "0.9,0.5;0.8,0.4", "--epochs-dense", "1",
              "--epochs-retrain", "1,2", "--trace", "constant", "--duration", "600", "--train-limit", "256",
              "--test-limit", "64", "--search", "random"], env)
    assert p.returncode == 0, p.stderr[-2000:]
    front = json.loads((out / "front.json").read_text())
    assert front["front"] and not front["errors"]
    assert len(list((out / "trials").glob("*/starts.log"))) == 4
    assert json.loads((out / "sweep.json").read_text())["settings"]["address"] == address
    # the trials ran on the cluster's workers: the head's session folder holds their logs
    assert list(head_dir.glob("session_*/logs/worker-*")), "no worker of the cluster ran anything"


FANOUT_CHECK = """
import json, os, sys
from pathlib import Path
from sparsenest.experiments import fanout, tasks
from sparsenest.experiments.bench.table2 import run_job

def where():
    import ray
    return os.getpid(), ray.get_runtime_context().gcs_address

out = Path(sys.argv[1])
(pid, gcs), = fanout.run_jobs(where, [()], use_ray=fanout.wanted())
[r] = fanout.run_jobs(run_job, [(tasks.get("lenet5"), "sparse", out, True, False, "auto", False, 1)],
                      use_ray=fanout.wanted())
print(json.dumps({"wanted": fanout.wanted(), "pid": pid, "my_pid": os.getpid(), "gcs": gcs, "task": r["task"]}))
"""


@pytest.mark.slow
def test_table2_job_fans_out_through_ray_address(tmp_path, ray_head):
    address, _, env = ray_head
    p = _run([sys.executable, "-c", FANOUT_CHECK, str(tmp_path.resolve())], env | {"RAY_ADDRESS": address})
    assert p.returncode == 0, p.stderr[-2000:]
    got = json.loads(p.stdout.strip().splitlines()[-1])
    assert got["wanted"] and got["task"] == "lenet5"
    # Ray names the head by this machine's address rather than 127.0.0.1: the port identifies our cluster
    assert got["pid"] != got["my_pid"] and got["gcs"].rsplit(":", 1)[1] == address.rsplit(":", 1)[1], \
        "the job should run on a worker of the cluster"
    saved = json.loads((tmp_path / "lenet5" / "sparse" / "result.json").read_text())
    assert saved["task"] == "lenet5" and saved["host_layers"]
