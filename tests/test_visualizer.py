"""TextVisualizer draws any transcription, including ones matplotlib would otherwise read as mathtext."""
import numpy as np
import pytest

from dld.utils.visualizer import TextVisualizer


@pytest.mark.parametrize("text", ["$12.50", "$$oooc/c/c", "$5 $9", "a_b^c", "\\$"])
def test_words_with_dollar_signs_and_tex_characters_are_drawn(text):
    image = np.full((64, 128, 3), 200, dtype=np.uint8)
    polygon = np.array([[10, 20], [110, 20], [110, 50], [10, 50]], dtype=np.float32)
    vis = TextVisualizer(image).draw_words([polygon], [text], scores=[0.5])
    drawn = vis.get_image()  # renders the figure: a mathtext parse error would raise here
    assert drawn.shape == image.shape and not np.array_equal(drawn, image)
    labels = [t.get_text() for t in vis.ax.texts]
    assert labels == [text.replace("$", "\\$") + " (0.50)"]


def test_labels_of_close_words_do_not_cover_each_other():
    from dld.utils.visualizer import TextVisualizer, _overlap_area

    image = np.full((300, 400, 3), 200, np.uint8)
    # Three words stacked closer than a label's height, and one at the top edge.
    polygons = [np.array([[50, y], [150, y], [150, y + 16], [50, y + 16]], dtype=np.float32) for y in (80, 100, 120)]
    polygons.append(np.array([[300, 2], [390, 2], [390, 20], [300, 20]], dtype=np.float32))
    vis = TextVisualizer(image)
    vis.draw_words(polygons, ["upper", "hello", "world", "corner"], [0.7, 0.9, 0.8, 0.95])
    boxes = vis._label_boxes
    assert len(boxes) == 4
    assert all(_overlap_area(a, b) == 0 for i, a in enumerate(boxes) for b in boxes[i + 1:])
    assert all(0 <= b[1] and b[3] <= 300 for b in boxes)  # inside the image


def test_missed_words_are_the_cared_words_nothing_reads():
    from dld.evaluation.report import missed_words

    square = [[0, 0], [40, 0], [40, 20], [0, 20]]
    far = [[100, 100], [140, 100], [140, 120], [100, 120]]
    truth = [{"polygon": square, "text": "Word"}, {"polygon": far, "text": "gone"},
             {"polygon": far, "text": "###", "dont_care": True}]
    assert missed_words([{"polygon": square, "text": "word"}], truth) == [truth[1]]  # case-insensitive
    assert missed_words([{"polygon": square, "text": "ward"}], truth) == truth[:2]  # detected but misread
    shifted = [[30, 0], [70, 0], [70, 20], [30, 20]]  # IoU 1/7 with the square
    assert missed_words([{"polygon": shifted, "text": "word"}], truth) == truth[:2]
