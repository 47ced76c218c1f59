"""TextVisualizer: Detectron2's Visualizer drawing words (polygons, transcriptions, scores)."""
from typing import Optional, Sequence

import numpy as np
from detectron2.structures import BoxMode
from detectron2.utils.visualizer import VisImage, Visualizer

__all__ = ["TextVisualizer"]

_WORD_COLOR = (0.1, 0.9, 0.2)
_DONT_CARE_COLOR = (0.9, 0.2, 0.2)


class TextVisualizer(Visualizer):
    """Draws each word's polygon with its transcription (and score) at its first vertex."""

    def draw_words(
        self,
        polygons: Sequence[np.ndarray],
        texts: Sequence[str],
        scores: Optional[Sequence[float]] = None,
        colors: Optional[Sequence] = None,
        alpha: float = 0.25,
    ) -> VisImage:
        for i, (poly, text) in enumerate(zip(polygons, texts)):
            poly = np.asarray(poly, dtype=np.float32).reshape(-1, 2)
            if len(poly) < 3:
                continue
            color = colors[i] if colors is not None else _WORD_COLOR
            self.draw_polygon(poly, color, alpha=alpha)
            label = text if scores is None else f"{text} ({scores[i]:.2f})"
            # matplotlib reads text between two "$" as mathtext: a word like "$5 $9" would fail to draw.
            label = label.replace("$", r"\$")
            top_left = poly[np.argmin(poly[:, 0] + poly[:, 1])]
            font_size = max(self._default_font_size * 0.8, 6)
            self.draw_text(
                label,
                (float(top_left[0]), float(top_left[1]) - font_size * 1.6),
                color=color,
                horizontal_alignment="left",
                font_size=font_size,
            )
        return self.output

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
