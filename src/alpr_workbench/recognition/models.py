"""The two networks: a CRNN plate reader (CTC) and a CenterNet-style plate detector.

Both are small enough to train on two CPU cores in well under an hour and to run at video
rate on the same machine. This module imports torch (the optional ``train`` extra); import it
only where torch is needed.
"""

from __future__ import annotations

from collections.abc import Mapping

try:
    import torch
except ModuleNotFoundError as exc:  # pragma: no cover - the `train` extra is not installed
    raise ModuleNotFoundError(
        "alpr_workbench.recognition.models needs PyTorch: pip install 'alpr-workbench[train]'",
        name=exc.name,
    ) from exc
from torch import nn
from torch.nn import functional as F

from alpr_workbench.recognition.infer import DETECTOR_STRIDE  # defined there: no torch
from alpr_workbench.recognition.synth_plates import ALPHABET, READER_SIZE

__all__ = [
    "DETECTOR_STRIDE",
    "NUM_CLASSES",
    "READER_SIZE",
    "PlateDetector",
    "PlateReader",
    "ReaderEnsemble",
    "StateClassifier",
    "ctc_greedy_decode",
    "detector_loss",
]

#: CTC classes: the blank (0) and the characters of :data:`ALPHABET`.
NUM_CLASSES = len(ALPHABET) + 1


