"""Samples from files and synthetic samples: pure numpy, no TensorFlow needed."""

from __future__ import annotations

import numpy as np
import pytest

from tflite_operator.api.errors import SpecError
from tflite_operator.api.report_metrics import SignatureInfo, TensorInfo
from tflite_operator.converter.data import load_samples, synthetic_samples

IMAGE = SignatureInfo(
    key="serving_default",
    inputs=[TensorInfo(name="image", dtype="float32", shape=[None, 8, 8, 1])],
    outputs=[TensorInfo(name="probs", dtype="float32", shape=[None, 10])],
)
TWO_INPUTS = SignatureInfo(
    key="serving_default",
    inputs=[
        TensorInfo(name="tokens", dtype="int32", shape=[None, 5]),
        TensorInfo(name="mask", dtype="float32", shape=[None, 5]),
    ],
    outputs=[],
)


def test_npz_by_input_name(tmp_path):
    path = tmp_path / "d.npz"
    images = np.random.default_rng(0).random((7, 8, 8, 1))  # float64 on disk
    np.savez(path, image=images, unrelated=np.zeros(3))
    samples = load_samples(path, IMAGE, count=5, uri="gs://b/d.npz")
    assert len(samples.inputs) == 5
    first = samples.inputs[0]["image"]
    assert first.shape == (1, 8, 8, 1) and first.dtype == np.float32
    np.testing.assert_allclose(samples.inputs[4]["image"][0], images[4], rtol=1e-6)
    assert samples.report.kind == "file"
    assert samples.report.uri == "gs://b/d.npz"
    assert samples.report.samples == 5
    assert samples.signature_key == "serving_default"


def test_fewer_samples_than_asked_records_real_count(tmp_path):
    path = tmp_path / "d.npy"
    np.save(path, np.zeros((3, 8, 8, 1), np.uint8))  # uint8 images into a float input
    samples = load_samples(path, IMAGE, count=100, uri="d.npy")
    assert len(samples.inputs) == 3
    assert samples.report.samples == 3
    assert samples.inputs[0]["image"].dtype == np.float32


def test_single_input_takes_any_single_key(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, x=np.ones((2, 8, 8, 1), np.float32))
    assert len(load_samples(path, IMAGE, 10, "d.npz").inputs) == 2


def test_shape_mismatch_names_expected_shape_and_file(tmp_path):
    path = tmp_path / "bad.npz"
    np.savez(path, image=np.zeros((4, 28, 28, 1), np.float32))
    with pytest.raises(SpecError) as info:
        load_samples(path, IMAGE, 4, "gs://bucket/bad.npz")
    message = info.value.message
    assert "gs://bucket/bad.npz" in message
    assert "(4, 28, 28, 1)" in message  # what the file holds
    assert "(N, 8, 8, 1)" in message  # what it must hold
    assert "'image'" in message


def test_missing_keys_name_the_needed_inputs(tmp_path):
    path = tmp_path / "two.npz"
    np.savez(path, tokens=np.zeros((2, 5), np.int32), other=np.zeros((2, 5)))
    with pytest.raises(SpecError) as info:
        load_samples(path, TWO_INPUTS, 2, "two.npz")
    assert "tokens, mask" in info.value.message
    assert "np.savez(path, tokens=..., mask=...)" in info.value.message


def test_npy_for_multi_input_signature_is_refused(tmp_path):
    path = tmp_path / "one.npy"
    np.save(path, np.zeros((2, 5), np.int32))
    with pytest.raises(SpecError, match=r"single \.npy array.*2 inputs"):
        load_samples(path, TWO_INPUTS, 2, "one.npy")


def test_floats_into_integer_input_are_refused(tmp_path):
    path = tmp_path / "two.npz"
    np.savez(path, tokens=np.full((2, 5), 1.5), mask=np.ones((2, 5)))
    with pytest.raises(SpecError, match=r"'tokens' has dtype float64.*int32"):
        load_samples(path, TWO_INPUTS, 2, "two.npz")


def test_unequal_sample_counts(tmp_path):
    path = tmp_path / "two.npz"
    np.savez(path, tokens=np.zeros((3, 5), np.int32), mask=np.ones((2, 5), np.float32))
    with pytest.raises(SpecError, match="different numbers of samples"):
        load_samples(path, TWO_INPUTS, 3, "two.npz")


def test_unreadable_file(tmp_path):
    path = tmp_path / "junk.npz"
    path.write_bytes(b"definitely not numpy")
    with pytest.raises(SpecError, match=r"not a readable \.npz or \.npy file"):
        load_samples(path, IMAGE, 1, "junk.npz")


