"""Settings for every pytest run of the repository (library tests and nbval alike)."""

import atexit
import os
import shutil
import tempfile

# Test runs (nbval re-executes every chapter) record their measurements in a folder of
# their own, not in the checkout's results/, which holds what `make execute` recorded.
# The folder is removed when the run ends, unless the caller chose it.
if "MOBILEOPT_RESULTS_DIR" not in os.environ:
    _results_dir = tempfile.mkdtemp(prefix="mobileopt-results-")
    os.environ["MOBILEOPT_RESULTS_DIR"] = _results_dir
    atexit.register(shutil.rmtree, _results_dir, ignore_errors=True)
