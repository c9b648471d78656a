"""Named points in zoo's saves and training loop, for crash tests to stop a real process at.

``ZOO_PAUSE_AT=NAME[#N]`` makes the process pause the N-th time (default 1st) it reaches the point
``NAME`` (``*`` matches any text). It writes the point's name to ``ZOO_PAUSE_FILE`` and waits until
that file is deleted or the process is killed. ``ZOO_TRACE_POINTS=FILE`` appends every point
reached to FILE. Both cost one dictionary look-up per point when unset.
"""

from __future__ import annotations

import fnmatch
import os
import time

_seen: dict[str, int] = {}


def reached(point: str) -> None:
    trace = os.environ.get("ZOO_TRACE_POINTS")
    if trace:
        with open(trace, "a") as fh:
            fh.write(point + "\n")
    wanted = os.environ.get("ZOO_PAUSE_AT")
    if not wanted:
        return
    pattern, _, nth = wanted.partition("#")
    if not fnmatch.fnmatchcase(point, pattern):
        return
    _seen[pattern] = _seen.get(pattern, 0) + 1
    if _seen[pattern] != int(nth or 1):
        return
    flag = os.environ.get("ZOO_PAUSE_FILE", "zoo-paused")
    with open(flag, "w") as fh:
        fh.write(point)
    while os.path.exists(flag):  # the test kills us here, or deletes the file to let us go on
        time.sleep(0.02)
