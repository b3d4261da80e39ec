"""Inductive Venn–Abers probabilities from hull bridges on the cumulative-sum diagram.

For calibration pairs (s_i, y_i) and a test score s, the inductive Venn–Abers predictor
(Vovk, Petej & Fedorova 2015) gives two probabilities: p_ℓ(s) is the isotonic (PAV) fit at s
of the calibration data with (s, ℓ) added, for ℓ ∈ {0, 1}; p₀ ≤ p₁.

Computation. Let u_1 < … < u_k be the distinct calibration scores and P_j = (W_j, C_j) the
cumulative-sum diagram (W_j the number of scores ≤ u_j, C_j their positives, P_0 = (0, 0)).
The isotonic fit of a block is the slope of the greatest convex minorant over it, which the
max–min formula writes as a bridge. Adding (s, ℓ) keeps the left part P_0 … P_a (blocks below
s) and shifts the right part to P_b + (1, ℓ), …, P_k + (1, ℓ) (the test block and above), so

    p_ℓ(s) = max_{l ≤ a} min_{r ≥ b} (C_r + ℓ − C_l) / (W_r + 1 − W_l),

with (a, b) = (g, g) when s lies strictly between u_g and u_{g+1}, and (j − 1, j) when s = u_j:
the slope of the lower common tangent of the two parts' lower hulls.

All prefix lower hulls form one tree (the parent of P_a is the vertex under it on Andrew's
monotone-chain stack when it is pushed), and all suffix hulls another; each hull is a root
path. The tangent from a left vertex to a right hull, and the bridge itself, are found by
binary lifting along those paths, vectorised over the 2(2k + 1) queries (every gap and tie,
for both labels): O(k log k) for the sort plus O(k log² h) for hulls of at most h vertices.
A test score then costs one binary search. Checked against the definition (refitting PAV
with the test point labelled 0 and 1) in the tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from assay._validation import FloatArray

IntArray = np.ndarray


@dataclass(frozen=True)
class _HullTree:
    """Lower hulls of all prefixes (or suffixes) as root paths, with binary-lifting tables."""

    lift: list[IntArray]  # lift[t][v]: the 2**t-th vertex after v on its hull path
    edge: FloatArray  # slope of the hull edge from v to its next vertex (±inf at the root)


def _hull_tree(x: FloatArray, y: FloatArray, *, from_right: bool) -> _HullTree:
    k = len(x)
    nxt = np.arange(k)
    depth = np.zeros(k, dtype=np.int64)
    xs, ys = x.tolist(), y.tolist()
    stack: list[int] = []
    order = range(k - 1, -1, -1) if from_right else range(k)
    for j in order:
        while len(stack) >= 2:
            o, m = stack[-2], stack[-1]
            cross = (xs[m] - xs[o]) * (ys[j] - ys[o]) - (ys[m] - ys[o]) * (xs[j] - xs[o])
            # Left to right a lower hull turns counter-clockwise; right to left, clockwise.
            if (cross < 0) if from_right else (cross > 0):
                break
            stack.pop()
        if stack:
            nxt[j] = stack[-1]
            depth[j] = depth[stack[-1]] + 1
        stack.append(j)
    root = nxt == np.arange(k)
    with np.errstate(divide="ignore", invalid="ignore"):
        edge = (y[nxt] - y) / (x[nxt] - x)
    edge[root] = np.inf if from_right else -np.inf
    lift = [nxt]
    while (1 << len(lift)) <= int(depth.max()):
        lift.append(lift[-1][lift[-1]])
    return _HullTree(lift, edge)


@dataclass(frozen=True)
class _Diagram:
    w: FloatArray
    c: FloatArray
    left: _HullTree
    right: _HullTree

    def tangent(self, lx: FloatArray, ly: FloatArray, start: IntArray, label: int) -> FloatArray:
        """Least slope from (lx, ly) to the right hull from ``start``, shifted by (1, label)."""

        def slope(r: IntArray) -> FloatArray:
            return np.asarray((self.c[r] + label - ly) / (self.w[r] + 1 - lx))

        v = start
        found = self.right.edge[v] >= slope(v)
        for step in reversed(self.right.lift):
            w = step[v]
            v = np.where(~found & (self.right.edge[w] < slope(w)), w, v)
        return slope(np.where(found, v, self.right.lift[0][v]))

    def bridge(self, a: IntArray, b: IntArray, label: int) -> FloatArray:
        """Max over left-hull vertices l ≤ a of the tangent slope from P_l to the right part."""

        def reach(v: IntArray) -> FloatArray:
            return self.tangent(self.w[v], self.c[v], b, label)

        v = a
        found = self.left.edge[v] <= reach(v)
        for step in reversed(self.left.lift):
            w = step[v]
            v = np.where(~found & (self.left.edge[w] > reach(w)), w, v)
        return reach(np.where(found, v, self.left.lift[0][v]))


@dataclass(frozen=True)
class VennAbersTable:
    """p₀ and p₁ for every gap between and every tie with the distinct calibration scores."""

    scores: FloatArray  # u_1 < … < u_k
    gap: FloatArray  # (k + 1, 2): s in (u_g, u_{g+1}), columns ℓ = 0, 1
    tie: FloatArray  # (k, 2): s = u_j

    def interval(self, s: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Return (p₀, p₁) per test score s: its tie row if s equals some u_j, else its gap row."""
        position, ties = _locate(self.scores, s)
        inside = np.minimum(position, len(self.scores) - 1)
        values = np.where(ties[:, None], self.tie[inside], self.gap[position])
        return values[:, 0], values[:, 1]