def test_missing_file(tmp_path):
    with pytest.raises(SpecError, match=r"does not exist.*representativeDataset"):
        load_samples(tmp_path / "nope.npz", IMAGE, 1, "nope.npz")


def test_synthetic_is_seeded():
    a = synthetic_samples(IMAGE, 4, seed=7)
    b = synthetic_samples(IMAGE, 4, seed=7)
    c = synthetic_samples(IMAGE, 4, seed=8)
    for x, y in zip(a.inputs, b.inputs, strict=True):
        np.testing.assert_array_equal(x["image"], y["image"])
    assert not np.array_equal(a.inputs[0]["image"], c.inputs[0]["image"])
    # Samples differ from each other too.
    assert not np.array_equal(a.inputs[0]["image"], a.inputs[1]["image"])
    assert a.report.kind == "synthetic" and a.report.seed == 7 and a.report.samples == 4


def test_synthetic_shapes_dtypes_and_ranges():
    samples = synthetic_samples(TWO_INPUTS, 50, seed=0)
    tokens = np.stack([s["tokens"] for s in samples.inputs])
    mask = np.stack([s["mask"] for s in samples.inputs])
    assert samples.inputs[0]["tokens"].shape == (1, 5)
    assert tokens.dtype == np.int32 and mask.dtype == np.float32
    assert tokens.min() >= 0 and tokens.max() < 10
    assert mask.min() >= 0.0 and mask.max() < 1.0
    assert len(np.unique(tokens)) > 1


def test_synthetic_refuses_unknown_non_batch_dims():
    sig = SignatureInfo(
        key="serving_default",
        inputs=[TensorInfo(name="image", dtype="float32", shape=[None, None, None, 3])],
        outputs=[],
    )
    with pytest.raises(SpecError) as info:
        synthetic_samples(sig, 1, seed=0)
    assert "axis 1, 2" in info.value.message
    assert "spec.source.inputShapes" in info.value.message


def test_input_without_batch_dim_keeps_its_shape(tmp_path):
    sig = SignatureInfo(
        key="s", inputs=[TensorInfo(name="v", dtype="float32", shape=[3])], outputs=[]
    )
    path = tmp_path / "v.npy"
    np.save(path, np.arange(6, dtype=np.float32).reshape(2, 3))
    samples = load_samples(path, sig, 2, "v.npy")
    np.testing.assert_array_equal(samples.inputs[1]["v"], [3, 4, 5])
    assert synthetic_samples(sig, 1, 0).inputs[0]["v"].shape == (3,)


def test_labels_beside_the_inputs(tmp_path):
    path = tmp_path / "l.npz"
    np.savez(path, image=np.zeros((6, 8, 8, 1), np.float32), labels=np.arange(6, dtype=np.uint8))
    samples = load_samples(path, IMAGE, 4, "l.npz")
    assert samples.report.labelled
    assert samples.labels.tolist() == [0, 1, 2, 3]  # cut with the samples
    assert samples.labels.dtype == np.int64
    unlabelled = tmp_path / "u.npz"
    np.savez(unlabelled, image=np.zeros((2, 8, 8, 1), np.float32))
    assert load_samples(unlabelled, IMAGE, 2, "u.npz").labels is None


def test_a_single_input_file_may_name_its_array_anything_beside_labels(tmp_path):
    path = tmp_path / "l.npz"
    np.savez(path, pixels=np.zeros((3, 8, 8, 1), np.float32), labels=np.array([1, 2, 3]))
    samples = load_samples(path, IMAGE, 3, "l.npz")
    assert len(samples.inputs) == 3 and samples.labels.tolist() == [1, 2, 3]


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        (np.arange(5), "labels holds 5 entries but the inputs hold 6 samples"),
        (np.zeros(6, np.float32), "must hold one integer class id per sample, shape (N,)"),
        (np.zeros((6, 1), np.int64), "labels has shape (6, 1)"),
        (np.array([0, 1, -1, 0, 1, 0]), "labels has negative class ids"),
    ],
)
def test_bad_labels_say_the_fix(tmp_path, labels, expected):
    path = tmp_path / "bad.npz"
    np.savez(path, image=np.zeros((6, 8, 8, 1), np.float32), labels=labels)
    with pytest.raises(SpecError) as err:
        load_samples(path, IMAGE, 6, "bad.npz")
    assert expected in str(err.value)
    assert "bad.npz" in str(err.value)