def _block(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class PlateReader(nn.Module):
    """CNN + bidirectional LSTM + CTC reader for a plate crop.

    Input: float tensor ``(B, 3, 48, 96)`` (a plate keeps its 2:1 shape) scaled to ``[0, 1]``.
    Output: log-probabilities ``(T=24, B, NUM_CLASSES)``, as
    :func:`torch.nn.functional.ctc_loss` expects them.
    """

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            _block(3, 16, 2),  # 24 x 48
            _block(16, 32),
            nn.MaxPool2d(2),  # 12 x 24
            _block(32, 64),
            _block(64, 64),
            nn.MaxPool2d((2, 1)),  # 6 x 24
            _block(64, 96),
            _block(96, 96),
            nn.MaxPool2d((2, 1)),  # 3 x 24
            nn.Conv2d(96, 128, (3, 1), bias=False),
            nn.BatchNorm2d(128),
            nn.ReLU(inplace=True),
        )
        self.rnn = nn.LSTM(128, 96, bidirectional=True, batch_first=True)
        self.dropout = nn.Dropout(0.15)
        self.head = nn.Linear(192, NUM_CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Log-probabilities ``(T, B, C)``."""
        x = (x - 0.5) / 0.25
        f = self.features(x).squeeze(2).transpose(1, 2)  # B, T, C
        f, _ = self.rnn(f)
        logits = self.head(self.dropout(f))
        # float32 even under bfloat16 autocast: CTC needs finer log-probabilities than bf16's
        return logits.float().log_softmax(-1).transpose(0, 1)


class ReaderEnsemble(nn.Module):
    """Several :class:`PlateReader` s trained alike from different seeds, run together.

    Output: log-probabilities ``(M, T, B, NUM_CLASSES)``, one ``(T, B, C)`` block per member;
    the readings are combined after decoding (see ``infer._vote``), because two CTC readers
    seldom place a character on the same frame.
    """

    def __init__(self, members: int = 1) -> None:
        super().__init__()
        if members < 1:
            raise ValueError(f"an ensemble needs at least one reader, not {members}")
        self.members = nn.ModuleList(PlateReader() for _ in range(members))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Log-probabilities ``(M, T, B, C)``."""
        return torch.stack([member(x) for member in self.members])

    @staticmethod
    def split_state(state: dict[str, torch.Tensor]) -> list[dict[str, torch.Tensor]]:
        """The members' state dicts from an ensemble's, or ``[state]`` for one reader's.

        Weights saved by a single :class:`PlateReader` (``features.0.0.weight`` ...) load as
        an ensemble of one.

        Raises
        ------
        TypeError
            If ``state`` is not a mapping of names.
        ValueError
            If an ensemble's keys are malformed or its members are not numbered 0 to M-1.
        """
        if not isinstance(state, Mapping) or not all(isinstance(k, str) for k in state):
            raise TypeError("reader weights must be a state dict (names to tensors)")
        if not any(k.startswith("members.") for k in state):
            return [dict(state)]
        out: dict[int, dict[str, torch.Tensor]] = {}
        for key, value in state.items():
            parts = key.split(".", 2)
            if len(parts) != 3 or parts[0] != "members" or not parts[1].isdigit():
                raise ValueError(f"unexpected key {key!r} in an ensemble's weights")
            out.setdefault(int(parts[1]), {})[parts[2]] = value
        if sorted(out) != list(range(len(out))):
            raise ValueError(f"ensemble members {sorted(out)} are not numbered 0 to {len(out) - 1}")
        return [out[i] for i in range(len(out))]

    @classmethod
    def from_state(cls, state: dict[str, torch.Tensor]) -> ReaderEnsemble:
        """An ensemble holding the weights of :meth:`split_state` ``(state)``."""
        parts = cls.split_state(state)
        model = cls(len(parts))
        for member, part in zip(model.members, parts, strict=True):
            member.load_state_dict(part)
        return model


class PlateDetector(nn.Module):
    """A light encoder with a small feature pyramid and CenterNet heads at stride 4.

    Input: ``(B, 3, H, W)`` in ``[0, 1]`` with H and W multiples of 32. Output: a tuple
    ``(heat_logits (B,1,H/4,W/4), size (B,2,H/4,W/4), offset (B,2,H/4,W/4))`` where ``size``
    is ``log`` of the box width and height in stride units and ``offset`` the sub-cell centre.
    """

    def __init__(self) -> None:
        super().__init__()
        self.c2 = _block(3, 16, 2)
        self.c4 = nn.Sequential(_block(16, 32, 2), _block(32, 32))
        self.c8 = nn.Sequential(_block(32, 64, 2), _block(64, 64))
        self.c16 = nn.Sequential(_block(64, 96, 2), _block(96, 96))
        self.c32 = nn.Sequential(_block(96, 128, 2), _block(128, 128))
        self.l32 = nn.Conv2d(128, 64, 1)
        self.l16 = nn.Conv2d(96, 64, 1)
        self.l8 = nn.Conv2d(64, 64, 1)
        self.l4 = nn.Conv2d(32, 32, 1)
        self.s16 = _block(64, 64)
        self.s8 = _block(64, 32)
        self.s4 = _block(32, 32)
        self.heat = nn.Conv2d(32, 1, 1)
        self.size = nn.Conv2d(32, 2, 1)
        self.offset = nn.Conv2d(32, 2, 1)
        nn.init.constant_(self.heat.bias, -2.19)  # prior 0.1, as CenterNet

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Heat-map logits, log box size and centre offset."""
        x = (x - 0.45) / 0.25
        f4 = self.c4(self.c2(x))
        f8 = self.c8(f4)
        f16 = self.c16(f8)
        f32 = self.c32(f16)
        p = self.s16(self.l16(f16) + F.interpolate(self.l32(f32), scale_factor=2.0))
        p = self.s8(self.l8(f8) + F.interpolate(p, scale_factor=2.0))
        p = self.s4(self.l4(f4) + F.interpolate(p, scale_factor=2.0))
        return self.heat(p), self.size(p), self.offset(p)


def detector_loss(
    outputs: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    heat: torch.Tensor,
    size: torch.Tensor,
    offset: torch.Tensor,
    mask: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """CenterNet losses: focal loss on the heat map, L1 on size and offset at centres.

    Parameters
    ----------
    outputs
        What :class:`PlateDetector` returned.
    heat
        Target heat map ``(B, 1, h, w)`` with Gaussian peaks of 1 at plate centres.
    size, offset
        Targets ``(B, 2, h, w)``, meaningful where ``mask`` is 1.
    mask
        ``(B, 1, h, w)``: 1 at each plate's centre cell.

    Returns
    -------
    tuple[torch.Tensor, torch.Tensor, torch.Tensor]
        Focal, size and offset losses.
    """
    logits, psize, poff = outputs
    pred = logits.sigmoid().clamp(1e-4, 1 - 1e-4)
    pos = heat.eq(1).float()
    neg_w = (1 - heat).pow(4)
    pos_loss = (pred.log() * (1 - pred).pow(2) * pos).sum()
    neg_loss = ((1 - pred).log() * pred.pow(2) * neg_w * (1 - pos)).sum()
    n = pos.sum().clamp(min=1)
    focal = -(pos_loss + neg_loss) / n
    m = mask.expand_as(psize)
    msum = m.sum().clamp(min=1)
    size_loss = (F.l1_loss(psize, size, reduction="none") * m).sum() / msum
    off_loss = (F.l1_loss(poff.sigmoid(), offset, reduction="none") * m).sum() / msum
    return focal, size_loss, off_loss


def ctc_greedy_decode(log_probs: torch.Tensor) -> list[str]:
    """Best-path CTC decoding of ``(T, B, C)`` log-probabilities.

    Examples
    --------
    >>> import torch
    >>> lp = torch.full((4, 1, NUM_CLASSES), -10.0)
    >>> for t, c in enumerate([2, 2, 0, 2]):
    ...     lp[t, 0, c] = 0.0
    >>> ctc_greedy_decode(lp)
    ['11']
    """
    best = log_probs.argmax(-1).transpose(0, 1).tolist()
    out = []
    for seq in best:
        chars = []
        prev = 0
        for c in seq:
            if c != prev and c != 0:
                chars.append(ALPHABET[c - 1])
            prev = c
        out.append("".join(chars))
    return out


class StateClassifier(nn.Module):
    """A small CNN telling which state's plate a crop shows (or ``"other"``).

    Input: the reader's prepared crop, float ``(B, 3, 48, 96)`` in ``[0, 1]`` (so the same
    resized batch feeds both networks). Five convolutions (four strided) bring it to ``3 x 6``
    cells; pooling over the width only keeps *where* things are from top to bottom (a name
    at the top, a slogan at the bottom, a band), and a linear layer scores the classes of
    :data:`~alpr_workbench.recognition.synth_plates.STATE_CLASSES`.
    Output: logits ``(B, len(STATE_CLASSES))``.
    """

    def __init__(self, classes: int | None = None) -> None:
        from alpr_workbench.recognition.synth_plates import STATE_CLASSES

        super().__init__()
        n = len(STATE_CLASSES) if classes is None else classes
        self.features = nn.Sequential(
            _block(3, 16, 2),  # 24 x 48
            _block(16, 32, 2),  # 12 x 24
            _block(32, 48),
            _block(48, 64, 2),  # 6 x 12
            _block(64, 96, 2),  # 3 x 6
        )
        self.dropout = nn.Dropout(0.2)
        self.head = nn.Linear(96 * 3 * 2, n)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits ``(B, classes)``."""
        x = (x - 0.5) / 0.25
        f = self.features(x)  # B, 96, 3, 6
        pooled = torch.cat([f.mean(3), f.amax(3)], dim=1).flatten(1)  # B, 96*2*3
        return self.head(self.dropout(pooled)).float()
