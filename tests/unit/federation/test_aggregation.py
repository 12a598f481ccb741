import numpy as np
import pytest

from fedtab.federation.aggregation import (
    histogram_wasserstein,
    js_distance,
    party_distances,
    row_count_weights,
    similarity_weights,
    weighted_average,
)


def test_weighted_average_by_hand():
    a = {"w": np.array([1.0, 2.0], dtype=np.float32), "n": np.array(10, dtype=np.int64)}
    b = {"w": np.array([3.0, 6.0], dtype=np.float32), "n": np.array(21, dtype=np.int64)}
    out = weighted_average([a, b], [1.0, 3.0])
    np.testing.assert_allclose(out["w"], [2.5, 5.0])
    assert out["w"].dtype == np.float32
    assert out["n"].dtype == np.int64 and int(out["n"]) == 18  # 0.25*10 + 0.75*21 = 18.25 -> 18


def test_row_count_weights_sum_to_one():
    np.testing.assert_allclose(row_count_weights([100, 300]), [0.25, 0.75])


def test_similarity_weights_penalise_the_outlier_party():
    distances = np.array([[0.1, 0.1], [0.1, 0.1], [0.8, 0.8]])
    rows = [100, 100, 100]
    plain = similarity_weights(distances, rows, softmax=False)
    # S = [0.2, 0.2, 1.6]/2 -> share [0.1, 0.1, 0.8]; w' = [0.9, 0.9, 0.2]/3, normalised:
    np.testing.assert_allclose(plain, np.array([0.9, 0.9, 0.2]) / 2.0)
    soft = similarity_weights(distances, rows, softmax=True)
    assert soft[2] < soft[0]
    assert soft.max() - soft.min() < plain.max() - plain.min()  # the softmax flattens, as Fed-TGAN's does


def test_similarity_weights_equal_parties_are_fedavg():
    np.testing.assert_allclose(similarity_weights(np.zeros((2, 3)), [10, 30], softmax=False), [0.25, 0.75])


def test_distances_best_and_worst():
    assert js_distance(np.array([5, 5]), np.array([1, 1])) == pytest.approx(0.0)
    assert js_distance(np.array([1, 0]), np.array([0, 1])) == pytest.approx(1.0)
    assert histogram_wasserstein(np.array([1, 0, 0, 0]), np.array([1, 0, 0, 0])) == pytest.approx(0.0)
    assert histogram_wasserstein(np.array([1, 0, 0, 0]), np.array([0, 0, 0, 1])) == pytest.approx(0.75)


def test_party_distances_shape_and_order():
    marginals = [{"c": np.array([10, 0]), "x": np.array([5, 5])}, {"c": np.array([0, 10]), "x": np.array([5, 5])}]
    d = party_distances(marginals, {"c": "categorical", "x": "numerical"})
    assert d.shape == (2, 2)
    assert d[0, 0] > 0.5 and d[0, 1] == pytest.approx(0.0)


def test_server_step_by_hand():
    from fedtab.federation.aggregation import server_step

    previous = {"w": np.array([1.0, -2.0], dtype=np.float32), "bn.running_mean": np.array([0.0]), "bn.num_batches_tracked": np.array(4)}
    mean = {"w": np.array([1.5, -1.0], dtype=np.float32), "bn.running_mean": np.array([0.4]), "bn.num_batches_tracked": np.array(6)}
    out = server_step(previous, mean, 2.0)
    np.testing.assert_allclose(out["w"], [2.0, 0.0])  # 1 + 2·0.5, −2 + 2·1
    assert out["w"].dtype == np.float32
    np.testing.assert_allclose(out["bn.running_mean"], [0.4])  # statistics keep the mean
    assert int(out["bn.num_batches_tracked"]) == 6
    assert server_step(previous, mean, 1.0) is mean
