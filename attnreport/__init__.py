"""attnreport: a transformer and a set of texts in, a static website that explains the model out.

Stages, each a subpackage that imports only from the stages before it::

    core -> export -> trace -> analysis -> scenes -> site -> cli
"""

__version__ = "0.1.0"

__all__ = ["Report", "explain"]


def __getattr__(name: str):
    """`explain` and `Report` (attnreport.report), imported on first use: ``import attnreport``
    stays light for the command line."""
    if name in __all__:
        from attnreport import report

        return getattr(report, name)
    raise AttributeError(f"module 'attnreport' has no attribute {name!r}")
