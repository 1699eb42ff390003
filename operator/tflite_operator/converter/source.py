"""Load the source model (a SavedModel directory or a .keras file) and describe its signatures.

Both formats end up as a SavedModel on disk: a .keras file is re-exported to a temporary
SavedModel with one "serving_default" signature whose input and output names come from the Keras
model. The converter, the validation and the latency baseline then share one code path
(`tf.lite.TFLiteConverter.from_saved_model` and the loaded signature functions), and the
converted model's signature has the same names as the source's.

TensorFlow is imported inside the functions: importing this module stays cheap.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tflite_operator.api.errors import InvalidSourceError, SourceNotFoundError, SpecError
from tflite_operator.api.report_metrics import SignatureInfo, TensorInfo
from tflite_operator.converter.input_shapes import Shapes, apply_input_shapes, changed
from tflite_operator.converter.signature_defs import (
    REEXPORT_HINT,
    read_signature_defs,
    signature_info,
)

# first_line and import_tensorflow are imported from here by the other converter modules.
from tflite_operator.converter.tf_env import first_line, import_tensorflow

__all__ = ["SourceModel", "first_line", "import_tensorflow", "load_source"]

SAVED_MODEL_FORMAT = "saved_model"
KERAS_FORMAT = "keras"
KERAS_SIGNATURE_KEY = "serving_default"


@dataclass
class SourceModel:
    path: Path
    format: str
    signatures: list[SignatureInfo]
    size_bytes: int
    # The SavedModel directory the converter reads: `path` itself, or the temporary export of a
    # .keras file (kept alive by `_tmpdir` for as long as this object lives).
    export_dir: Path = field(repr=False, default=Path())
    _loaded: Any = field(repr=False, default=None)
    _functions: dict[str, Any] = field(repr=False, default_factory=dict)
    _tmpdir: tempfile.TemporaryDirectory[str] | None = field(repr=False, default=None)

    @property
    def signature_keys(self) -> list[str]:
        return [s.key for s in self.signatures]

    def signature(self, key: str) -> SignatureInfo:
        for sig in self.signatures:
            if sig.key == key:
                return sig
        raise SpecError(
            f"signature {key!r} was not loaded from {self.path}; loaded: "
            f"{', '.join(self.signature_keys)}; add it to spec.source.signatureKeys"
        )

    def function(self, key: str) -> Any:
        """The TensorFlow concrete function of a signature (called with keyword tensors)."""
        self.signature(key)
        if key not in self._functions:
            self._load_functions()
        return self._functions[key]

    def _load_functions(self) -> None:
        tf = import_tensorflow()
        try:
            self._loaded = tf.saved_model.load(str(self.export_dir))
        except Exception as e:  # TF raises several unrelated types for a broken SavedModel
            raise InvalidSourceError(
                f"{self.path} is not a loadable SavedModel: {first_line(e)}; {REEXPORT_HINT}"
            ) from e
        self._functions = {k: self._loaded.signatures[k] for k in self.signature_keys}

    def run(self, signature_key: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run the source model in TensorFlow on one batch of named inputs."""
        tf = import_tensorflow()
        sig = self.signature(signature_key)
        expected = {t.name for t in sig.inputs}
        if set(inputs) != expected:
            raise SpecError(
                f"signature {signature_key!r} takes inputs {sorted(expected)}, got {sorted(inputs)}"
            )
        fn = self.function(signature_key)
        result = fn(**{name: tf.constant(value) for name, value in inputs.items()})
        return {name: np.asarray(t) for name, t in result.items()}

    def close(self) -> None:
        """Remove the temporary export of a .keras source (also done when garbage-collected)."""
        if self._tmpdir is not None:
            self._tmpdir.cleanup()
            self._tmpdir = None


