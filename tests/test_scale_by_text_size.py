"""dld.evaluation.scale_by_text_size: text height per image and the selected scale by text size."""
import numpy as np
import pytest

from dld.evaluation.scale_by_text_size import (
    image_text_heights,
    scale_by_text_size,
    scale_by_text_size_table,
    word_height,
)


def _rotated_rectangle(width, height, angle_deg, centre=(200.0, 150.0)):
    a = np.deg2rad(angle_deg)
    rotation = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    corners = np.array([[-width, -height], [width, -height], [width, height], [-width, height]]) / 2.0
    return (corners @ rotation.T + centre).reshape(-1).tolist()


@pytest.mark.parametrize("angle", [0, 17, 90])
def test_word_height_is_the_short_side_of_a_long_word_whatever_its_rotation(angle):
    # 2·area/perimeter of a 200x10 rectangle: 2·2000/420.
    assert word_height(_rotated_rectangle(200, 10, angle)) == pytest.approx(4000 / 420)
    assert word_height([0, 0, 1, 1, 2, 2]) == 0.0  # no area


def test_image_text_height_is_the_median_over_cared_words_relative_to_the_longer_side():
    def word(height, crowd=0):
        return {"segmentation": [_rotated_rectangle(1000, height, 0)], "iscrowd": crowd}

    dicts = [
        {"file_name": "a.jpg", "height": 300, "width": 400,
         "annotations": [word(10), word(20), word(30), word(500, crowd=1)]},
        {"file_name": "b.jpg", "height": 400, "width": 200, "annotations": [word(40)]},
        {"file_name": "c.jpg", "height": 400, "width": 200, "annotations": [word(40, crowd=1)]},
        {"file_name": "d.jpg", "height": 400, "width": 200, "annotations": []},
    ]
    heights = image_text_heights(dicts)
    assert sorted(heights) == ["a.jpg", "b.jpg"]  # no cared word: left out
    assert heights["a.jpg"] == pytest.approx(word_height(_rotated_rectangle(1000, 20, 0)) / 400)
    assert heights["b.jpg"] == pytest.approx(word_height(_rotated_rectangle(1000, 40, 0)) / 400)


def test_scale_by_text_size_bins_images_from_the_smallest_text():
    heights = {f"{i}.jpg": h for i, h in enumerate([0.2, 0.01, 0.05, 0.1, 0.03, 0.15])}
    scales = [0.3, 0.8, 0.7, 0.4, 0.8, 0.3]
    records = [{"file_name": f"{i}.jpg", "selected_scale": s} for i, s in enumerate(scales)]
    records += [{"file_name": "unknown.jpg", "selected_scale": 0.8}, {"file_name": "0.jpg"}]  # both ignored
    rows = scale_by_text_size(records, heights, num_bins=3)
    assert [r["images"] for r in rows] == [2, 2, 2]
    assert [r["mean_scale"] for r in rows] == pytest.approx([0.8, 0.55, 0.3])
    assert [h for r in rows for h in (r["min_height"], r["max_height"])] == pytest.approx([0.01, 0.03, 0.05, 0.1, 0.15, 0.2])
    table = scale_by_text_size_table({"DLD": rows})
    cells = [[c.strip() for c in line.split("|")[1:-1]] for line in table.splitlines()[2:]]
    assert cells == [["DLD", "1.0-3.0%", "2", "0.800"], ["DLD", "5.0-10.0%", "2", "0.550"],
                     ["DLD", "15.0-20.0%", "2", "0.300"]]
    assert scale_by_text_size_table({"DLD": []}) is None
