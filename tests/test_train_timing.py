"""Stopwatch: CPU and wall time of a block, and the machine they were measured on."""

import time

from workbench.train.timing import Stopwatch, machine


def test_the_stopwatch_tells_cpu_time_from_waiting():
    with Stopwatch("wait") as watch:
        time.sleep(0.3)  # waiting costs wall time, not CPU time
    assert watch.wall >= 0.3 and watch.cpu < 0.2
    with Stopwatch("work") as busy:
        total = 0
        while busy.cpu < 0.05:
            total += 1
    assert busy.cpu >= 0.05 and busy.wall >= busy.cpu * 0.5
    text = str(watch)
    assert text.startswith("wait: ") and "CPU s" in text and "s wall) on " in text and machine() in text
    assert "torch thread" in machine()