def load_source(
    path: Path,
    format: str = "auto",
    signature_keys: Sequence[str] = ("serving_default",),
    input_shapes: Shapes | None = None,
) -> SourceModel:
    """Load a SavedModel directory or .keras file, keeping only the requested signatures.

    An empty `signature_keys` keeps every signature (for inspecting a model). For a .keras
    file `signature_keys` is ignored (as documented on spec.source.signatureKeys): the model
    gets one synthesized "serving_default" signature.

    input_shapes (spec.source.inputShapes) fixes input dims: a .keras model is traced with
    them, a SavedModel is exported again with them (static_export.py); the signatures then
    report the fixed shapes, which the data, the converter and the benchmark all follow.
    """
    path = Path(path)
    if not path.exists():
        raise SourceNotFoundError(
            f"source model {path} does not exist; check spec.source.uri "
            f"(a SavedModel directory or a .keras file)"
        )
    fmt = resolve_format(path, format)
    if fmt == KERAS_FORMAT:
        return _load_keras(path, input_shapes)
    model = _load_saved_model(path, list(signature_keys))
    fixed = apply_input_shapes(model.signatures, input_shapes)
    if not changed(model.signatures, fixed):
        return model
    from tflite_operator.converter.static_export import export_with_shapes

    tmpdir = tempfile.TemporaryDirectory(prefix="tflite-operator-shapes-")
    model.export_dir = Path(tmpdir.name) / "saved_model"
    try:
        loaded = export_with_shapes(path, fixed, model.export_dir)
    except Exception:
        tmpdir.cleanup()
        raise
    # Read back: the outputs' shapes are static now too.
    exported = read_signature_defs(model.export_dir)
    model.signatures = [exported[s.key] for s in fixed]
    model._loaded, model._tmpdir = loaded, tmpdir
    model._functions = {s.key: loaded.signatures[s.key] for s in fixed}
    return model


def resolve_format(path: Path, format: str = "auto") -> str:
    """auto: keras for a file ending .keras, saved_model otherwise; checks the path fits."""
    if format not in ("auto", SAVED_MODEL_FORMAT, KERAS_FORMAT):
        raise SpecError(
            f"unknown source format {format!r}; set spec.source.format to auto, "
            f"saved_model or keras"
        )
    if format == "auto":
        format = KERAS_FORMAT if path.is_file() and path.suffix == ".keras" else SAVED_MODEL_FORMAT
    if format == SAVED_MODEL_FORMAT and not path.is_dir():
        raise InvalidSourceError(
            f"{path} is not a loadable SavedModel: it is a file, and a SavedModel is a directory "
            f"holding saved_model.pb; for a Keras model save it as .keras and set "
            f"spec.source.format: keras, or {REEXPORT_HINT}"
        )
    if format == KERAS_FORMAT and not path.is_file():
        raise InvalidSourceError(
            f"{path} is a directory, but spec.source.format is keras, which reads a .keras "
            f"file; set spec.source.format: saved_model (or auto) for a SavedModel directory"
        )
    return format


def directory_size(path: Path) -> int:
    """Bytes of all regular files under path (or of path itself if it is a file)."""
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _load_saved_model(path: Path, signature_keys: list[str]) -> SourceModel:
    """Signatures come from saved_model.pb alone; the graph and weights load on first run.

    Conversion reads the directory itself, so a run with validation and benchmarks switched
    off never pays for tf.saved_model.load (seconds on a MobileNet-sized model).
    """
    if not (path / "saved_model.pb").is_file() and not (path / "saved_model.pbtxt").is_file():
        present = sorted(p.name for p in path.iterdir())[:10]
        raise InvalidSourceError(
            f"{path} is not a loadable SavedModel: it has no saved_model.pb "
            f"(found: {', '.join(present) or 'an empty directory'}); {REEXPORT_HINT}"
        )
    signature_defs = read_signature_defs(path)
    available = list(signature_defs)
    if not available:
        raise InvalidSourceError(
            f"{path} has no signatures, so there is nothing to convert; export it with a "
            f"serving signature: tf.saved_model.save(module, path, "
            f"signatures={{'serving_default': module.f.get_concrete_function(spec)}}) or "
            f"model.export(path)"
        )
    signature_keys = signature_keys or available
    missing = [k for k in signature_keys if k not in available]
    if missing:
        raise SpecError(
            f"{path} has no signature {', '.join(repr(k) for k in missing)}; available "
            f"signatures: {', '.join(available)}; set spec.source.signatureKeys to some of these"
        )
    return SourceModel(
        path=path,
        format=SAVED_MODEL_FORMAT,
        signatures=[signature_defs[k] for k in signature_keys],
        size_bytes=directory_size(path),
        export_dir=path,
    )


