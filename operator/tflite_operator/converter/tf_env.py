"""TensorFlow, imported quietly, and the one-line form of its errors.

Every converter module imports TensorFlow through `import_tensorflow()`; the environment below
is set when this module is imported, before TensorFlow is.
"""

from __future__ import annotations

import os
from typing import Any

# TensorFlow's C++ INFO and WARNING lines (oneDNN notices, CPU feature hints) bury the messages
# that matter in a Job log; level 2 keeps ERROR lines. setdefault: an operator debugging a Job
# can still set TF_CPP_MIN_LOG_LEVEL=0 in the pod. It only works if set before TF is imported,
# which is why every converter module imports TensorFlow through this module's functions.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def import_tensorflow() -> Any:
    """TensorFlow, imported on first use with its Python logger limited to errors."""
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")
    return tf


def first_line(error: BaseException) -> str:
    """The first non-empty line of an exception message (TF messages run to pages)."""
    for line in str(error).splitlines():
        if line.strip():
            return line.strip()
    return type(error).__name__
