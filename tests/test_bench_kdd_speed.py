"""The kdd-speed benchmark: a smoke run through the command line prints its RESULT line and JSON."""

import json

import workbench.bench.kdd_speed  # noqa: F401  (registers kdd-speed)
from workbench.cli import main


def test_kdd_speed_smoke(tmp_path, capsys):
    assert main(["bench", "kdd-speed", "--preset", "smoke", "--repeats", "1", "--warmup", "0", "--clock", "cpu",
                 "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    line = out.strip().splitlines()[-1]
    assert line.startswith("RESULT kdd-speed hinge_s=")
    figures = dict(pair.split("=") for pair in line.split()[2:])
    assert {"hinge_s", "kdd_s", "ratio", "da3_ratio", "dagger_ratio", "batch"} <= set(figures)
    assert figures["batch"] == "8" and figures["clock"] == "cpu" and float(figures["ratio"]) > 0 and float(figures["hinge_s"]) > 0
    assert "kdd + DA ×3" in out
    payload = json.loads((tmp_path / "kdd-speed.json").read_text())
    assert [row["loss"] for row in payload["table"]] == ["hinge", "kdd", "kdd†", "kdd + DA ×3"]
