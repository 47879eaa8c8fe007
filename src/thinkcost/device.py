"""Which torch device `--device auto` means here (torch is imported only when asked)."""

from __future__ import annotations


def pick_device(device: str) -> str:
    """`auto` -> cuda when a GPU is visible, else cpu; anything else as given."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"