def _load_keras(path: Path, input_shapes: Shapes | None = None) -> SourceModel:
    tf = import_tensorflow()
    import keras

    try:
        model = keras.models.load_model(path, compile=False)
    except Exception as e:
        raise InvalidSourceError(
            f"{path} is not a loadable .keras file: {first_line(e)}; save it again with "
            f"model.save('model.keras'), and register custom layers with "
            f"@keras.saving.register_keras_serializable"
        ) from e
    try:
        inputs = list(model.inputs)
        outputs = list(model.outputs)
    except (AttributeError, ValueError) as e:
        inputs, outputs = [], []
        cause = first_line(e)
    else:
        cause = "it has no symbolic inputs"
    if not inputs:
        raise InvalidSourceError(
            f"{path}: cannot build a signature for this Keras model: {cause}; build it "
            f"functionally from keras.Input(...) (or call it once on data) before saving"
        )
    output_names = _keras_output_names(model, len(outputs))
    # Traced with spec.source.inputShapes, every shape inside the model is static too (a
    # recurrent layer's TensorList then lowers to builtins: known_failures.py).
    wanted = apply_input_shapes([_keras_signature(inputs)], input_shapes)[0].inputs
    specs = [
        tf.TensorSpec(w.shape, t.dtype, name=t.name) for t, w in zip(inputs, wanted, strict=True)
    ]

    def serve(*args: Any) -> dict[str, Any]:
        result = model(list(args) if len(args) > 1 else args[0], training=False)
        if not isinstance(result, list | tuple):
            result = [result]
        return dict(zip(output_names, result, strict=True))

    # keras.export.ExportArchive tracks the model's variables so the converter can freeze them;
    # a plain tf.Module holding the model leaves READ_VARIABLE ops that fail calibration.
    tmpdir = tempfile.TemporaryDirectory(prefix="tflite-operator-keras-")
    export_dir = Path(tmpdir.name) / "saved_model"
    try:
        archive = keras.export.ExportArchive()
        archive.track(model)
        archive.add_endpoint(KERAS_SIGNATURE_KEY, serve, input_signature=specs)
        archive.write_out(str(export_dir), verbose=False)
        loaded = tf.saved_model.load(str(export_dir))
    except Exception as e:
        tmpdir.cleanup()
        raise InvalidSourceError(
            f"{path}: the Keras model could not be exported as a SavedModel: {first_line(e)}; "
            f"export it yourself with model.export(dir) and point spec.source.uri at the "
            f"directory"
        ) from e
    fn = loaded.signatures[KERAS_SIGNATURE_KEY]
    return SourceModel(
        path=path,
        format=KERAS_FORMAT,
        signatures=[signature_info(KERAS_SIGNATURE_KEY, fn)],
        size_bytes=directory_size(path),
        export_dir=export_dir,
        _loaded=loaded,
        _functions={KERAS_SIGNATURE_KEY: fn},
        _tmpdir=tmpdir,
    )


def _keras_signature(inputs: list[Any]) -> SignatureInfo:
    """The inputs of a Keras model as a signature (outputs are known only once traced)."""
    return SignatureInfo(
        key=KERAS_SIGNATURE_KEY,
        inputs=[TensorInfo(name=t.name, dtype=str(t.dtype), shape=list(t.shape)) for t in inputs],
        outputs=[],
    )


def _keras_output_names(model: Any, count: int) -> list[str]:
    """Output names from the model (its output layers' names), else output_0, output_1..."""
    names = list(getattr(model, "output_names", None) or [])
    if len(names) != count or len(set(names)) != count:
        names = [f"output_{i}" for i in range(count)]
    return names
