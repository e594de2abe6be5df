"""Recurrent networks: a vanilla RNN (tanh), an LSTM or a GRU over a sequence.

Two uses: a sequence in, one prediction out (classify digits read row by row, forecast the
next value of a series); or tokens in, a prediction per step out (a language model).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from trialforge.models.layers import FeaturesAndHead

_CELLS: dict[str, Callable[..., nn.RNNBase]] = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


class SequenceEncoder(nn.Module):
    """[Embedding ->] stacked recurrent layers; the last step's state, or every step's."""

    def __init__(
        self, recurrent: nn.RNNBase, embedding: nn.Embedding | None, every_step: bool
    ) -> None:
        super().__init__()
        self.embedding = embedding
        self.recurrent = recurrent
        self.every_step = every_step

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.embedding is not None:
            x = self.embedding(x)
        outputs, _ = self.recurrent(x)  # (batch, steps, directions * hidden)
        if self.every_step:
            return outputs  # type: ignore[no-any-return]
        if not self.recurrent.bidirectional:
            return outputs[:, -1]  # type: ignore[no-any-return]
        # The forward direction has read the whole sequence at the last step, the backward
        # one at the first: together they summarise it.
        hidden = self.recurrent.hidden_size
        return torch.cat([outputs[:, -1, :hidden], outputs[:, 0, hidden:]], dim=1)


def rnn(
    *,
    input_shape: tuple[int, ...],
    num_classes: int,
    cell: str = "lstm",
    layers: int = 1,
    hidden_size: int = 64,
    bidirectional: bool = False,
    dropout: float = 0.0,
    embedding_dim: int = 32,
    vocab_size: int = 0,
) -> nn.Module:
    """A recurrent model for inputs of `input_shape`: (steps, features), or (steps,) tokens.

    With `vocab_size` the inputs are token ids, embedded, and the model predicts at every
    step (next-token language modelling); otherwise it predicts once per sequence.
    `dropout` applies between stacked layers, as torch's recurrent layers do.
    """
    if cell not in _CELLS:
        raise ValueError(f"unknown cell {cell!r}; allowed: {', '.join(_CELLS)}")
    embedding = None
    if vocab_size:
        if len(input_shape) != 1:
            raise ValueError(f"token inputs are (steps,), got {input_shape}")
        embedding = nn.Embedding(vocab_size, embedding_dim)
        in_features = embedding_dim
    else:
        if len(input_shape) != 2:
            raise ValueError(f"rnn needs sequences (steps, features), got {input_shape}")
        in_features = input_shape[1]
    recurrent = _CELLS[cell](
        in_features, hidden_size, num_layers=layers, batch_first=True,
        bidirectional=bidirectional, dropout=dropout if layers > 1 else 0.0,
    )
    width = hidden_size * (2 if bidirectional else 1)
    encoder = SequenceEncoder(recurrent, embedding, every_step=bool(vocab_size))
    return FeaturesAndHead(encoder, nn.Linear(width, num_classes))
