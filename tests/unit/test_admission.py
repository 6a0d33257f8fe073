"""Admission to the inference threads: a count cap and an expected-wait cap."""

from __future__ import annotations

from routeiq.inference.admission import EmbedQueue


def test_free_threads_always_admit_even_when_embeddings_are_slow() -> None:
    queue = EmbedQueue(threads=2, depth_per_thread=8, max_wait_s=0.03)
    queue.observe(1.0)  # a very slow machine
    assert queue.try_acquire() and queue.try_acquire()  # two threads free: no wait
    assert not queue.try_acquire()  # the third would wait ~0.5 s
    queue.release()
    assert queue.try_acquire()


def test_expected_wait_admits_more_when_embeddings_are_fast() -> None:
    fast = EmbedQueue(threads=2, depth_per_thread=8, max_wait_s=0.03)
    fast.observe(0.005)
    admitted = 0
    while fast.try_acquire():
        admitted += 1
    # k in flight waits (k - 2 + 1) * 5 ms / 2 <= 30 ms  ->  k <= 13 admitted before refusal
    assert admitted == 14
    assert fast.expected_wait_s() > 0.03


def test_count_cap_holds_before_the_first_measurement() -> None:
    queue = EmbedQueue(threads=2, depth_per_thread=3, max_wait_s=10.0)
    assert [queue.try_acquire() for _ in range(7)] == [True] * 6 + [False]


def test_moving_average_follows_the_machine() -> None:
    queue = EmbedQueue(threads=1, depth_per_thread=100, max_wait_s=0.05)
    queue.observe(0.002)
    for _ in range(60):
        queue.observe(0.020)  # neighbours arrive: embeddings get 10x slower
    assert 0.018 < queue.avg_embed_s <= 0.020
    admitted = 0
    while queue.try_acquire():
        admitted += 1
    assert admitted == 3  # waits of 0, 20, 40 ms admitted; 60 ms refused
