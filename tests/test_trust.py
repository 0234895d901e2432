"""The trust verdict (analysis/trust.py) at and around each boundary of its stated rule, against a
second reading of the rule written here from the module's docstring, and in words."""

from __future__ import annotations

import math

import numpy as np
import pytest

from attnreport.analysis.faithfulness import random_faithfulness
from attnreport.analysis.trust import Trust, TrustLevel, trust, trust_of_views, trust_over_texts


def by_hand(comp, rand, suff=None, rand_suff=None, *, se=None, output_range=1.0, negligible=0.0) -> str:
    """The rule as the docstring states it: the margin over random, its 95% bound, ten points."""
    margin = comp - rand
    half_width = 0.0 if se is None else 1.96 * se
    if margin <= half_width or margin <= negligible:  # within the noise, too small, or negative
        return "no better than chance"
    keeps_as_much = suff is None or rand_suff is None or suff <= rand_suff
    if margin - half_width >= 0.1 * output_range and keeps_as_much:
        return "reliable"
    return "weak"


# (comprehensiveness, random, sufficiency, random sufficiency, std error, range, negligible, level):
# the logit's range of 10 makes the threshold 1.0 exactly, and 1.96 x 0.5 = 0.98 exactly
CASES = [
    # the ten-point threshold, without noise: at it, just below, just above
    (1.5, 0.5, None, None, None, 10.0, 0.0, "reliable"),
    (1.5 - 1e-9, 0.5, None, None, None, 10.0, 0.0, "weak"),
    (1.5 + 1e-9, 0.5, None, None, None, 10.0, 0.0, "reliable"),
    # with noise 0.98: the margin must be 1.98
    (1.98, 0.0, None, None, 0.5, 10.0, 0.0, "reliable"),
    (1.98 - 1e-9, 0.0, None, None, 0.5, 10.0, 0.0, "weak"),
    # within the noise: at it and just above
    (0.98, 0.0, None, None, 0.5, 10.0, 0.0, "no better than chance"),
    (0.98 + 1e-9, 0.0, None, None, 0.5, 10.0, 0.0, "weak"),
    # the negligible effect, without noise: at it and just above
    (0.75, 0.5, None, None, None, 10.0, 0.25, "no better than chance"),
    (0.75 + 1e-9, 0.5, None, None, None, 10.0, 0.25, "weak"),
    # worse than random, or equal, without noise or negligible effect
    (0.5, 0.5, None, None, None, 1.0, 0.0, "no better than chance"),
    (0.25, 0.5, None, None, None, 1.0, 0.0, "no better than chance"),
    (0.5 + 1e-9, 0.5, None, None, None, 1.0, 0.0, "weak"),
    # sufficiency: equal to random's keeps it reliable, worse makes it weak
    (0.75, 0.25, 0.25, 0.25, None, 1.0, 0.01, "reliable"),
    (0.75, 0.25, 0.25 + 1e-9, 0.25, None, 1.0, 0.01, "weak"),
    # a probability: ten points
    (0.3, 0.2, 0.1, 0.3, None, 1.0, 0.01, "weak"),  # 0.3 - 0.2 is 0.0999... in floating point
    (0.35, 0.2, 0.1, 0.3, 0.01, 1.0, 0.01, "reliable"),  # 0.15 - 0.0196 >= 0.1
    (0.12, 0.2, 0.1, 0.3, None, 1.0, 0.01, "no better than chance"),
    # the page: 6% of the prediction against 0% for random tokens
    (0.057, 0.0, 0.05, 0.2, 0.001, 1.0, 0.01, "weak"),
]


@pytest.mark.parametrize(("comp", "rand", "suff", "rand_suff", "se", "span", "negligible", "level"), CASES)
def test_each_boundary_by_hand(comp, rand, suff, rand_suff, se, span, negligible, level):
    assert by_hand(comp, rand, suff, rand_suff, se=se, output_range=span, negligible=negligible) == level
    t = trust(
        comp,
        rand,
        sufficiency=suff,
        random_sufficiency=rand_suff,
        std_error=se,
        output="logit" if span == 10.0 else "probability",
        output_range=span,
        negligible=negligible,
    )
    assert isinstance(t.level, TrustLevel) and t.level == level
    assert t.margin == comp - rand and t.threshold == pytest.approx(0.1 * span)
    assert t.noise == (None if se is None else 1.96 * se)


