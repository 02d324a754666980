"""Silencing what native libraries print straight to file descriptor 2.

TensorFlow and LiteRT write start-up notices ("Created TensorFlow Lite XNNPACK delegate
for CPU", oneDNN and CUDA probes) from C++ directly to the process's stderr, below
Python's ``sys.stderr``. In a notebook each becomes a stderr output. The context manager
here sends them to a temporary file and replays them only when the block fails, so that
nothing needed to diagnose an error is lost.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile


@contextlib.contextmanager
def native_stderr_captured():
    """Captures fd 2 for the duration of the block; replays it if the block raises."""
    try:
        sys.stderr.flush()
    except (AttributeError, ValueError):
        pass
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            captured.seek(0)
            sys.stderr.write(captured.read().decode("utf-8", errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)
