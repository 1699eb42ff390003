"""Input samples for calibration, validation and benchmarks: from a .npz/.npy file, or synthetic.

Pure numpy, no TensorFlow. A sample is one dict {input name: array} shaped like the signature's
input with the batch dimension set to 1.

How a file maps onto a signature: the first axis of every array is the sample axis. If the
signature's input has a leading batch dimension (None or 1), each sample keeps a batch dim of 1
(`array[i:i+1]`), so the file holds shape (N, *input_shape[1:]). Otherwise (a fixed leading
dim > 1, or a scalar input) the sample is `array[i]` and the file holds (N, *input_shape).

Labelled data: an .npz may hold a `labels` array beside the inputs, one integer class id per
sample, shape (N,). Validation then measures top-1 task accuracy (validate.py); calibration
ignores it. A signature whose input is itself named "labels" reads that array as an input.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tflite_operator.api.errors import SpecError
from tflite_operator.api.report_metrics import DataReport, SignatureInfo, TensorInfo

DATASET_FIELDS = "spec.variants[].representativeDataset.uri or spec.validation.datasetUri"

# Synthetic integer inputs: uint8 is usually raw image bytes, so it gets its full range; other
# integers are usually indices (token ids, class ids), and [0, 10) is a valid index for any
# embedding or lookup table with at least 10 rows.
SYNTHETIC_INT_HIGH = 10
LABELS_KEY = "labels"


@dataclass
class Samples:
    inputs: list[dict[str, np.ndarray]]
    report: DataReport
    # The signature these samples were shaped for; None means "the only signature".
    signature_key: str | None = None
    # One integer class id per sample, from the file's `labels` array; None when unlabelled.
    labels: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.inputs)


def has_batch_dim(shape: list[int | None]) -> bool:
    return len(shape) > 0 and shape[0] in (None, 1)


def per_sample_shape(tensor: TensorInfo) -> list[int | None]:
    """The shape of one sample's slice of a file array (without the sample axis)."""
    return list(tensor.shape[1:]) if has_batch_dim(tensor.shape) else list(tensor.shape)


def shape_matches(actual: tuple[int, ...], expected: list[int | None]) -> bool:
    """None in expected matches any size."""
    return len(actual) == len(expected) and all(
        e is None or a == e for a, e in zip(actual, expected, strict=True)
    )


def format_shape(shape: list[int | None] | tuple[int, ...], sample_axis: bool = False) -> str:
    dims = ["N"] if sample_axis else []
    dims += ["?" if d is None else str(d) for d in shape]
    return "(" + ", ".join(dims) + ")"


def numpy_dtype(dtype: str) -> np.dtype:
    """numpy dtype for a TensorInfo dtype name (TF names: float32, int64, bool...)."""
    if dtype == "string":
        return np.dtype(object)
    try:
        return np.dtype(dtype)
    except TypeError as e:
        raise SpecError(f"input dtype {dtype!r} has no numpy equivalent; cannot feed it") from e


def read_arrays(
    path: Path, signature: SignatureInfo, uri: str
) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
    """(the file's arrays keyed by input name, its `labels` array or None).

    A single-input signature takes any one key besides `labels`.
    """
    names = [t.name for t in signature.inputs]
    if not path.is_file():
        raise SpecError(f"dataset {uri} does not exist; check {DATASET_FIELDS}")
    try:
        # allow_pickle=False: an object array in a .npy/.npz is a pickle, i.e. code execution.
        loaded = np.load(path, allow_pickle=False)
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as e:
        raise SpecError(
            f"dataset {uri} is not a readable .npz or .npy file ({e}); write it with "
            f"np.savez(path, {names[0]}=array) or np.save(path, array), without object arrays"
        ) from e
    if isinstance(loaded, np.ndarray):
        if len(names) != 1:
            raise SpecError(
                f"dataset {uri} is a single .npy array, but signature {signature.key!r} has "
                f"{len(names)} inputs ({', '.join(names)}); use an .npz file with one array "
                f"per input name: np.savez(path, {', '.join(f'{n}=...' for n in names)})"
            )
        return {names[0]: loaded}, None
    with loaded:
        arrays = {key: loaded[key] for key in loaded.files}
    labels = arrays.pop(LABELS_KEY, None) if LABELS_KEY not in names else None
    if set(names) <= set(arrays):
        return {n: arrays[n] for n in names}, labels
    if len(names) == 1 and len(arrays) == 1:
        return {names[0]: next(iter(arrays.values()))}, labels
    raise SpecError(
        f"dataset {uri} has arrays {sorted(arrays) or 'none'}, but signature "
        f"{signature.key!r} needs one array per input: {', '.join(names)}; save it with "
        f"np.savez(path, {', '.join(f'{n}=...' for n in names)})"
    )


def cast_input(array: np.ndarray, tensor: TensorInfo, uri: str) -> np.ndarray:
    """Cast to the input's dtype, refusing lossy kind changes (floats into an int input)."""
    target = numpy_dtype(tensor.dtype)
    if array.dtype == target:
        return array
    if target.kind in "biuf" and not np.can_cast(array.dtype, target, casting="same_kind"):
        # uint8/int images into a float input are fine (same_kind allows int -> float);
        # floats into an integer input would be silently truncated.
        raise SpecError(
            f"dataset {uri}: array {tensor.name!r} has dtype {array.dtype}, which cannot be "
            f"cast to the input's {tensor.dtype} without losing values; save it as "
            f"{tensor.dtype}"
        )
    return array.astype(target)


