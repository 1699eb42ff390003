"""tflite-operator: TensorFlow SavedModels to TensorFlow Lite, as a Kubernetes operator."""

__version__ = "0.1.0"

API_GROUP = "tflite.dev"
API_VERSION = "v1alpha1"
KIND = "TFLiteConversion"
