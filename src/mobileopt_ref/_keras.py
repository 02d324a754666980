"""The single place that selects Keras 2 (tf-keras) for TensorFlow.

tensorflow-model-optimization only works with Keras 2. TensorFlow picks its Keras
implementation the first time it is imported, from the environment variable
``TF_USE_LEGACY_KERAS``. Every module of this library that needs TensorFlow imports
it from here, so the variable is always set before TensorFlow loads.

Example:
    >>> from mobileopt_ref._keras import tf, keras
    >>> keras.__name__
    'tf_keras'
"""

import os
import sys

if "tensorflow" in sys.modules and os.environ.get("TF_USE_LEGACY_KERAS") != "1":
    # TensorFlow has already chosen Keras 3; tfmot would then fail much later with an
    # obscure error, so say what happened now.
    raise ImportError(
        "TensorFlow was imported before mobileopt_ref with TF_USE_LEGACY_KERAS unset, "
        "so it selected Keras 3. Import mobileopt_ref (or set TF_USE_LEGACY_KERAS=1) "
        "before importing tensorflow."
    )

os.environ["TF_USE_LEGACY_KERAS"] = "1"
# TensorFlow's C++ start-up chatter (oneDNN notices, CPU feature lines) is noise in a
# book; errors still show.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")



from mobileopt_ref._quiet import native_stderr_captured  # noqa: E402

# TensorFlow's native start-up notices (oneDNN, CPU features, a failed CUDA probe on
# machines without a GPU) are written to fd 2 before its log level applies; they are
# kept out of notebooks and shown only if the import fails.
with native_stderr_captured():
    import tensorflow as tf  # noqa: E402
    import tf_keras as keras  # noqa: E402

    tf.config.list_physical_devices()  # run the CUDA probe now, while captured



__all__ = ["tf", "keras"]
