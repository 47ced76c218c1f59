from . import builtin  # noqa: F401  registers the datasets
from .augmentation import TextPreservingCrop
from .charset import DEFAULT_CHARSET, CharsetEncoder, build_charset_encoder, count_unencodable_words
from .checked_datasets import get_checked_dataset_dicts
from .checks import BadAnnotationError, check_dataset_dicts
from .mapper import TextDatasetMapper, read_image_checked
from .word_crops import WordCropMapper, crop_word

__all__ = [
    "BadAnnotationError",
    "CharsetEncoder",
    "DEFAULT_CHARSET",
    "build_charset_encoder",
    "check_dataset_dicts",
    "count_unencodable_words",
    "get_checked_dataset_dicts",
    "TextDatasetMapper",
    "TextPreservingCrop",
    "WordCropMapper",
    "crop_word",
    "read_image_checked",
]