def _locate(unique: FloatArray, s: FloatArray) -> tuple[IntArray, np.ndarray]:
    """Per score: how many distinct calibration scores lie below it, and whether it ties one.

    A score that ties u_j (1-based j = position + 1) is the query (a, b) = (j − 1, j); any
    other score lies in the gap g = position, the query (g, g).
    """
    position = np.searchsorted(unique, s, side="left")
    inside = np.minimum(position, len(unique) - 1)
    return position, (position < len(unique)) & (unique[inside] == s)


def _diagram(scores: FloatArray, labels: FloatArray) -> tuple[FloatArray, _Diagram]:
    """Return the distinct calibration scores, their cumulative-sum diagram and both hull trees."""
    unique, inverse = np.unique(scores, return_inverse=True)
    k = len(unique)
    w = np.concatenate(([0.0], np.cumsum(np.bincount(inverse, minlength=k).astype(float))))
    c = np.concatenate(([0.0], np.cumsum(np.bincount(inverse, weights=labels, minlength=k))))
    return unique, _Diagram(
        w, c, _hull_tree(w, c, from_right=False), _hull_tree(w, c, from_right=True)
    )


def venn_abers_table(scores: FloatArray, labels: FloatArray) -> VennAbersTable:
    """Precompute the inductive Venn–Abers pair (p₀, p₁) at every gap and tie."""
    unique, diagram = _diagram(scores, labels)
    k = len(unique)
    gaps = np.arange(k + 1)
    ties = np.arange(1, k + 1)
    gap = np.column_stack([diagram.bridge(gaps, gaps, label) for label in (0, 1)])
    tie = np.column_stack([diagram.bridge(ties - 1, ties, label) for label in (0, 1)])
    return VennAbersTable(unique, gap, tie)


def venn_abers_interval(
    scores: FloatArray, labels: FloatArray, test: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """(p₀, p₁) at the ``test`` scores only, equal to ``venn_abers_table(...).interval(test)``.

    Only the gaps and ties the test scores fall in are bridged (each distinct one once), so
    predicting a held-out fold costs its distinct positions, not all 2k + 1 of the table.
    """
    unique, diagram = _diagram(scores, labels)
    position, ties = _locate(unique, test)
    query, back = np.unique(2 * position + ties, return_inverse=True)
    a = query // 2
    p = [diagram.bridge(a, a + query % 2, label)[back] for label in (0, 1)]
    return p[0], p[1]
