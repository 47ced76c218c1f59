"""report.json: the run's context beside rows whose numbers are rounded."""
import json

from dld.evaluation.comparison import ROW_KEYS
from dld.evaluation.report import report_rows, write_report


def test_rows_are_rounded_to_four_decimals():
    rows = report_rows([{"name": "teacher x0.8", "det_hmean": 100 * (0.1 + 0.7), "gflops": 0.1 + 0.2,
                         "images_per_s": 7, "lexicon": "generic"}])
    assert rows == [{**{k: None for k in ROW_KEYS}, "name": "teacher x0.8", "det_hmean": 80.0, "gflops": 0.3,
                     "images_per_s": 7}]


def test_report_json_carries_the_run_and_the_rows(tmp_path):
    rows = [{"name": "teacher x1", "det_hmean": 90.00000000000001, "e2e_hmean": 40.0, "gflops": 10.0,
             "images_per_s": 3.0, "mean_scale": 1.0}]
    header = [("preset", "`quick`"), ("command", "`python tools/run_dld_demo.py --preset quick`")]
    write_report(rows, str(tmp_path), {}, header=header)
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["run"] == {"preset": "quick", "command": "python tools/run_dld_demo.py --preset quick"}
    assert report["rows"][0]["det_hmean"] == 90.0 and report["rows"][0]["name"] == "teacher x1"
