"""The registered ICDAR test split finds its GT zip and lexicons under $DETECTRON2_DATASETS through metadata."""
import os

import numpy as np
import torch
from detectron2.structures import Instances

from dld.evaluation import TextSpottingEvaluator
from dld.evaluation.submission import read_gt_zip


def test_ic15_test_evaluator_reads_gt_zip_and_lexicons_from_the_datasets_root(shared_data, tmp_path, monkeypatch):
    # the layout of datasets/README.md: evaluation/<gt zips> and evaluation/lexicons/
    (tmp_path / "evaluation").mkdir()
    for name in ("gt-icdar2015.zip",):
        os.symlink(shared_data / "eval/gts" / name, tmp_path / "evaluation" / name)
    os.symlink(shared_data / "eval/lexicons", tmp_path / "evaluation/lexicons")
    monkeypatch.setenv("DETECTRON2_DATASETS", str(tmp_path))
    evaluator = TextSpottingEvaluator("ic15_test", output_dir=str(tmp_path / "out"), distributed=False)
    gt = read_gt_zip(str(shared_data / "eval/gts/gt-icdar2015.zip"))
    evaluator.reset()
    for image_id in sorted(gt)[:40]:
        words = [w for w in gt[image_id] if not w.ignore]
        inst = Instances((720, 1280))
        inst.scores = torch.ones(len(words))
        inst.pred_polygons = [np.asarray(w.polygon, dtype=np.float32) for w in words]
        inst.pred_texts = [w.text for w in words]
        inst.text_scores = torch.ones(len(words))
        evaluator.process([{"image_id": image_id, "file_name": f"img_{image_id}.jpg"}], [{"instances": inst}])
    metrics = evaluator.evaluate()["text"]
    assert metrics["num_images"] == 40
    assert metrics["det_hmean"] == 1.0 and metrics["e2e_hmean"] == 1.0
    for kind in ("strong", "weak", "generic"):
        assert 0.9 < metrics[f"e2e_hmean_{kind}"] <= 1.0
    assert (tmp_path / "out/submission.zip").is_file()
