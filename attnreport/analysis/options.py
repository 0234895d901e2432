"""`[analysis]` options checked against what the analysis registers, before any model runs.

`core.config` parses the table but cannot know the methods (core imports no later stage); the
names live once, in the registries of the modules that run them, and are checked here.
"""

from __future__ import annotations

import re

from attnreport.analysis.answer_attribution import ANSWER_OUTPUTS
from attnreport.analysis.attribution_methods import METHODS
from attnreport.analysis.heads import HeadThresholds
from attnreport.analysis.shapley import ESTIMATORS
from attnreport.analysis.token_groups import BUILT_IN, term_pattern
from attnreport.analysis.units import UNIT_KINDS
from attnreport.core.config import OUTPUTS, AnalysisConfig, GenerateConfig
from attnreport.core.errors import ConfigError

#: per table, the options naming methods: (option, registry); a list option names several
_METHOD_LISTS = {
    "analysis": (("attributions", METHODS),),
    "generate": (("attributions", METHODS),),
}
#: per table, the options choosing one value: (option, the values known)
_CHOICES = {
    "analysis": (("shapley_method", ESTIMATORS), ("output", OUTPUTS), ("attribution_unit", UNIT_KINDS)),
    "generate": (("attribution_unit", UNIT_KINDS), ("attribution_output", ANSWER_OUTPUTS)),
}


def _check_names(table: str, options, where: str) -> None:
    """The table's method lists and single choices against their registries, in a fixed order."""
    for option, known in _METHOD_LISTS[table]:
        unknown = [name for name in getattr(options, option) if name not in known]
        if unknown:
            raise ConfigError(
                f"{where}: [{table}] {option} has unknown method {unknown[0]!r}; "
                f"known methods: {', '.join(known)}"
            )
    for option, known in _CHOICES[table]:
        value = getattr(options, option)
        if value not in known:
            raise ConfigError(f"{where}: [{table}] {option} = {value!r}; choose one of {', '.join(known)}")


def check_options(options: AnalysisConfig, *, where: str = "config") -> None:
    """Raise a one-line `ConfigError` naming the option and the known values."""
    _check_names("analysis", options, where)
    HeadThresholds.from_dict(options.head_thresholds)
    if not isinstance(options.token_groups, dict):
        raise ConfigError(
            f'{where}: [analysis.token_groups] must be a table, e.g. symptoms = ["fever", "cough"]'
        )
    for name, spec in options.token_groups.items():
        if name in BUILT_IN:
            raise ConfigError(
                f"{where}: [analysis.token_groups] {name} is a built-in group; name yours otherwise"
            )
        ok = isinstance(spec, str) or (isinstance(spec, list) and all(isinstance(t, str) for t in spec))
        try:
            if not ok:
                raise ValueError('give a list of words or "regex:<pattern>"')
            term_pattern(spec)
        except (ValueError, re.error) as exc:
            raise ConfigError(f"{where}: [analysis.token_groups] {name}: {exc}") from None


def check_generate_options(options: GenerateConfig, *, where: str = "config") -> None:
    """`[generate]`'s attribution options, checked as `check_options` checks `[analysis]`'s."""
    _check_names("generate", options, where)
