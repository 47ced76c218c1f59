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
