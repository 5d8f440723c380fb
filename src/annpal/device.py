"""The torch device a command runs on, from its ``--device`` option (one resolver for every command), and
torch's CPU thread count for a stretch of work (:func:`torch_threads`)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from annpal.errors import InputError

#: Values of ``--device``; ``cuda:<i>`` picks one GPU.
DEVICE_CHOICES = ("auto", "cpu", "cuda")


def resolve_device(name: str) -> torch.device:
    """Turn ``auto``/``cpu``/``cuda[:i]`` into a device.

    Parameters
    ----------
    name
        ``auto`` (CUDA when visible, else CPU), ``cpu``, ``cuda`` or ``cuda:<i>``.

    Raises
    ------
    InputError
        ``cuda`` on a machine without a visible CUDA device, or an unknown name.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" or name.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise InputError(f"--device {name}: CUDA is not available on this machine; use --device cpu "
                             "or --device auto")
        return torch.device(name)
    if name == "cpu":
        return torch.device("cpu")
    raise InputError(f"--device {name}: unknown device; use auto, cpu or cuda")


@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """torch on ``threads`` CPU threads inside the block (unchanged for ``None``), its count before the
    block restored after it, also when the block raises."""
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)
