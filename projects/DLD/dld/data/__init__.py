from . import builtin  # noqa: F401  registers the datasets
from .augmentation import TextPreservingCrop
from .charset import DEFAULT_CHARSET, CharsetEncoder, count_unencodable_words
from .mapper import TextDatasetMapper, read_image_checked

__all__ = [
    "CharsetEncoder",
    "DEFAULT_CHARSET",
    "count_unencodable_words",
    "TextDatasetMapper",
    "TextPreservingCrop",
    "read_image_checked",
]
