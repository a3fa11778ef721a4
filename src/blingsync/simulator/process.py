"""`blingsync simulator` in a process of its own, as a user runs it: for tests and scripts that
need a Bling on a real socket (the screenshots, the browser, kill -9, CLI and serve tests)."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx


@contextlib.contextmanager
def simulator_process(*args: str, start_timeout: float = 30.0) -> Iterator[str]:
    """Start `blingsync simulator ARGS` on a free port; its base URL once it answers. Stopped
    at the end. RuntimeError, with what the process said, when it does not come up."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    proc = subprocess.Popen(  # noqa: S603 - our own CLI under this interpreter
        [sys.executable, "-c", "from blingsync.cli import main; main()", "simulator", "--port", str(port),
         *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + start_timeout
        while True:
            try:
                if httpx.get(f"{base}/_sim/accounts", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                said = proc.stderr.read() if proc.stderr is not None and proc.poll() is not None else b""
                raise RuntimeError(f"the simulator did not start: {said!r}")
            time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        proc.wait(10)
