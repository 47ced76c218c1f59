"""A DetectionCheckpointer whose files are never half-written."""
import os
from typing import IO, Any, Callable

import torch
from detectron2.checkpoint import DetectionCheckpointer

__all__ = ["AtomicCheckpointer"]


def _atomic_write(path: str, write: Callable[[IO[bytes]], Any]) -> None:
    """Write ``path`` through a temporary file in the same folder, synced, then renamed over it (atomic on POSIX)."""
    tmp = f"{path}.tmp"
    with open(tmp, "wb") as f:
        write(f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    # Sync the folder too, so that the rename itself survives a crash of the machine.
    fd = os.open(os.path.dirname(path) or ".", os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class AtomicCheckpointer(DetectionCheckpointer):
    """
    Detectron2's checkpointer, except that each checkpoint and the ``last_checkpoint`` pointer are written to a
    ``.tmp`` file and renamed over the final name once complete. A run killed mid-save (SIGKILL, out of memory,
    a full disk) keeps its previous checkpoint and a pointer to it, so ``--resume`` finds a whole file; without
    this, a kill while ``model_final.pth`` is rewritten (a resumed run with a larger ``SOLVER.MAX_ITER``) would
    leave ``last_checkpoint`` pointing at a truncated file. A stale ``.tmp`` is overwritten by the next save of
    that name. Save folders that are not local paths (``s3://``, ``manifold://``) use Detectron2's save.
    """

    def _is_local(self) -> bool:
        return "://" not in str(self.save_dir)

    def save(self, name: str, **kwargs: Any) -> None:
        if not self.save_dir or not self.save_to_disk:
            return
        if not self._is_local():
            return super().save(name, **kwargs)
        data = {"model": self.model.state_dict()}
        for key, obj in self.checkpointables.items():
            data[key] = obj.state_dict()
        data.update(kwargs)
        basename = f"{name}.pth"
        save_file = os.path.join(self.save_dir, basename)
        os.makedirs(self.save_dir, exist_ok=True)
        self.logger.info(f"Saving checkpoint to {save_file}")
        _atomic_write(save_file, lambda f: torch.save(data, f))
        self.tag_last_checkpoint(basename)

    def tag_last_checkpoint(self, last_filename_basename: str) -> None:
        if not self._is_local():
            return super().tag_last_checkpoint(last_filename_basename)
        path = os.path.join(self.save_dir, "last_checkpoint")
        _atomic_write(path, lambda f: f.write(last_filename_basename.encode("utf-8")))