def test_random_figures_agree_with_the_second_reading():
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(2000):
        comp, rand, suff, rand_suff = rng.uniform(-0.2, 1.0, 4)
        se = None if rng.random() < 0.2 else float(rng.uniform(0, 0.1))
        negligible = float(rng.choice([0.0, 0.01, 0.05]))
        t = trust(
            comp, rand, sufficiency=suff, random_sufficiency=rand_suff, std_error=se, negligible=negligible
        )
        assert t.level == by_hand(comp, rand, suff, rand_suff, se=se, negligible=negligible)
        seen.add(t.level)
    assert seen == set(TrustLevel)


def test_the_sentence_says_the_level_and_the_margin_in_points():
    reliable = trust(0.75, 0.25, sufficiency=0.1, random_sufficiency=0.3, std_error=0.02, negligible=0.01)
    assert reliable.sentence() == (
        "These attributions are reliable: taking their top tokens away lowers the prediction by 50 "
        "points more than taking as many random tokens away, beyond the noise of ±4 points."
    )
    weak = trust(0.06, 0.0, sufficiency=0.05, random_sufficiency=0.2, negligible=0.01)
    assert weak.sentence(subject="The rollout ranking", unit="words") == (
        "The rollout ranking is weak: taking its top words away lowers the prediction by 6 points "
        "more than taking as many random words away; reliable ones clear 10 points beyond the noise."
    )
    keeps_less = trust(0.75, 0.25, sufficiency=0.4, random_sufficiency=0.3)
    assert keeps_less.level == "weak"
    assert "but kept alone their top tokens hold less of the prediction than as many random tokens" in (
        keeps_less.sentence()
    )
    chance = trust(0.2, 0.19, std_error=0.02)
    assert chance.sentence().startswith("These attributions are no better than chance: ")
    assert "by 1 point more" in chance.sentence() and "within the noise of ±4 points" in chance.sentence()
    worse = trust(0.1, 0.3)
    assert "by 20 points less" in worse.sentence() and "no better than random ones" in worse.sentence()
    logit = trust(2.5, 0.5, output="logit", output_range=10.0)
    assert logit.level == "reliable" and "lowers the logit by 2.00 more" in logit.sentence()
    d = reliable.to_dict()
    assert d["level"] == "reliable" and "10 points" in d["rule"] and "1.96 standard errors" in d["rule"]


def test_non_finite_figures_are_refused():
    with pytest.raises(ValueError, match="finite comprehensiveness"):
        trust(math.nan, 0.1)


def test_views_read_the_random_rankings_standard_error():
    def value(masks):  # an additive game: token 0 carries most of the prediction
        return np.asarray(masks, dtype=float) @ np.array([0.6, 0.05, 0.05, 0.05, 0.05, 0.05, 0.05, 0.05])

    rand = random_faithfulness(value, 8, samples=8, random_state=3).to_dict()
    assert rand["comprehensiveness_std_error"] > 0
    faith = {"good": {"comprehensiveness": 0.6, "sufficiency": 0.0}, "random": rand}
    judged = trust_of_views(faith, output="probability", output_range=1.0, negligible=0.01)
    assert set(judged) == {"good"} and isinstance(judged["good"], Trust)
    assert judged["good"].noise == pytest.approx(1.96 * rand["comprehensiveness_std_error"])
    assert judged["good"].level == by_hand(
        0.6, rand["comprehensiveness"], 0.0, rand["sufficiency"], se=rand["comprehensiveness_std_error"]
    )
    # without finite random rankings there is no verdict
    assert trust_of_views({"good": faith["good"]}, output="probability", output_range=1.0, negligible=0) == {}


def test_over_texts_the_noise_is_the_standard_error_of_the_paired_margins():
    comp = [0.5, 0.4, 0.3, 0.45]
    rand = [0.1, 0.2, 0.25, 0.05]
    suff, rand_suff = [0.1, 0.1, 0.2, 0.1], [0.3, 0.3, 0.3, 0.3]
    t = trust_over_texts(comp, rand, suff, rand_suff, output="probability", output_range=1.0, negligible=0.01)
    margins = np.subtract(comp, rand)
    se = margins.std(ddof=1) / math.sqrt(len(margins))
    assert t.margin == pytest.approx(margins.mean())
    assert t.noise == pytest.approx(1.96 * se)
    assert t.level == by_hand(np.mean(comp), np.mean(rand), np.mean(suff), np.mean(rand_suff), se=se)
    one = trust_over_texts([0.5], [0.1], [0.1], [0.3], output="probability", output_range=1.0, negligible=0)
    assert one.noise is None and one.level == "reliable"


def test_a_difference_too_small_to_print_is_said_in_words():
    t = trust(0.1000001, 0.1, std_error=1e-6)
    assert t.level == "no better than chance"
    assert t.sentence() == (
        "These attributions are no better than chance: taking their top tokens away changes the "
        "prediction about as much as taking as many random tokens away."
    )
