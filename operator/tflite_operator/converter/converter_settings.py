"""The TFLiteConverter settings a variant was converted with, as the report shows them.

Read back from the converter object after configure() (convert.py), so the report says what
was applied, not what was meant: the core options, the target spec, and every other flag that
differs from a default converter (for example `_experimental_lower_tensor_list_ops`).
"""

from __future__ import annotations

from typing import Any

from tflite_operator.converter.source import import_tensorflow

# Always reported, default or not: what a reader compares between variants.
_CORE_SETTINGS = ("optimizations", "inference_input_type", "inference_output_type")
# Where the model came from, not how it was converted.
_NOT_SETTINGS = ("saved_model_dir", "_saved_model", "_funcs", "_trackable_obj", "_metadata")


def applied_settings(converter: Any) -> dict[str, str]:
    """The converter's settings as the report shows them: the core ones, the target spec, and
    every other flag (`experimental_*`, `_experimental_*`, ...) that differs from a default
    TFLiteConverter, read back from the object so the report says what was applied."""
    tf = import_tensorflow()
    default = vars(tf.lite.TFLiteConverter([], None))
    settings: dict[str, str] = {}
    for name, value in sorted(vars(converter).items()):
        if name.startswith(_NOT_SETTINGS) or (not _is_flag(value) and name not in _CORE_SETTINGS):
            continue
        if name in _CORE_SETTINGS or default.get(name) != value:
            settings[name] = _setting_text(value)
    spec = converter.target_spec
    settings["target_spec.supported_ops"] = _setting_text(spec.supported_ops)
    settings["target_spec.supported_types"] = _setting_text(spec.supported_types)
    if converter.representative_dataset is not None:
        settings["representative_dataset"] = "set (calibration samples per signature)"
    return settings


def _is_flag(value: Any) -> bool:
    return value is None or isinstance(value, bool | int | float | str)


def _setting_text(value: Any) -> str:
    if isinstance(value, set | frozenset | list | tuple):
        return "[" + ", ".join(sorted(_setting_text(v) for v in value)) + "]"
    name = getattr(value, "name", None)  # OpsSet / Optimize enums, tf.DType
    return name if isinstance(name, str) else str(value)
