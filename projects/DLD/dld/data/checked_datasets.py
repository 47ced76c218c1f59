"""The training set as the trainer reads it: registered datasets, loaded and checked (:mod:`dld.data.checks`)."""
import logging
from typing import Any, Dict, List, Sequence

from detectron2.data.build import filter_images_with_only_crowd_annotations

from .builtin import load_registered_dataset
from .checks import BadAnnotationError, check_dataset_dicts, check_on_bad_mode

__all__ = ["get_checked_dataset_dicts"]

logger = logging.getLogger(__name__)


def get_checked_dataset_dicts(
    names: Sequence[str], on_bad: str = "error", filter_empty: bool = True
) -> List[Dict[str, Any]]:
    """
    The dataset dicts of ``names``, concatenated, with every bad record and word raised or skipped as ``on_bad``
    (``DATASETS.ON_BAD_ANNOTATION``) says; with ``"skip"`` the project's raw splits are also parsed leniently
    (malformed lines and unreadable files skipped and counted). With ``filter_empty``
    (``DATALOADER.FILTER_EMPTY_ANNOTATIONS``) images without a cared word are left out, as Detectron2 does.

    Raises:
        BadAnnotationError: a dataset is empty or nothing is left of it, or (``"error"``) a bad record or word.
        AnnotationFormatError: (``"error"``) a malformed raw ground-truth file.
    """
    check_on_bad_mode(on_bad)
    if not names:
        raise BadAnnotationError("DATASETS.TRAIN is empty: no dataset to train on")
    dicts: List[Dict[str, Any]] = []
    for name in names:
        dicts.extend(check_dataset_dicts(load_registered_dataset(name, lenient=on_bad == "skip"), name, on_bad))
    if filter_empty:
        dicts = filter_images_with_only_crowd_annotations(dicts)
        if not dicts:
            raise BadAnnotationError(
                f"No image of {list(names)} has a word to train on (all are don't care or were skipped); "
                "DATALOADER.FILTER_EMPTY_ANNOTATIONS False keeps images without words"
            )
    return dicts
