"""`[analysis]` options checked against what the analysis registers, before any model runs.

`core.config` parses the table but cannot know the methods (core imports no later stage); the
names live once, in the registries of the modules that run them, and are checked here.
"""

from __future__ import annotations

import re

from attnreport.analysis.answer_attribution import ANSWER_METHODS, ANSWER_OUTPUTS
from attnreport.analysis.explain import ATTRIBUTIONS
from attnreport.analysis.heads import HeadThresholds
from attnreport.analysis.shapley import ESTIMATORS
from attnreport.analysis.token_groups import BUILT_IN, term_pattern
from attnreport.analysis.units import UNIT_KINDS
from attnreport.core.config import AnalysisConfig, GenerateConfig
from attnreport.core.errors import ConfigError
from attnreport.trace.evaluate import OUTPUTS


def check_options(options: AnalysisConfig, *, where: str = "config") -> None:
    """Raise a one-line `ConfigError` naming the option and the known values."""
    unknown = [name for name in options.attributions if name not in ATTRIBUTIONS]
    if unknown:
        raise ConfigError(
            f"{where}: [analysis] attributions has unknown method {unknown[0]!r}; "
            f"known methods: {', '.join(ATTRIBUTIONS)}"
        )
    if options.shapley_method not in ESTIMATORS:
        raise ConfigError(
            f"{where}: [analysis] shapley_method = {options.shapley_method!r}; "
            f"choose one of {', '.join(ESTIMATORS)}"
        )
    if options.output not in OUTPUTS:
        raise ConfigError(
            f"{where}: [analysis] output = {options.output!r}; choose one of {', '.join(OUTPUTS)}"
        )
    if options.attribution_unit not in UNIT_KINDS:
        raise ConfigError(
            f"{where}: [analysis] attribution_unit = {options.attribution_unit!r}; "
            f"choose one of {', '.join(UNIT_KINDS)}"
        )
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
    unknown = [name for name in options.attributions if name not in ANSWER_METHODS]
    if unknown:
        raise ConfigError(
            f"{where}: [generate] attributions has unknown method {unknown[0]!r}; "
            f"known methods: {', '.join(ANSWER_METHODS)}"
        )
    if options.attribution_unit not in UNIT_KINDS:
        raise ConfigError(
            f"{where}: [generate] attribution_unit = {options.attribution_unit!r}; "
            f"choose one of {', '.join(UNIT_KINDS)}"
        )
    if options.attribution_output not in ANSWER_OUTPUTS:
        raise ConfigError(
            f"{where}: [generate] attribution_output = {options.attribution_output!r}; "
            f"choose one of {', '.join(ANSWER_OUTPUTS)}"
        )
