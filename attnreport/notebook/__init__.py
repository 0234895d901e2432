"""BertViz's notebook calls, drawn by the site's own figures: offline, small, self-contained.

::

    from attnreport.notebook import head_view, model_view, neuron_view   # was: from bertviz import ...

    outputs = model(**inputs, output_attentions=True)
    tokens = tokenizer.convert_ids_to_tokens(inputs["input_ids"][0])
    head_view(outputs.attentions, tokens)
    model_view(outputs.attentions, tokens, include_layers=[5, 6])
    neuron_view(model, "bert", tokenizer, "the cat sat", "the dog ran")

Each output is one HTML document in an ``<iframe srcdoc>``: the site's scripts and styles
inlined, the attention as the site ships it (uint8, deflated), no CDN, nothing fetched. Torch is
not needed to import this package or to draw numpy attention; `neuron_view` runs a transformers
model, so it needs torch.
"""

from attnreport.notebook.neuron import neuron_view
from attnreport.notebook.views import head_view, model_view

__all__ = ["head_view", "model_view", "neuron_view"]
