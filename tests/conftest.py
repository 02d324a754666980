"""Shared fixtures: small, fast models and data so that library tests take seconds."""

import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from mobileopt_ref import env

# Every test process uses the reference thread count, as the notebooks do.
env.setup(threads=env.DEFAULT_THREADS, seed=0, figures=False)


@pytest.fixture(scope="session")
def tiny_config():
    """A training config small enough to train twice in a test (about half a minute)."""
    from mobileopt_ref import models

    return models.TrainConfig(
        alpha=0.35, resolution=32, epochs=1, images_per_epoch=256, batch_size=32, n_validation=64, name="tiny"
    )


@pytest.fixture(scope="session")
def tiny_model():
    """An untrained, small MobileNetV2 (alpha 0.35, 32 px)."""
    from mobileopt_ref import models

    return models.build_mobilenet_v2(0.35, 32)


@pytest.fixture(scope="session")
def tiny_tflite(tiny_model):
    from mobileopt_ref import litert

    return litert.to_tflite(tiny_model)


@pytest.fixture(scope="session")
def tiny_split():
    from mobileopt_ref import data

    return data.Split(*data.generate_patterns(40, 32, seed=1, split="test"))


@pytest.fixture(scope="session")
def small_cnn(tiny_split):
    """A small conv net with MobileNetV2's layer kinds, quick to convert (seconds).

    Stride-2 3x3 conv with ReLU6, depthwise 3x3, 1x1 projection, global average pool,
    dense: full-integer conversion of MobileNetV2 itself takes half a minute, and what
    most conversion tests check does not depend on the network's size.
    """
    from mobileopt_ref._keras import keras

    keras.utils.set_random_seed(0)
    layers = keras.layers
    return keras.Sequential(
        [
            layers.Input((32, 32, 3)),
            layers.Conv2D(16, 3, strides=2, padding="same", activation="relu6"),
            layers.DepthwiseConv2D(3, padding="same", activation="relu6"),
            layers.Conv2D(72, 1),
            layers.GlobalAveragePooling2D(),
            layers.Dense(10),
        ]
    )


@pytest.fixture(scope="session")
def small_cnn_int8(small_cnn, tiny_split):
    from mobileopt_ref import litert

    return litert.to_tflite(small_cnn, "full_int8", representative_images=tiny_split.images[:16])


@dataclass(frozen=True)
class BuiltSite:
    """The book built once for the test session (``jupyter-book build -W -n``).

    Attributes:
        returncode: The build's exit status (0 when it passed with warnings as errors).
        output: The tail of its stdout and stderr, for a failure message.
        html: The built site's ``_build/html`` folder.
    """

    returncode: int
    output: str
    html: Path


@pytest.fixture(scope="session")
def built_site(tmp_path_factory):
    """The site built from the stored notebook outputs, once per session.

    The book test (tests/test_book.py) and the browser test (tests/test_site.py) both read
    this one build, so ``make test`` builds the site once.
    """
    root = Path(__file__).resolve().parents[1]
    jupyter_book = Path(sys.executable).parent / "jupyter-book"
    if not jupyter_book.exists():
        pytest.fail("jupyter-book is not installed in this environment (make setup)")
    out = tmp_path_factory.mktemp("site")
    result = subprocess.run(
        [str(jupyter_book), "build", str(root), "-W", "-n", "--keep-going", "--path-output", str(out)],
        capture_output=True,
        text=True,
        cwd=root,
    )
    shutil.rmtree(out / "_build" / ".jupyter_cache", ignore_errors=True)
    return BuiltSite(result.returncode, result.stdout[-4000:] + result.stderr[-4000:], out / "_build" / "html")
