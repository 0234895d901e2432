"""`step_scores` in float32 against a float64 reference written here: the same ids, ranks and top-k
(exactly, ties included), probabilities and entropies within float32 rounding, on rows shaped like a
real LM's (a 49,152-token vocabulary, sure steps and unsure ones) and on planted ties."""

from __future__ import annotations

import numpy as np
import pytest

from attnreport.trace.lens import step_scores

VOCAB = 49_152


def reference(logits: np.ndarray, chosen: np.ndarray, k: int) -> dict[str, np.ndarray]:
    """The scores by their definitions, in float64, one row at a time; top-k by a full stable sort."""
    out: dict[str, list] = {f: [] for f in ("probability", "rank", "entropy", "top_ids", "top_probabilities")}
    for row, c in zip(logits.astype(np.float64), chosen, strict=True):
        p = np.exp(row - row.max())
        p /= p.sum()
        order = sorted(range(len(row)), key=lambda i: (-row[i], i))[:k]
        out["probability"].append(p[c])
        out["rank"].append(int((row > row[c]).sum()))
        out["entropy"].append(-(p[p > 0] * np.log(p[p > 0])).sum())
        out["top_ids"].append(order)
        out["top_probabilities"].append(p[order])
    return {f: np.asarray(v) for f, v in out.items()}


def lm_rows(rng: np.random.Generator, m: int, vocab: int = VOCAB) -> np.ndarray:
    """Logits like a real LM's: a spread of unsure rows, and sure ones whose best token stands far out."""
    logits = (rng.standard_normal((m, vocab)) * 2.5).astype(np.float32)
    sure = rng.integers(0, vocab, m)
    margin = np.linspace(0, 30, m).astype(np.float32)  # from unsure to a probability of 1 - 1e-9
    logits[np.arange(m), sure] += margin
    return logits


def check(logits: np.ndarray, chosen: np.ndarray, k: int) -> None:
    got, want = step_scores(logits, chosen, k), reference(logits, chosen, k)
    np.testing.assert_array_equal(got.rank, want["rank"])
    np.testing.assert_array_equal(got.top_ids, want["top_ids"])
    np.testing.assert_allclose(got.probability, want["probability"], rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(got.top_probabilities, want["top_probabilities"], rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(got.entropy, want["entropy"], rtol=1e-4, atol=1e-7)
    assert got.probability.dtype == np.float32 and got.top_ids.dtype == np.int64


@pytest.mark.parametrize("k", [1, 5, 20])
def test_float32_scores_equal_a_float64_reference_on_lm_like_rows(k):
    rng = np.random.default_rng(k)
    logits = lm_rows(rng, 31)
    best = logits.argmax(axis=1)
    # the chosen token: the best, the runner-up, or one from anywhere in the vocabulary
    chosen = np.where(np.arange(31) % 3 == 0, best, rng.integers(0, VOCAB, 31))
    chosen[1::3] = np.argsort(-logits[1::3], axis=1)[:, 1]
    check(logits, chosen, k)


def test_ties_go_to_the_smaller_id_also_across_the_kth_place():
    """A tie that straddles the k-th place keeps the smaller ids, whatever argpartition picked; the
    chosen token's rank counts the tie in its favour."""
    logits = np.zeros((3, 40), np.float32)
    logits[0, [30, 3, 17, 9]] = 2.0  # four tied best, k = 2: ids 3 and 9
    logits[1, 5] = 3.0
    logits[1, [38, 1, 22]] = 1.0  # one best, then three tied for second and third: 5, 1, 22
    logits[2] = np.linspace(1, 0, 40, dtype=np.float32)[::-1]  # strictly ordered, best last
    got = step_scores(logits, np.asarray([17, 22, 0]), 3)
    assert got.top_ids.tolist() == [[3, 9, 17], [5, 1, 22], [39, 38, 37]]
    assert got.rank.tolist() == [0, 1, 39]
    check(logits, np.asarray([17, 22, 0]), 3)
    # every row a tie: k beyond the ties, and k equal to the vocabulary
    flat = np.ones((2, 8), np.float32)
    assert step_scores(flat, np.asarray([7, 0]), 3).top_ids.tolist() == [[0, 1, 2]] * 2
    check(flat, np.asarray([7, 0]), 8)


def test_blocks_of_rows_score_as_one():
    """Rows scored in blocks (a block holds at most `BLOCK` values) give what each row alone gives."""
    rng = np.random.default_rng(3)
    logits = lm_rows(rng, 200)
    chosen = rng.integers(0, VOCAB, 200)
    whole = step_scores(logits, chosen, 5)
    for i in (0, 85, 199):
        one = step_scores(logits[i : i + 1], chosen[i : i + 1], 5)
        assert one.probability[0] == whole.probability[i] and one.entropy[0] == whole.entropy[i]
        assert one.top_ids[0].tolist() == whole.top_ids[i].tolist()


@pytest.mark.parametrize("vocab", [5_000, 49_152])
def test_top_k_of_a_large_vocabulary_with_ties_at_the_kth_place(vocab):
    """The chunked top-k (a vocabulary of several chunks, whole or not) against a full stable sort,
    with ties straddling the k-th place, spread over chunks, and in the last, partial chunk."""
    rng = np.random.default_rng(vocab)
    logits = rng.standard_normal((6, vocab)).astype(np.float32)
    logits[0, [vocab - 1, 7, 3000, 1024]] = 9.0  # four tied best, k = 3
    logits[1, 11] = 10.0
    logits[1, [vocab - 2, 2047, 2048, 4]] = 8.0  # one best, four tied behind it
    logits[2, : vocab // 2] = 5.0  # half the row tied best
    chosen = np.asarray([3000, 2048, 1, 0, 5, vocab - 1])
    got = step_scores(logits, chosen, 3)
    assert got.top_ids[0].tolist() == [7, 1024, 3000]
    assert got.top_ids[1].tolist() == [11, 4, 2047]
    assert got.top_ids[2].tolist() == [0, 1, 2] and got.rank[2] == 0
    check(logits, chosen, 3)
