"""The eval-speed benchmark runs, with few small masks, and reports its figures."""

import argparse

from workbench.bench import BENCHMARKS, load_all, result_line


def test_eval_speed_benchmark_small():
    load_all()
    bench = BENCHMARKS["eval-speed"]
    parser = argparse.ArgumentParser()
    parser.add_argument("--preset", default="smoke")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    bench.add_arguments(parser)
    result = bench.run(parser.parse_args(["--n", "30", "--size", "48", "--chunk", "7", "--corloc"]))
    assert result.metrics["n"] == 30 and result.metrics["size"] == 48
    assert result.metrics["images_per_s"] > 0 and result.metrics["seconds"] > 0
    row = result.table.iloc[0]
    assert 0.5 < row["max_f_beta"] < 1.0  # noisy predictions of the ground truth: good, not perfect
    assert row["max_f_beta_per_image"] >= row["max_f_beta"]
    assert result_line(result).startswith("RESULT eval-speed n=30 size=48 ")
