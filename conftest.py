"""Settings for every pytest run of the repository (library tests and nbval alike)."""

import os
import tempfile

# Test runs (nbval re-executes every chapter) record their measurements in a folder of
# their own, not in the checkout's results/, which holds what `make execute` recorded.
os.environ.setdefault("MOBILEOPT_RESULTS_DIR", tempfile.mkdtemp(prefix="mobileopt-results-"))
