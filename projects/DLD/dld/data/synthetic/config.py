"""The generator's configuration and the constants its modules share."""
import string
from dataclasses import dataclass
from typing import Tuple

# Bump when the generator's output changes, so that existing splits are regenerated.
GENERATOR_VERSION = 2
JPEG_QUALITY = 92
DONT_CARE = "###"
PRINTABLE_ASCII = frozenset(string.printable[:95])
MAX_WORD_LENGTH = 24


@dataclass(frozen=True)
class SynthConfig:
    """
    Parameters of the synthetic dataset.

    Attributes:
        num_images: images in the split.
        image_size: longer image side in pixels; the aspect ratio is drawn per image (4:3, 3:4, 1:1, 3:2, 2:3, 16:9).
        text_height_range: per-image text height as a fraction of the longer side, drawn log-uniformly.
        words_per_image: inclusive range of words attempted per image.
        seed: non-negative base seed.
        fonts_dir: extra directory whose .ttf/.otf fonts are used besides matplotlib's.
        geometry_probs: probabilities of a word being straight, rotated, perspective-warped or curved.
    """

    num_images: int
    image_size: int = 384
    text_height_range: Tuple[float, float] = (0.035, 0.2)
    words_per_image: Tuple[int, int] = (1, 6)
    seed: int = 0
    fonts_dir: str = ""
    geometry_probs: Tuple[float, float, float, float] = (0.45, 0.25, 0.15, 0.15)

    def __post_init__(self):
        # Configs read from YAML give lists; keep the dataclass hashable and its JSON stable.
        object.__setattr__(self, "text_height_range", tuple(float(v) for v in self.text_height_range))
        object.__setattr__(self, "words_per_image", tuple(int(v) for v in self.words_per_image))
        object.__setattr__(self, "geometry_probs", tuple(float(v) for v in self.geometry_probs))
        probs = self.geometry_probs
        if not (len(probs) == 4 and min(probs) >= 0 and abs(sum(probs) - 1) < 1e-6):
            raise ValueError(
                f"geometry_probs must be 4 non-negative probabilities (straight, rotated, perspective, curved) "
                f"summing to 1, got {self.geometry_probs}"
            )
        lo, hi = self.text_height_range
        if not (len(self.text_height_range) == 2 and 0 < lo <= hi < 1):
            raise ValueError(f"text_height_range must be (lo, hi) with 0 < lo <= hi < 1, got {self.text_height_range}")
        wlo, whi = self.words_per_image
        if not (len(self.words_per_image) == 2 and 0 <= wlo <= whi):
            raise ValueError(f"words_per_image must be (lo, hi) with 0 <= lo <= hi, got {self.words_per_image}")
        if self.num_images < 0 or self.image_size < 64 or self.seed < 0:
            raise ValueError(f"need num_images >= 0, image_size >= 64 and seed >= 0, got {self}")
