"""Export stage: a Hugging Face checkpoint -> an ONNX folder with every attention.

The only stage that imports torch and transformers (lazily, inside functions), so
that the rest of attnreport installs and runs on onnxruntime alone. Causal LMs also get the
generation graphs (`attnreport.export.decoder`): a KV-cache ``decoder.onnx`` and ``lm_head.onnx``.
"""

from attnreport.export.onnx_export import export_model

__all__ = ["export_model"]
