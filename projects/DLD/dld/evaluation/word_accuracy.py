"""Word accuracy of a spotter's reader on the ground-truth words, detection factored out."""
from typing import Dict, List, Tuple

import torch
from detectron2.data import transforms as T

from ..data import TextDatasetMapper

__all__ = ["ground_truth_mapper", "read_ground_truth_words", "word_accuracy"]


def ground_truth_mapper(cfg) -> TextDatasetMapper:
    """The training mapper (it builds the word targets) with only the test-time resize."""
    kwargs = TextDatasetMapper.from_config(cfg, is_train=True)
    kwargs["augmentations"] = [T.ResizeShortestEdge(cfg.INPUT.MIN_SIZE_TEST, cfg.INPUT.MAX_SIZE_TEST, "choice")]
    return TextDatasetMapper(**kwargs)


@torch.no_grad()
def read_ground_truth_words(
    model, mapper: TextDatasetMapper, dataset_dicts: List[dict], beam_width: int = 1
) -> List[Tuple[str, str]]:
    """
    (truth, read) pairs of every readable cared word, each read from its ground-truth box and mask at full
    resolution (a DLD model: by its student).
    """
    model = getattr(model, "student", model)
    heads = model.roi_heads
    encoder = mapper.charset_encoder
    pairs = []
    for record in dataset_dicts:
        inputs = mapper(record)
        images = model.preprocess_image([inputs])
        features = model.backbone(images.tensor)
        boxes, masks, targets = heads.recognition_inputs([inputs["instances"].to(model.device)])
        if not len(targets):
            continue
        outputs = heads.text_head.encode(features[heads.text_in_feature], boxes, masks)
        ids, _ = heads.text_head.recognize(outputs.context, beam_width)
        pairs += list(zip(encoder.decode_batch(targets), encoder.decode_batch(ids)))
    return pairs


def word_accuracy(pairs: List[Tuple[str, str]]) -> Dict[str, float]:
    """Case-insensitive exact-match accuracy of (truth, read) pairs."""
    correct = sum(truth.lower() == read.lower() for truth, read in pairs)
    return {"words": len(pairs), "word_accuracy": correct / max(len(pairs), 1)}
