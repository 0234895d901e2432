"""Leave-one-out occlusion: what each player adds on top of all the others."""

from __future__ import annotations

import numpy as np

from attnreport.analysis.shapley.game import ValueFunction, check_players, evaluate


def occlusion(value: ValueFunction, players: int) -> np.ndarray:
    """Leave-one-out importance ``v(N) − v(N ∖ {i})`` for every player, in one batched call.

    The cheapest attribution (p + 1 evaluations) and the reference the other views are
    compared with: it sees only what each player adds on top of all the others, so it
    misses redundancy (two tokens that each carry the same evidence both score near zero).
    """
    p = check_players(players)
    masks = np.ones((p + 1, p), dtype=bool)
    masks[np.arange(1, p + 1), np.arange(p)] = False
    v = evaluate(value, masks)
    return v[0] - v[1:]
