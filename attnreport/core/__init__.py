"""What every stage shares: errors, the model card, the trace, the report config (types), and
the plumbing in `files` (hashes, atomic writes, folder swaps), `themes` and `padding`."""

from attnreport.core.config import (
    AnalysisConfig,
    DataConfig,
    ModelConfig,
    ReportConfig,
    SiteConfig,
    load_config,
)
from attnreport.core.errors import (
    AttnReportError,
    BuildError,
    ConfigError,
    ExportError,
    InputError,
)
from attnreport.core.modelcard import ModelCard
from attnreport.core.trace import Trace

__all__ = [
    "AnalysisConfig",
    "AttnReportError",
    "BuildError",
    "ConfigError",
    "DataConfig",
    "ExportError",
    "InputError",
    "ModelCard",
    "ModelConfig",
    "ReportConfig",
    "SiteConfig",
    "Trace",
    "load_config",
]