def load_samples(path: Path, signature: SignatureInfo, count: int, uri: str) -> Samples:
    """Up to `count` samples from an .npz/.npy file, checked against the signature's inputs.

    A file with fewer samples than `count` is used whole; the report records the real count.
    """
    arrays, labels = read_arrays(Path(path), signature, uri)
    checked: dict[str, np.ndarray] = {}
    for tensor in signature.inputs:
        array = np.asarray(arrays[tensor.name])
        expected = per_sample_shape(tensor)
        if array.ndim == 0 or not shape_matches(array.shape[1:], expected):
            raise SpecError(
                f"dataset {uri}: array {tensor.name!r} has shape {format_shape(array.shape)}, "
                f"but input {tensor.name!r} of signature {signature.key!r} has shape "
                f"{format_shape(tensor.shape)}, so the file must hold "
                f"{format_shape(expected, sample_axis=True)} (first axis = samples, ? = any "
                f"size)"
            )
        checked[tensor.name] = cast_input(array, tensor, uri)
    sizes = {name: len(a) for name, a in checked.items()}
    if len(set(sizes.values())) > 1:
        raise SpecError(
            f"dataset {uri}: the arrays hold different numbers of samples "
            f"({', '.join(f'{n}: {s}' for n, s in sizes.items())}); every input needs one "
            f"entry per sample"
        )
    available = next(iter(sizes.values()))
    if available == 0:
        raise SpecError(f"dataset {uri} holds no samples (first axis is empty)")
    if labels is not None:
        labels = checked_labels(labels, available, uri)
    n = min(count, available)
    by_tensor = {t.name: t for t in signature.inputs}
    inputs = [
        {
            name: (a[i : i + 1] if has_batch_dim(by_tensor[name].shape) else a[i])
            for name, a in checked.items()
        }
        for i in range(n)
    ]
    return Samples(
        inputs=inputs,
        report=DataReport(kind="file", uri=uri, samples=n, labelled=labels is not None),
        signature_key=signature.key,
        labels=labels[:n] if labels is not None else None,
    )


def checked_labels(labels: np.ndarray, samples: int, uri: str) -> np.ndarray:
    """The `labels` array as int64 class ids, one per sample, or a SpecError saying the fix."""
    fix = "save np.savez(path, <inputs>..., labels=np.asarray(class_ids, dtype=np.int64))"
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise SpecError(
            f"dataset {uri}: labels has shape {format_shape(labels.shape)} and dtype "
            f"{labels.dtype}; it must hold one integer class id per sample, shape (N,): {fix}"
        )
    if len(labels) != samples:
        raise SpecError(
            f"dataset {uri}: labels holds {len(labels)} entries but the inputs hold {samples} "
            f"samples; give exactly one label per sample"
        )
    if len(labels) and labels.min() < 0:
        raise SpecError(f"dataset {uri}: labels has negative class ids; {fix}")
    return labels.astype(np.int64)


def synthetic_shape(tensor: TensorInfo, signature_key: str) -> list[int]:
    """A concrete shape: batch None -> 1; any other None dim cannot be guessed."""
    shape = list(tensor.shape)
    if has_batch_dim(shape):
        shape[0] = 1
    unknown = [i for i, d in enumerate(shape) if d is None]
    if unknown:
        # Picking a size (1? 224?) for a spatial or sequence dim would either break the model
        # (a 1x1 image through a 3x3 valid conv) or calibrate on inputs it never sees.
        raise SpecError(
            f"input {tensor.name!r} of signature {signature_key!r} has shape "
            f"{format_shape(tensor.shape)}: synthetic data cannot guess the size of axis "
            f"{', '.join(map(str, unknown))}; set spec.source.inputShapes to the sizes the "
            f"device feeds (the model is then converted with them too)"
        )
    return [int(d) for d in shape]


def synthetic_samples(signature: SignatureInfo, count: int, seed: int) -> Samples:
    """`count` seeded random samples: same seed and signature -> the same arrays.

    Floats are uniform in [0, 1): most float models take normalized inputs (images scaled to
    [0, 1]), and a bounded range keeps int8 calibration from stretching its scale over values
    real inputs never reach. uint8 is uniform over [0, 255]; other integers in [0, 10); bools
    are fair coin flips. Strings cannot be synthesized.
    """
    rng = np.random.default_rng(seed)
    shapes = {t.name: synthetic_shape(t, signature.key) for t in signature.inputs}
    dtypes = {t.name: numpy_dtype(t.dtype) for t in signature.inputs}
    for t in signature.inputs:
        if dtypes[t.name].kind not in "biuf":
            raise SpecError(
                f"input {t.name!r} of signature {signature.key!r} is {t.dtype}, which synthetic "
                f"data cannot produce; provide a dataset in {DATASET_FIELDS}"
            )
    inputs = []
    for _ in range(count):
        sample = {}
        for name, shape in shapes.items():
            dtype = dtypes[name]
            if dtype.kind == "f":
                value = rng.random(shape, dtype=np.float64).astype(dtype)
            elif dtype.kind == "b":
                value = rng.integers(0, 2, shape).astype(bool)
            elif dtype == np.uint8:
                value = rng.integers(0, 256, shape, dtype=np.uint8)
            else:
                value = rng.integers(0, SYNTHETIC_INT_HIGH, shape).astype(dtype)
            sample[name] = value
        inputs.append(sample)
    return Samples(
        inputs=inputs,
        report=DataReport(kind="synthetic", samples=count, seed=seed),
        signature_key=signature.key,
    )
