"""mobileopt_ref: the reference library of *Making Neural Networks Fit in Your Pocket*.

Import the modules you need; each owns one concept:

- :mod:`mobileopt_ref.data`: the offline pattern dataset, scikit-learn's handwritten digits (offline) and tf_flowers (online)
- :mod:`mobileopt_ref.models`: MobileNetV2 teacher and student, training, the model cache
- :mod:`mobileopt_ref.litert`: conversion to .tflite and running it with LiteRT
- :mod:`mobileopt_ref.report`: the result record every chapter produces per model variant
- :mod:`mobileopt_ref.env`: threads, seeds and the machine card
- :mod:`mobileopt_ref.plotting`: the book's figure style

Importing the package selects Keras 2 (tf-keras) for TensorFlow; see ``_keras.py``.
"""

__version__ = "0.1.0"
