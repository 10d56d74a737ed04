"""Half-life decay and the decayed accumulator kept per contact and engagement rule.

An event worth ``p`` points at time ``t0`` is worth ``p · 2^(-(t - t0)/h)`` at time ``t``, where
``h`` is the half-life in seconds: after exactly one half-life it is worth half. (The
``e^(-t/h)`` form found in marketing articles is the mean-lifetime form: after ``h`` it leaves
36.8 %, not 50 %.) A half-life of ``None`` means "never": points keep their full value.

:class:`Accumulator` is the pair ``(s, t_ref)``: the decayed value ``s`` of everything a rule
counted, as of the reference time ``t_ref``. Adding a point, reading it and merging two
accumulators are O(1) and exact whatever the order of arrival, which is what lets the bulk
(replay) path and the incremental (one event at a time) path agree to floating-point precision.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


def decay_factor(dt: float, half_life: float | None) -> float:
    """Share of its value that a contribution keeps after ``dt`` seconds: ``2^(-dt/h)``.

    ``half_life=None`` (never decays) always gives 1.0. ``dt`` may be negative, in which case the
    factor is above 1 (back-extrapolation).
    """
    if half_life is None:
        return 1.0
    return 2.0 ** (-dt / half_life)


@dataclass(frozen=True, slots=True)
class Accumulator:
    """Decayed sum ``s`` of a rule's points as of ``t_ref`` (seconds since the epoch).

    The empty accumulator has ``s == 0`` and ``t_ref == -inf``; every operation returns a new
    accumulator, the current one is never changed. Keeping ``t_ref`` at the latest counted
    event (the landmark moves on every write) keeps ``s`` in floating-point range whatever the
    half-life.
    """

    s: float
    t_ref: float

    @classmethod
    def empty(cls) -> Accumulator:
        """Accumulator of a rule that counted nothing yet."""
        return cls(0.0, -math.inf)

    @property
    def is_empty(self) -> bool:
        """True when nothing was ever added."""
        return self.t_ref == -math.inf

    def add(self, points: float, t: float, half_life: float | None) -> Accumulator:
        """Count ``points`` earned at time ``t``, which may be before or after ``t_ref``.

        After ``t_ref``: the held sum decays to ``t`` and the points join it at full value.
        Before ``t_ref`` (a late event): the points join already decayed to ``t_ref``.
        """
        if self.is_empty:
            return Accumulator(float(points), float(t))
        if t >= self.t_ref:
            return Accumulator(self.s * decay_factor(t - self.t_ref, half_life) + points, float(t))
        return Accumulator(self.s + points * decay_factor(self.t_ref - t, half_life), self.t_ref)

    def value_at(self, t: float, half_life: float | None) -> float:
        """Decayed value at ``t``: ``s · 2^(-(t - t_ref)/h)``.

        Only meaningful for ``t >= t_ref``. For an earlier ``t`` the result is the
        back-extrapolation of the current sum, which wrongly includes the events counted after
        ``t``: callers asking for a past moment must replay the events with ``ts <= t`` instead
        (see :func:`leadscore.core.scoring.score_contact`).
        """
        if self.is_empty:
            return 0.0
        return self.s * decay_factor(t - self.t_ref, half_life)

    def merge(self, other: Accumulator, half_life: float | None) -> Accumulator:
        """Accumulator of the union of what both counted (commutative, O(1))."""
        if other.is_empty:
            return self
        if self.is_empty:
            return other
        if other.t_ref > self.t_ref:
            later, earlier = other, self
        else:
            later, earlier = self, other
        s = later.s + earlier.s * decay_factor(later.t_ref - earlier.t_ref, half_life)
        return Accumulator(s, later.t_ref)
