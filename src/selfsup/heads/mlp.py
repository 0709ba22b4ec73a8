"""The MLP that every projection / prediction head is made of.

    MLP([512, 2048, 128])                      # Linear-BN-ReLU, Linear
    MLP([512, 2048, 2048, 2048], last_norm=True, last_norm_affine=False)   # SimSiam projector

Hidden layer: Linear -> norm -> activation. Last layer: Linear (-> norm), never an activation.
A Linear that feeds a BatchNorm has no bias: BN subtracts the batch mean, so the bias would cancel
(SimCLR's code uses `use_bias and not use_bn`; MoCo v3 and SimSiam build theirs with bias=False).
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

_NORMS = ("bn", "ln", None)
_ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU}


def _norm(kind: str, dim: int, affine: bool = True) -> nn.Module:
    if kind == "bn":
        return nn.BatchNorm1d(dim, affine=affine)
    return nn.LayerNorm(dim, elementwise_affine=affine)


class MLP(nn.Sequential):
    """A stack of Linear layers with `dims[0]` inputs and `dims[-1]` outputs.

    Args:
        dims: layer widths `[in, hidden..., out]`; `len(dims) - 1` Linear layers (at least 1).
        norm: `"bn"` (BatchNorm1d), `"ln"` (LayerNorm) or None, after every hidden Linear.
        last_norm: also normalize the output (SimSiam, MoCo v3, NNCLR); needs `norm`.
        last_norm_affine: learnable scale/shift on that output norm; MoCo v3 and SimSiam use
            `BatchNorm1d(affine=False)`.
        last_bias: bias on the last Linear; None means "unless a BatchNorm follows it".
        activation: `"relu"` or `"gelu"` (DINO) after every hidden norm.

    Shapes: `x: (N, dims[0])` -> `(N, dims[-1])`. With `norm="ln"` or None any leading dims
    work, `(..., dims[0]) -> (..., dims[-1])`; BatchNorm1d needs 2-D input.
    """

    def __init__(
        self,
        dims: Sequence[int],
        norm: str | None = "bn",
        last_norm: bool = False,
        last_norm_affine: bool = True,
        last_bias: bool | None = None,
        activation: str = "relu",
    ) -> None:
        _check(dims, norm, last_norm, activation)
        layers: list[nn.Module] = []
        for d_in, d_out in zip(dims[:-2], dims[1:-1], strict=True):
            layers.append(nn.Linear(d_in, d_out, bias=norm != "bn"))
            if norm is not None:
                layers.append(_norm(norm, d_out))
            layers.append(_ACTIVATIONS[activation]())
        if last_bias is None:
            last_bias = not (last_norm and norm == "bn")
        layers.append(nn.Linear(dims[-2], dims[-1], bias=last_bias))
        if last_norm:
            layers.append(_norm(norm, dims[-1], affine=last_norm_affine))  # type: ignore[arg-type]
        super().__init__(*layers)
        self.in_dim: int = dims[0]
        self.out_dim: int = dims[-1]


def _check(dims: Sequence[int], norm: str | None, last_norm: bool, activation: str) -> None:
    if len(dims) < 2:
        raise ValueError(f"an MLP needs at least [in, out] dims, got {list(dims)}")
    if norm not in _NORMS:
        raise ValueError(f"norm must be one of {_NORMS}, got {norm!r}")
    if last_norm and norm is None:
        raise ValueError("last_norm=True needs a norm ('bn' or 'ln')")
    if activation not in _ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(_ACTIVATIONS)}, got {activation!r}")
