"""Export a SavedModel again with fixed input shapes (spec.source.inputShapes).

The loaded signatures cannot be traced again (their Python code is gone), so each becomes the
body of a new tf.function whose input signature has the fixed shapes; the converter's shape
inference then carries the static dims through the graph. Weights are shared with the loaded
model, names of inputs and outputs stay the same. Measured on TF 2.21: a CNN with input
(None, None, None, 3) converts to a static (1, 32, 32, 3) model in every variant; a recurrent
layer's TensorList keeps its dynamic element shape this way (only tracing the Keras model again
fixes that: source.py does it for .keras sources).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tflite_operator.api.errors import InvalidSourceError
from tflite_operator.api.report_metrics import SignatureInfo
from tflite_operator.converter.tf_env import first_line, import_tensorflow


def export_with_shapes(source_dir: Path, signatures: Sequence[SignatureInfo], dest: Path) -> Any:
    """Write to `dest` a SavedModel whose signatures take exactly the given input shapes.

    Returns the source as loaded for this: its signature functions compute the same outputs
    on the fixed shapes, so validation and the latency baseline use them without loading
    the new export again (a load costs about as much as the save, seconds for a MobileNet).
    """
    tf = import_tensorflow()
    loaded = tf.saved_model.load(str(source_dir))
    holder = tf.Module()
    holder.source = loaded  # tracks the variables, so the new SavedModel keeps the weights
    functions = {}
    for sig in signatures:
        names = [t.name for t in sig.inputs]
        specs = [tf.TensorSpec(t.shape, tf.as_dtype(t.dtype), name=t.name) for t in sig.inputs]
        body = _keywords(loaded.signatures[sig.key], names)
        functions[sig.key] = tf.function(body, input_signature=specs).get_concrete_function()
    try:
        tf.saved_model.save(holder, str(dest), signatures=functions)
    except Exception as e:  # TF raises several types for a graph that cannot take the shapes
        raise InvalidSourceError(
            f"{source_dir}: the model could not be exported with spec.source.inputShapes: "
            f"{first_line(e)}; check the shapes, or export the model yourself with a fixed "
            f"input signature"
        ) from e
    return loaded


def _keywords(fn: Any, names: list[str]) -> Callable[..., Any]:
    """A positional wrapper of a keyword-only signature function (input_signature is a list)."""

    def call(*args: Any) -> Any:
        return fn(**dict(zip(names, args, strict=True)))

    return call
