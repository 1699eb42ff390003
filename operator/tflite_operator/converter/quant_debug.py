"""TensorFlow's side of accuracy control: per-layer quantization error, and int8 re-quantization
with chosen layers kept in float.

Both come from one calibration: TensorFlow's QuantizationDebugger calibrates the model with the
variant's own converter settings and representative data, runs a debug model whose NumericVerify
ops compare every quantized op with the same op in float on the same input, and keeps the
calibrated model. Re-quantizing that calibrated model with `denylisted_nodes` (output tensor
names) keeps those ops in float; the calibration is not repeated per attempt.

int8 only. TensorFlow 2.21 quantizes 16x8 with its older quantizer, which has no per-node
denylist; its MLIR quantizer (the one that has) gives 16-bit activations a non-zero zero point,
which LiteRT's kernels refuse ("input->params.zero_point != 0" in FULLY_CONNECTED), and the
debugger's debug model fails the same way. `unsupported_reason()` says so for the report.

Several signatures: the debugger runs the model's first subgraph only, so the per-layer errors
and the tensor names to keep in float are that subgraph's (tensor names differ between
subgraphs); every signature is still validated per attempt, so the budgets are judged on all.
"""

from __future__ import annotations

import csv
import io
import math
import warnings
from collections.abc import Iterator, Mapping

import numpy as np

from tflite_operator.api.report_metrics import LayerError
from tflite_operator.api.spec_variant import Quantization, Variant
from tflite_operator.converter.convert import new_converter
from tflite_operator.converter.converter_settings import applied_settings
from tflite_operator.converter.data import Samples
from tflite_operator.converter.source import SourceModel, import_tensorflow

# Samples the debug model runs on: the statistics are means, a few dozen samples settle them.
DEBUG_SAMPLES = 16

INT16X8_UNSUPPORTED = (
    "int16x8 layers cannot be kept in float with TensorFlow 2.21: its 16x8 quantizer has no "
    "per-layer denylist, and the MLIR quantizer that has one makes 16-bit activations LiteRT "
    "refuses; use quantization: int8 with accuracyControl, or keep int16x8 as it is"
)


def unsupported_reason(variant: Variant) -> str | None:
    if variant.quantization == Quantization.INT8:
        return None
    if variant.quantization == Quantization.INT16X8:
        return INT16X8_UNSUPPORTED
    return f"accuracy control needs int8 quantization, not {variant.quantization}"


def _rmse(diffs: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(diffs, dtype=np.float64))))


class LayerDebugger:
    """One calibration of a variant; per-layer errors and re-quantizations from it."""

    def __init__(
        self,
        source: SourceModel,
        variant: Variant,
        plan: Mapping[str, Samples],
    ) -> None:
        tf = import_tensorflow()
        converter = new_converter(source, variant, plan)
        # Read before the debugger switches the converter to calibrate-only.
        self.settings = applied_settings(converter)
        self._io = (converter.inference_input_type, converter.inference_output_type)
        self._per_channel_off = (
            converter._experimental_disable_per_channel,
            converter._experimental_disable_per_channel_quantization_for_dense_layers,
        )
        self._plan = plan
        self._order: list[str] = []
        options = tf.lite.experimental.QuantizationDebugOptions(layer_debug_metrics={"rmse": _rmse})
        with warnings.catch_warnings():
            # The debugger runs on tf.lite.Interpreter, which warns that it is deprecated.
            warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated.*")
            self._debugger = tf.lite.experimental.QuantizationDebugger(
                converter=converter, debug_dataset=self._dataset, debug_options=options
            )

    def _dataset(self) -> Iterator[list[np.ndarray]]:
        """Samples as the debugger feeds them: a list in the model's input order."""
        key, order = _first_subgraph_inputs(self._debugger.calibrated_model)
        for sample in self._plan[key].inputs[:DEBUG_SAMPLES]:
            yield [np.asarray(sample[name]) for name in order]

    def layer_errors(self) -> list[LayerError]:
        """RMSE over the quantization step of every quantized op's output, unsorted."""
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated.*")
            self._debugger.run()
        dump = io.StringIO()
        self._debugger.layer_statistics_dump(dump)
        dump.seek(0)
        errors = []
        for row in csv.DictReader(dump):
            scale = float(row["scale"])
            rmse = float(row["rmse"])
            ratio = rmse / scale if scale > 0 else math.nan
            op = row["op_name"] or None
            errors.append(LayerError(tensor=row["tensor_name"], op=op, rmse_over_scale=ratio))
        return errors

    def quantize(self, float_layers: list[str]) -> bytes:
        """The variant's int8 model with the ops producing `float_layers` kept in float.

        The same call TFLiteConverter makes after calibrating (lite.py, _quantize), with the
        denylist its public API does not expose; the module is private to TensorFlow, hence
        the import here and nowhere else.
        """
        from tensorflow.lite.python import convert as tflite_convert

        disable_per_channel, disable_per_channel_dense = self._per_channel_off
        return bytes(
            tflite_convert.mlir_quantize(
                self._debugger.calibrated_model,
                disable_per_channel=disable_per_channel,
                input_data_type=self._io[0],
                output_data_type=self._io[1],
                denylisted_nodes=list(float_layers),
                disable_per_channel_for_dense_layers=disable_per_channel_dense,
            )
        )

    def settings_with(self, float_layers: list[str]) -> dict[str, str]:
        """The converter settings of a model from quantize(float_layers)."""
        return {
            **self.settings,
            "_experimental_calibrate_only": "True",
            "quantizer": "mlir_quantize(calibrated model, denylisted_nodes)",
            "denylisted_nodes": "[" + ", ".join(float_layers) + "]",
        }


def _first_subgraph_inputs(calibrated: bytes) -> tuple[str, list[str]]:
    """(signature key, its input names in input order) of the model's first subgraph: the one
    the debugger invokes."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=calibrated)
    for key in interpreter.get_signature_list():
        runner = interpreter.get_signature_runner(key)
        # No public accessor says which subgraph a signature runs; one model, read once.
        if getattr(runner, "_subgraph_index", 0) == 0:
            by_index = {d["index"]: name for name, d in runner.get_input_details().items()}
            return key, [by_index[d["index"]] for d in interpreter.get_input_details()]
    raise ValueError("no signature runs the model's first subgraph")
