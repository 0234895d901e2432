"""The one exception hierarchy of attnreport.

::

    AttnReportError          a user can act on it: the CLI prints one line and exits 2
    ├── ConfigError          report.toml or a command-line option is wrong
    ├── ExportError          a checkpoint cannot be exported safely or correctly
    ├── InputError           the texts (a file, a row) cannot be read
    └── BuildError           the site cannot be built

Messages name the input and say what to do; they are one line.
"""


class AttnReportError(Exception):
    """Base of every error a user can act on."""


class ConfigError(AttnReportError):
    """The configuration (report.toml or command-line options) is wrong."""


class ExportError(AttnReportError):
    """A checkpoint cannot be exported, or its export does not match PyTorch."""


class InputError(AttnReportError):
    """Input texts cannot be read or are invalid."""


class BuildError(AttnReportError):
    """The site cannot be built."""
