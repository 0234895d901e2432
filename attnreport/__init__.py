"""attnreport: a transformer and a set of texts in, a static website that explains the model out.

Stages, each a subpackage that imports only from the stages before it::

    core -> export -> trace -> analysis -> scenes -> site -> cli
"""

__version__ = "0.1.0"
