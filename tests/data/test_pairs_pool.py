"""`data pairs`' worker pool ends without killing a worker that is writing its result: Pool.terminate() killed
workers wherever they were, one killed while writing held the result queue's lock, and the pool's task handler
(putting its last sentinel there) never ended: an interrupted run hung in terminate() (seen once in `make test`,
tests/data/test_pairs.py's interrupted run). `_wind_down` collects the files in flight and joins; only past its
grace period does it terminate."""
from __future__ import annotations

import multiprocessing as mp
import threading
import time

from sqtool.data import pairs


def _slow(x: float) -> float:
    time.sleep(x)
    return x


def _pool_on(delays):
    stop, sem = threading.Event(), threading.Semaphore(4)
    pool = mp.get_context("fork").Pool(2, pairs._ignore_sigint)
    return pool, pool.imap(_slow, pairs._bounded(delays, sem, stop)), stop


def test_an_interrupted_pool_collects_its_files_in_flight_and_no_worker_is_killed():
    pool, results, stop = _pool_on([0.01] + [0.3] * 50)
    assert next(results) == 0.01                     # the main loop took one result, then was interrupted
    stop.set()                                       # (mine_pairs' finally): no further file is handed out
    workers = list(pool._pool)
    pairs._wind_down(pool, results)
    assert [w.exitcode for w in workers] == [0, 0]   # ended by their sentinel, not terminated (-15)


def test_a_file_in_flight_past_the_grace_period_is_terminated():
    pool, results, stop = _pool_on([0.01, 60.0, 60.0])
    assert next(results) == 0.01
    stop.set()
    workers = list(pool._pool)
    pairs._wind_down(pool, results, grace_s=0.2)     # a stuck file does not hold the command's exit
    assert all(w.exitcode == -15 for w in workers)
