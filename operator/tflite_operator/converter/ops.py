"""What a .tflite model contains: the ops it uses and the types of its signature tensors.

Read straight from the flatbuffer (the schema module ships with ai_edge_litert), not through an
interpreter: an interpreter refuses to build a model with custom ops it has no kernel for, and
the lazy flatbuffer accessors never copy the weight buffers, so this stays fast on big models.

Also home of NotRunnableError, shared by litert_runner.py, validate.py and benchmark.py (the
last two re-export it).
"""

from __future__ import annotations

from dataclasses import dataclass

from ai_edge_litert import schema_py_generated as schema

from tflite_operator.api.report_metrics import OpsReport

# Select TF ops are custom ops whose custom code is "Flex" + the TensorFlow op name.
FLEX_PREFIX = "Flex"
FLEX_ISSUE = "LiteRT issue 6458"

_BUILTIN_NAMES: dict[int, str] = {
    v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")
}
_TYPE_NAMES: dict[int, str] = {
    v: k.lower() for k, v in vars(schema.TensorType).items() if not k.startswith("_")
}


class NotRunnableError(Exception):
    """The model converted, but this process's LiteRT runtime cannot run it.

    Not a ConversionError: the pipeline records `reason` as the variant's verdict and goes on.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class SignatureIO:
    key: str
    inputs: list[tuple[str, str]]  # (tensor name in the signature, type name)
    outputs: list[tuple[str, str]]


def _model(tflite: bytes) -> schema.Model:
    if len(tflite) < 8 or tflite[4:8] != b"TFL3":
        raise ValueError("not a TFLite flatbuffer (missing the TFL3 identifier)")
    return schema.Model.GetRootAs(tflite, 0)


def _decode(value: bytes | str | None) -> str:
    if value is None:
        return ""
    return value.decode() if isinstance(value, bytes) else value


def op_summary(tflite: bytes) -> OpsReport:
    """Ops used by any subgraph: builtin names as in the schema (CONV_2D, FULLY_CONNECTED...),
    Select TF ops by their TensorFlow name without the "Flex" prefix (FlexCumprod -> Cumprod,
    the name the converter's "TF Select ops:" message uses), other custom ops by custom code.
    Each list is sorted and without duplicates.
    """
    model = _model(tflite)
    codes = []
    for i in range(model.OperatorCodesLength()):
        code = model.OperatorCodes(i)
        # Builtin codes above 127 live in BuiltinCode; old models only fill the deprecated
        # int8 field. The real code is the larger of the two (as schema_util does).
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        codes.append((builtin, _decode(code.CustomCode())))
    used: set[int] = set()
    for s in range(model.SubgraphsLength()):
        subgraph = model.Subgraphs(s)
        for o in range(subgraph.OperatorsLength()):
            used.add(subgraph.Operators(o).OpcodeIndex())
    builtin_ops, flex_ops, custom_ops = set(), set(), set()
    for index in used:
        builtin, custom = codes[index]
        if builtin == schema.BuiltinOperator.CUSTOM:
            if custom.startswith(FLEX_PREFIX):
                flex_ops.add(custom[len(FLEX_PREFIX) :])
            else:
                custom_ops.add(custom)
        else:
            builtin_ops.add(_BUILTIN_NAMES.get(builtin, f"BUILTIN_{builtin}"))
    return OpsReport(
        builtin=sorted(builtin_ops), select_tf=sorted(flex_ops), custom=sorted(custom_ops)
    )


def is_select_tf(ops: OpsReport) -> bool:
    return bool(ops.select_tf)


def not_runnable_reason(ops: OpsReport) -> str | None:
    """Why the pip LiteRT runtime cannot run a model with these ops, or None if it can."""
    if ops.select_tf:
        return (
            f"uses Select TF ops ({', '.join(ops.select_tf)}), which the pip LiteRT runtime "
            f"cannot run ({FLEX_ISSUE}); run it on a runtime linked with the Flex delegate"
        )
    if ops.custom:
        return (
            f"uses custom ops ({', '.join(ops.custom)}) that the LiteRT runtime has no kernel "
            f"for; run it on a runtime that registers them"
        )
    return None


def signature_io(tflite: bytes) -> list[SignatureIO]:
    """Each signature's input and output tensor types, as stored in the model.

    A model without signature defs (old converters) reports subgraph 0 as "serving_default".
    """
    model = _model(tflite)

    def tensors(subgraph: schema.SubGraph, pairs: list[tuple[str, int]]) -> list[tuple[str, str]]:
        result = []
        for name, index in pairs:
            code = subgraph.Tensors(index).Type()
            result.append((name, _TYPE_NAMES.get(code, f"type_{code}")))
        return result

    result = []
    for i in range(model.SignatureDefsLength()):
        sig = model.SignatureDefs(i)
        subgraph = model.Subgraphs(sig.SubgraphIndex())
        ins = [sig.Inputs(j) for j in range(sig.InputsLength())]
        outs = [sig.Outputs(j) for j in range(sig.OutputsLength())]
        result.append(
            SignatureIO(
                key=_decode(sig.SignatureKey()),
                inputs=tensors(subgraph, [(_decode(t.Name()), t.TensorIndex()) for t in ins]),
                outputs=tensors(subgraph, [(_decode(t.Name()), t.TensorIndex()) for t in outs]),
            )
        )
    if not result and model.SubgraphsLength():
        subgraph = model.Subgraphs(0)

        def named(indices: list[int]) -> list[tuple[str, int]]:
            return [(_decode(subgraph.Tensors(t).Name()), t) for t in indices]

        ins = [subgraph.Inputs(j) for j in range(subgraph.InputsLength())]
        outs = [subgraph.Outputs(j) for j in range(subgraph.OutputsLength())]
        result.append(
            SignatureIO(
                key="serving_default",
                inputs=tensors(subgraph, named(ins)),
                outputs=tensors(subgraph, named(outs)),
            )
        )
    return result
