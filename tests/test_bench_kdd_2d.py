"""`bench kdd-2d` runs end to end at smoke size: both tables, the honest note, the RESULT line, the JSON files."""

import json

import torch

import workbench.bench.kdd_2d  # noqa: F401  (registers "kdd-2d" even before the lead lists it in _MODULES)
from workbench.cli import main


def test_kdd_2d_bench_smoke(tmp_path, capsys):
    threads = torch.get_num_threads()
    try:
        assert main(["bench", "kdd-2d", "--preset", "smoke", "--seeds", "2", "--threads", "1",
                     "--out", str(tmp_path)]) == 0
    finally:
        torch.set_num_threads(threads)
    out = capsys.readouterr().out
    lines = out.strip().splitlines()
    line = lines[-1]
    assert line.startswith("RESULT kdd-2d ")
    pairs = dict(item.split("=") for item in line.split()[2:])
    assert list(pairs) == ["tau", "hinge_modes", "kdd_modes", "joint_modes", "hinge_hq", "kdd_hq", "joint_hq"]
    assert float(pairs["tau"]) == 0.05  # the thesis' τ for unconditional runs (table 6.1)
    assert all(0 <= float(pairs[f"{loss}_modes"]) <= 25 for loss in ("hinge", "kdd", "joint"))
    assert all(0 <= float(pairs[f"{loss}_hq"]) <= 100 for loss in ("hinge", "kdd", "joint"))
    assert "## Figure 6.1" in out and "energy_distance" in out and "modes per seed" in out
    note = next(text for text in lines if text.startswith("note: grid25:"))  # the honest verdict, either way
    hinge_wins = float(pairs["hinge_modes"]) >= max(float(pairs["kdd_modes"]), float(pairs["joint_modes"]))
    assert ("neither KDD nor Joint covers more modes than hinge" in note) == hinge_wins
    saved = json.loads((tmp_path / "kdd-2d.json").read_text())
    assert {row["benchmark"] for row in saved["table"]} == {"ring8", "grid25"} and len(saved["table"]) == 6
    figure = json.loads((tmp_path / "kdd-2d-figure-6-1.json").read_text())
    hinge = next(r for r in figure["table"] if r["lr reading"] == "mean" and r["fake cloud"] == "hinge")
    start = next(r for r in figure["table"] if r["fake cloud"] == "initial")
    assert abs(hinge["cov_xx"] - start["cov_xx"]) < 1e-5  # the hinge step only translates


def test_kdd_2d_bench_subset_and_bad_names(tmp_path, capsys):
    assert main(["bench", "kdd-2d", "--preset", "smoke", "--seeds", "1", "--mixtures", "ring8", "--losses", "hinge",
                 "kdd", "--steps", "3", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    line = out.strip().splitlines()[-1]  # no 25-grid run: the RESULT figures are the ring's
    assert line.startswith("RESULT kdd-2d tau=0.05 hinge_modes=") and "kdd_hq=" in line and "joint" not in line
    assert "RESULT figures: ring8" in out
    try:
        main(["bench", "kdd-2d", "--preset", "smoke", "--losses", "wgan", "--out", str(tmp_path)])
    except SystemExit as error:
        assert "unknown loss 'wgan'" in str(error)
    else:
        raise AssertionError("an unknown loss must stop the bench")


def test_kdd_2d_tau_sweep(tmp_path, capsys):
    """--tau-sweep trains KDD and Joint at every τ and hinge once; each τ has its RESULT keys."""
    assert main(["bench", "kdd-2d", "--preset", "smoke", "--seeds", "1", "--mixtures", "grid25", "--steps", "2",
                 "--tau-sweep", "0.05", "1", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    pairs = dict(item.split("=") for item in out.strip().splitlines()[-1].split()[2:])
    assert list(pairs) == ["hinge_modes", "kdd_modes_tau0.05", "joint_modes_tau0.05", "kdd_modes_tau1",
                           "joint_modes_tau1", "hinge_hq", "kdd_hq_tau0.05", "joint_hq_tau0.05", "kdd_hq_tau1",
                           "joint_hq_tau1"]
    saved = json.loads((tmp_path / "kdd-2d.json").read_text())
    assert [(row["loss"], row["tau"]) for row in saved["table"]] == [
        ("hinge", "-"), ("kdd", "0.05"), ("joint", "0.05"), ("kdd", "1"), ("joint", "1")]
    assert "τ in 0.05, 1 (--tau-sweep)" in out
    assert main(["bench", "kdd-2d", "--preset", "smoke", "--tau", "0.1", "--tau-sweep", "--out", str(tmp_path)]) == 2
    assert "--tau and --tau-sweep" in capsys.readouterr().err


def test_kdd_2d_workers_give_the_same_figures(tmp_path, capsys):
    """--workers trains the runs in separate processes; every run draws from its seed, so the table is the same."""
    argv = ["bench", "kdd-2d", "--preset", "smoke", "--seeds", "2", "--mixtures", "ring8", "--losses", "hinge", "kdd",
            "--steps", "3", "--threads", "1"]
    threads = torch.get_num_threads()
    try:
        assert main([*argv, "--out", str(tmp_path / "one")]) == 0
        assert main([*argv, "--workers", "2", "--out", str(tmp_path / "two")]) == 0
    finally:
        torch.set_num_threads(threads)
    capsys.readouterr()
    tables = [json.loads((tmp_path / name / "kdd-2d.json").read_text())["table"] for name in ("one", "two")]
    strip = lambda table: [{k: v for k, v in row.items() if k != "s/run"} for row in table]  # timings differ
    assert strip(tables[0]) == strip(tables[1]) and len(tables[0]) == 2
    assert main(["bench", "kdd-2d", "--preset", "smoke", "--workers", "0", "--out", str(tmp_path)]) == 2
