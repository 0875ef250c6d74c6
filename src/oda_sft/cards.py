"""GPU cards oda-sft can plan for without seeing them: their memory and dense bf16 peak.

`--decide-for 8xH100-80GB` (bench) and `estimate --gpu H100-80GB` name a card; the memory model
then decides for that card's free memory, and the throughput model uses its peak FLOP/s.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from oda_sft.errors import UsageError
from oda_sft.util.hardware import MIB, DeviceMemory


@dataclass(frozen=True)
class Card:
    name: str  # what users type: H100-80GB, H200, A100-80GB
    total_mib: int  # nvidia-smi memory.total
    peak_bf16: float  # dense bf16 FLOP/s (SXM)
    match: tuple[str, ...]  # substrings of nvidia-smi / torch device names that mean this card

    def memory(self, source: str) -> DeviceMemory:
        # An idle card shows about 0.5 GiB less free than total (driver and ECC reservations);
        # the memory model's CONTEXT_BYTES adds the CUDA context and workspaces on top.
        free = (self.total_mib - 512) * MIB
        return DeviceMemory("gpu", self.name, free, self.total_mib * MIB, source)


CARDS: dict[str, Card] = {
    c.name: c
    for c in (
        Card("H100-80GB", 81559, 989.4e12, ("H100 80GB", "H100 SXM", "H100")),
        Card("H200", 143771, 989.4e12, ("H200",)),
        Card("A100-80GB", 81920, 312.0e12, ("A100-SXM4-80GB", "A100 80GB", "A100")),
    )
}
CARD_NAMES = ", ".join(CARDS)
# Dense bf16 peak by device-name substring, most specific first (--peak-tflops overrides it in bench).
PEAK_BF16 = (("H200", 989.4e12), ("H100 PCIe", 756.0e12), ("H100", 989.4e12), ("A100", 312.0e12), ("L40S", 362.05e12))


def peak_for(device_name: str | None) -> float | None:
    if not device_name:
        return None
    for key, value in PEAK_BF16:
        if key.lower() in device_name.lower():
            return value
    return None


def card(name: str) -> Card:
    found = CARDS.get(name) or next((c for c in CARDS.values() if c.name.lower() == name.lower()), None)
    if found is None:
        raise UsageError(f"unknown GPU {name!r}: use one of {CARD_NAMES}")
    return found


def card_of_device(device_name: str | None) -> Card | None:
    """The card a measured device (an nvidia-smi or torch name) is, if it is one of CARDS."""
    if not device_name:
        return None
    low = device_name.lower()
    for c in CARDS.values():
        if c.name.lower() == low or any(m.lower() in low for m in c.match):
            if c.name == "H100-80GB" and "pcie" in low:
                return None
            return c
    return None


_NODE = re.compile(r"(\d+)x(.+)")


def parse_node(text: str) -> tuple[int, Card]:
    """'8xH100-80GB' -> (8, H100-80GB)."""
    m = _NODE.fullmatch(text.strip())
    if m is None or int(m.group(1)) < 1:
        raise UsageError(f"--decide-for {text!r} must be GPUsxCARD, e.g. 8xH100-80GB or 8xH200 (cards: {CARD_NAMES})")
    return int(m.group(1)), card(m.group(2))
