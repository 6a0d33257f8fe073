from __future__ import annotations

import numpy as np

from routeiq.routing_metrics import routing_curve


def test_perfect_oracle_and_reverse_and_random() -> None:
    rng = np.random.default_rng(0)
    weak = rng.integers(0, 2, 2000).astype(float)
    strong = np.maximum(weak, rng.integers(0, 2, 2000))
    gain = strong - weak
    oracle = routing_curve(gain, strong, weak)
    reverse = routing_curve(-gain, strong, weak)
    random = routing_curve(rng.random(2000), strong, weak)
    assert oracle.apgr > 0.7 and reverse.apgr < 0.3
    assert abs(random.apgr - 0.5) < 0.05
    assert oracle.cpt50 < random.cpt50 < reverse.cpt50
    assert oracle.pgr[0] == 0.0 and abs(oracle.pgr[-1] - 1.0) < 1e-12


def test_ties_are_broken_by_input_order() -> None:
    strong, weak = np.array([1.0, 1.0, 0.0, 1.0]), np.array([0.0, 1.0, 0.0, 0.0])
    curve = routing_curve(np.zeros(4), strong, weak, steps=4)
    np.testing.assert_allclose(curve.pgr, [0.0, 0.5, 0.5, 0.5, 1.0])
