"""What the benchmarks share: the machine line and a hub started as a real process."""

from __future__ import annotations

import os
import platform
import signal
import subprocess
import sys
from pathlib import Path

__all__ = ["ROOT", "cpu_model", "start_hub", "stop_hub"]

ROOT = Path(__file__).resolve().parent.parent


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo (or what platform knows)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def start_hub(db: str | Path, *args: str, root: Path = ROOT) -> tuple[subprocess.Popen[str], str]:
    """Start ``outpost-hub serve`` on a free loopback port (auth none); return it and its URL.

    ``args`` are more ``serve`` options (``--rate``, ``--burst``...); ``root``: the checkout
    whose hub runs (another one to compare with).
    """
    proc = subprocess.Popen(
        [sys.executable, "-m", "hubserver.cli", "serve", "--db", str(db), "--port", "0",
         "--auth", "none", "--log-level", "WARNING", *args],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(root)},
        cwd=root)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("outpost-hub ready: "):
        proc.kill()
        raise SystemExit(f"hub did not start: {line!r}")
    return proc, line.split()[2]


def stop_hub(proc: subprocess.Popen[str]) -> None:
    """Stop a hub like an operator would (SIGTERM: it finishes in-flight publishes)."""
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)
