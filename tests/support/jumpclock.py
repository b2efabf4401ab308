"""Run an `outpost` command whose wall clock (``time.time``, ``time.time_ns``) is set back
``JUMP_BY`` seconds once the file ``JUMP_FILE`` exists, as after NTP corrects the system clock
backwards; the monotonic clock is untouched, as the system's is.

    JUMP_FILE=PATH JUMP_BY=3600 python tests/support/jumpclock.py COMMAND ARGS...
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

_flag, _by = Path(os.environ["JUMP_FILE"]), float(os.environ["JUMP_BY"])
_t, _tn, _mono = time.time, time.time_ns, time.monotonic
_seen = [False, -1.0]  # jumped; when the file was last looked for (monotonic)


def _jumped() -> bool:
    if not _seen[0] and _mono() - _seen[1] > 0.05:  # not a stat per call
        _seen[1] = _mono()
        _seen[0] = _flag.exists()
    return bool(_seen[0])


time.time = lambda: _t() - (_by if _jumped() else 0.0)
time.time_ns = lambda: _tn() - (int(_by * 1e9) if _jumped() else 0)

from desktop.headless import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
