"""Bring your own model: TFLite / ONNX in (bundles), TFLite out; graph -> torch network."""
