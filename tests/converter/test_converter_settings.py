"""The converter settings in the report are read back from a real TFLiteConverter object."""

from __future__ import annotations

from tflite_operator.converter.converter_settings import applied_settings


def test_default_converter_reports_the_core_settings_only(tf):
    settings = applied_settings(tf.lite.TFLiteConverter([], None))
    assert settings == {
        "inference_input_type": "float32",
        "inference_output_type": "float32",
        "optimizations": "[]",
        "target_spec.supported_ops": "[TFLITE_BUILTINS]",
        "target_spec.supported_types": "[]",
    }


def test_every_changed_flag_shows_up_including_private_experimental_ones(tf):
    converter = tf.lite.TFLiteConverter([], None)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.target_spec.supported_ops = [
        tf.lite.OpsSet.TFLITE_BUILTINS,
        tf.lite.OpsSet.SELECT_TF_OPS,
    ]
    converter.target_spec.supported_types = [tf.float16]
    converter._experimental_lower_tensor_list_ops = False
    converter.allow_custom_ops = True
    settings = applied_settings(converter)
    assert settings["optimizations"] == "[DEFAULT]"
    assert settings["target_spec.supported_ops"] == "[SELECT_TF_OPS, TFLITE_BUILTINS]"
    assert settings["target_spec.supported_types"] == "[float16]"
    assert settings["_experimental_lower_tensor_list_ops"] == "False"
    assert settings["allow_custom_ops"] == "True"
