"""TextVisualizer: Detectron2's Visualizer drawing words (polygons, transcriptions, scores)."""
from typing import List, Optional, Sequence, Tuple

import numpy as np
from detectron2.structures import BoxMode
from detectron2.utils.visualizer import VisImage, Visualizer

__all__ = ["TextVisualizer"]

_WORD_COLOR = (0.1, 0.9, 0.2)
_DONT_CARE_COLOR = (0.9, 0.2, 0.2)


# Width of a character and height of a line of the labels (with the box's padding), in font sizes.
_CHAR_WIDTH = 0.65
_LINE_HEIGHT = 1.45


class TextVisualizer(Visualizer):
    """
    Draws each word's polygon with its transcription (and score) next to it. Labels are laid out so that they do
    not cover each other: above the word where that place is free, else below it, else the nearest free row.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._label_boxes: List[Tuple[float, float, float, float]] = []  # x0, y0, x1, y1 of each drawn label

    def draw_words(
        self,
        polygons: Sequence[np.ndarray],
        texts: Sequence[str],
        scores: Optional[Sequence[float]] = None,
        colors: Optional[Sequence] = None,
        alpha: float = 0.25,
    ) -> VisImage:
        font_size = max(self._default_font_size * 0.8, 6)
        for i, (poly, text) in enumerate(zip(polygons, texts)):
            poly = np.asarray(poly, dtype=np.float32).reshape(-1, 2)
            if len(poly) < 3:
                continue
            color = colors[i] if colors is not None else _WORD_COLOR
            self.draw_polygon(poly, color, alpha=alpha)
            label = text if scores is None else f"{text} ({scores[i]:.2f})"
            x, y = self._place_label(poly, len(label), font_size)
            # matplotlib reads text between two "$" as mathtext: a word like "$5 $9" would fail to draw.
            self.draw_text(
                label.replace("$", r"\$"), (x, y), color=color, horizontal_alignment="left", font_size=font_size
            )
        return self.output

    def _place_label(self, poly: np.ndarray, num_chars: int, font_size: float) -> Tuple[float, float]:
        """
        Top-left corner of a label of `num_chars` characters for the word `poly`: the first place among above
        the word, below it, then rows further up and down, that covers neither another label nor its own word;
        else the least covered one.
        """
        # Font sizes are in points: a point is dpi / 72 pixels of the output.
        em = font_size * self.output.scale * self.output.fig.get_dpi() / 72.0
        width, height = num_chars * em * _CHAR_WIDTH, em * _LINE_HEIGHT
        x0 = float(min(max(poly[:, 0].min(), 0.0), max(self.output.width - width, 0.0)))
        top, bottom = float(poly[:, 1].min()), float(poly[:, 1].max())
        candidates = [top - height, bottom]
        for step in range(1, 6):
            candidates += [top - height * (step + 1), bottom + height * step]
        best, best_overlap = None, float("inf")
        for y0 in candidates:
            y0 = min(max(y0, 0.0), max(self.output.height - height, 0.0))
            box = (x0, y0, x0 + width, y0 + height)
            own_word = (*poly.min(axis=0), *poly.max(axis=0))
            overlap = sum(_overlap_area(box, other) for other in self._label_boxes) + _overlap_area(box, own_word)
            if overlap < best_overlap:
                best, best_overlap = box, overlap
            if overlap == 0.0:
                break
        self._label_boxes.append(best)
        return best[0], best[1]

    def draw_instance_predictions(self, predictions, jittering: bool = False) -> VisImage:
        """Draw `pred_polygons` and `pred_texts` (with the detection score) of spotter outputs."""
        predictions = predictions.to("cpu")
        scores = predictions.scores.tolist() if predictions.has("scores") else None
        return self.draw_words(predictions.pred_polygons, predictions.pred_texts, scores)

    def draw_dataset_dict(self, dic: dict) -> VisImage:
        """Draw ground-truth words; don't-care words in red as `###`."""
        polygons, texts, colors = [], [], []
        for ann in dic.get("annotations", []):
            if ann.get("segmentation"):
                poly = np.asarray(ann["segmentation"][0], dtype=np.float32).reshape(-1, 2)
            else:
                x0, y0, x1, y1 = BoxMode.convert(ann["bbox"], ann["bbox_mode"], BoxMode.XYXY_ABS)
                poly = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float32)
            dont_care = bool(ann.get("iscrowd", 0))
            polygons.append(poly)
            texts.append("###" if dont_care else ann.get("text", ""))
            colors.append(_DONT_CARE_COLOR if dont_care else _WORD_COLOR)
        return self.draw_words(polygons, texts, colors=colors)


def _overlap_area(a: Tuple[float, float, float, float], b: Tuple[float, float, float, float]) -> float:
    return max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
