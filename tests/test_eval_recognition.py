"""tools/eval_recognition.py: every readable cared word of the images, paired with what the branch read."""
import torch
from detectron2.data import DatasetCatalog
from detectron2.modeling import build_model

from conftest import REPO_ROOT
from dld.data import build_charset_encoder
from dld.modeling.text_head import TextRecognitionHead, TextROIHeads
from test_dld_table import TEACHER_CONFIG, TINY, _cfg, _tool


def test_pairs_every_readable_cared_word_with_its_reading(tmp_path, monkeypatch, single_thread):
    datasets = tmp_path / "datasets"
    _tool("generate_synthetic_data").main(
        ["--num-val", "2", "--splits", "val", "--output", str(datasets), "--num-workers", "1", "--no-progress",
         "--opts", "DATASETS.SYNTH.IMAGE_SIZE", "128"]
    )
    monkeypatch.setenv("DETECTRON2_DATASETS", str(datasets))
    monkeypatch.syspath_prepend(str(REPO_ROOT / "tools"))  # the tool imports its sibling dld_table.py
    torch.manual_seed(0)
    cfg = _cfg(TEACHER_CONFIG, TINY)
    weights = tmp_path / "spotter.pth"
    torch.save({"model": build_model(cfg).state_dict()}, weights)
    encoder = build_charset_encoder(cfg)
    truth = [a["text"].lower() for d in DatasetCatalog.get("synth_text_val")
             for a in d["annotations"] if not a["iscrowd"] and encoder.can_encode(a["text"])]
    assert truth  # the check below needs words
    argv = ["--config-file", str(TEACHER_CONFIG), "--weights", str(weights), "--opts", *TINY]

    result = _tool("eval_recognition").main(argv)
    assert (result["images"], result["words"]) == (2, len(truth))
    assert result["word_accuracy"] < 0.5  # random weights read (almost) nothing

    # A branch that reads each word's own target back: every word correct, so pairs and order are right.
    read_back = []
    original_inputs = TextROIHeads.recognition_inputs

    def recognition_inputs(self, targets, jitter_copies=0):
        boxes, masks, texts = original_inputs(self, targets, jitter_copies)
        read_back.append(texts)
        return boxes, masks, texts

    monkeypatch.setattr(TextROIHeads, "recognition_inputs", recognition_inputs)
    monkeypatch.setattr(TextRecognitionHead, "recognize", lambda self, context, beam=1: (read_back[-1], None))
    result = _tool("eval_recognition").main(argv)
    assert result["word_accuracy"] == 1.0 and result["words"] == len(truth)
    assert [encoder.decode(t.tolist()) for batch in read_back for t in batch] == truth
