"""Signatures of a SavedModel or a concrete function, as the report describes them.

`read_signature_defs` parses saved_model.pb without loading the graph or the weights (a run
with validation and benchmarks off never pays for tf.saved_model.load).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tflite_operator.api.errors import InvalidSourceError
from tflite_operator.api.report_metrics import SignatureInfo, TensorInfo
from tflite_operator.converter.tf_env import first_line, import_tensorflow

REEXPORT_HINT = "re-export it with tf.saved_model.save or model.export()"


def tensor_info(name: str, spec: Any) -> TensorInfo:
    """TensorInfo from a tf.TensorSpec; unknown dims become None."""
    if spec.shape.rank is None:
        raise InvalidSourceError(
            f"tensor {name!r} has an unknown rank, which TFLite cannot convert; export the "
            f"model with an input_signature of known rank (e.g. tf.TensorSpec([None, 224, 224, "
            f"3]))"
        )
    return TensorInfo(name=name, dtype=spec.dtype.name, shape=list(spec.shape.as_list()))


def signature_info(key: str, fn: Any) -> SignatureInfo:
    """Describe a signature concrete function: keyword inputs and named outputs."""
    args, kwargs = fn.structured_input_signature
    if args:
        # Signatures loaded from a SavedModel only take keyword arguments; positional ones
        # mean this is not a serving signature.
        raise InvalidSourceError(
            f"signature {key!r} takes positional arguments; {REEXPORT_HINT} with a "
            f"serving signature"
        )
    outputs = fn.structured_outputs
    if not isinstance(outputs, dict):
        raise InvalidSourceError(
            f"signature {key!r} does not return a dict of named outputs; {REEXPORT_HINT}"
        )
    return SignatureInfo(
        key=key,
        inputs=[tensor_info(name, spec) for name, spec in kwargs.items()],
        outputs=[tensor_info(name, spec) for name, spec in outputs.items()],
    )


def read_signature_defs(path: Path) -> dict[str, SignatureInfo]:
    """The serving meta graph's signatures, parsed from the protobuf without loading the graph."""
    tf = import_tensorflow()
    meta = _serving_meta_graph(path)

    def tensors(infos: Any) -> list[TensorInfo]:
        out = []
        for name in sorted(infos):
            info = infos[name]
            if info.tensor_shape.unknown_rank:
                raise InvalidSourceError(
                    f"tensor {name!r} has an unknown rank, which TFLite cannot convert; export "
                    f"the model with an input_signature of known rank (e.g. "
                    f"tf.TensorSpec([None, 224, 224, 3]))"
                )
            shape = [d.size if d.size >= 0 else None for d in info.tensor_shape.dim]
            out.append(
                TensorInfo(name=name, dtype=tf.dtypes.as_dtype(info.dtype).name, shape=shape)
            )
        return out

    return {
        key: SignatureInfo(key=key, inputs=tensors(sd.inputs), outputs=tensors(sd.outputs))
        # "__saved_model_init_op" and the like are TensorFlow's own, not signatures.
        for key, sd in meta.signature_def.items()
        if not key.startswith("__")
    }


def graph_op_types(path: Path) -> set[str]:
    """Every op type of the serving graph and of the functions it calls (loop bodies too)."""
    meta = _serving_meta_graph(path)
    ops = {node.op for node in meta.graph_def.node}
    for function in meta.graph_def.library.function:
        ops.update(node.op for node in function.node_def)
    return ops


def _serving_meta_graph(path: Path) -> Any:
    import_tensorflow()
    from google.protobuf import text_format
    from tensorflow.core.protobuf import saved_model_pb2

    saved_model = saved_model_pb2.SavedModel()
    try:
        if (path / "saved_model.pb").is_file():
            saved_model.ParseFromString((path / "saved_model.pb").read_bytes())
        else:
            text_format.Parse((path / "saved_model.pbtxt").read_text(), saved_model)
    except Exception as e:  # DecodeError, ParseError, UnicodeDecodeError
        raise InvalidSourceError(
            f"{path} is not a loadable SavedModel: saved_model.pb does not parse "
            f"({first_line(e)}); {REEXPORT_HINT}"
        ) from e
    if not saved_model.meta_graphs:
        raise InvalidSourceError(f"{path} is not a loadable SavedModel: it has no meta graph")
    return next(
        (m for m in saved_model.meta_graphs if "serve" in m.meta_info_def.tags),
        saved_model.meta_graphs[0],
    )
