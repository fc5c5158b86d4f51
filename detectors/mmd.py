"""Kernel maximum mean discrepancy with a blocked, batched permutation test (torch)."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from types import ModuleType
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
import numpy.typing as npt

from detectors._typing import Float64Array
from detectors._validation import Shape
from detectors.base import BaseDetector, check_int, check_positive_float
from detectors.errors import InvalidInputError
from detectors.permutation import PooledGroups, null_threshold, permutation_p_value
from detectors.result import DriftResult

if TYPE_CHECKING:
    import torch

Device = Literal["auto", "cpu", "cuda"]
DEVICES: tuple[Device, ...] = ("auto", "cpu", "cuda")


def _import_torch() -> ModuleType:
    try:
        return importlib.import_module("torch")
    except ImportError as exc:  # pragma: no cover - torch is a hard dependency of segmon
        raise ImportError("MMDDetector needs torch: pip install 'torch>=2'") from exc


def resolve_device(device: Device) -> str:
    """Return ``"cuda"`` for ``"auto"`` when a CUDA device is present, else ``"cpu"``.

    Examples
    --------
    >>> resolve_device("cpu")
    'cpu'
    """
    if device != "auto":
        return device
    torch_mod = _import_torch()
    return "cuda" if torch_mod.cuda.is_available() else "cpu"


def median_bandwidth(x: torch.Tensor, max_samples: int, rng: np.random.Generator) -> float:
    """Median pairwise Euclidean distance of (a random subset of) the rows of ``x``."""
    torch_mod = _import_torch()
    n = x.shape[0]
    if n > max_samples:
        idx = torch_mod.from_numpy(np.sort(rng.choice(n, size=max_samples, replace=False)))
        x = x[idx.to(x.device)]
    d = torch_mod.cdist(x.double(), x.double()).cpu().numpy()
    off_diagonal = d[np.triu_indices(d.shape[0], k=1)]
    positive = off_diagonal[off_diagonal > 0]
    return float(np.median(positive)) if positive.size else 1.0


def mmd_permutation_statistics(
    x: torch.Tensor, weights: torch.Tensor, gamma: float, block_size: int
) -> torch.Tensor:
    """Return ``w^T K w`` for every column ``w`` of ``weights``, ``K`` a Gaussian kernel.

    ``K[i, j] = exp(-gamma * |x_i - x_j|^2)`` is computed in ``block_size`` square tiles
    (only tiles on or above the diagonal, using symmetry) and never held whole, so
    memory stays ``O(block_size^2 + N * n_columns)``. With column weights ``+1/n`` on the
    reference and ``-1/m`` on the current rows, each entry is the (biased) MMD^2 of that
    split; all permutations share each kernel tile.
    """
    torch_mod = _import_torch()
    n_total = x.shape[0]
    sq = (x * x).sum(dim=1)
    acc = torch_mod.zeros(weights.shape[1], dtype=torch_mod.float64, device=x.device)
    for i0 in range(0, n_total, block_size):
        i1 = min(i0 + block_size, n_total)
        xi, wi = x[i0:i1], weights[i0:i1]
        for j0 in range(i0, n_total, block_size):
            j1 = min(j0 + block_size, n_total)
            d2 = torch_mod.addmm(sq[i0:i1, None] + sq[None, j0:j1], xi, x[j0:j1].T, alpha=-2.0)
            kernel = torch_mod.exp(d2.clamp_(min=0.0).mul_(-gamma))
            part = (wi * (kernel @ weights[j0:j1])).sum(dim=0, dtype=torch_mod.float64)
            acc += part if i0 == j0 else 2.0 * part
    result: torch.Tensor = acc
    return result


class MMDDetector(BaseDetector):
    """Gaussian-kernel MMD^2 between reference and current, with a permutation test.

    The bandwidth is the median pairwise distance of the pooled sample unless given. The
    kernel is built tile by tile on the GPU when one is present (``device="auto"``) and
    all permutations are evaluated at once as a matrix of ``+1/n`` / ``-1/m`` weights,
    so 20,000 pooled points never materialise the 20,000 x 20,000 kernel. With groups,
    whole groups are permuted and each split's weights use its own sizes. torch is
    imported only when :meth:`score` runs.

    ``statistic`` is the biased (V-statistic) MMD^2, ``threshold`` the permutation null's
    ``1 - alpha`` quantile; ``details`` has ``bandwidth``.

    Parameters
    ----------
    bandwidth : float or None
        Gaussian kernel width sigma in ``exp(-d^2 / (2 sigma^2))``; ``None`` for the
        median heuristic.
    bandwidth_samples : int
        Pooled points used for the median heuristic.
    block_size : int
        Side of the kernel tiles.
    device : {"auto", "cpu", "cuda"}
        Where the kernel is computed.
    alpha : float
        False-alarm rate.
    n_permutations : int
        Permutations used for calibration.
    random_state : int or None
        Seed.
    feature : str
        Feature name copied into results.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> det = MMDDetector(n_permutations=200, device="cpu").fit(rng.normal(size=(200, 5)))
    >>> same = det.score(rng.normal(size=(150, 5)))
    >>> shifted = det.score(rng.normal(size=(150, 5)) + 0.5)
    >>> same.drift_detected, shifted.drift_detected, round(shifted.statistic, 3)
    (False, True, 0.07)
    """

    name = "mmd"
    input_shape: ClassVar[Shape] = "multivariate"

    def __init__(
        self,
        *,
        bandwidth: float | None = None,
        bandwidth_samples: int = 1000,
        block_size: int = 4096,
        device: Device = "auto",
        alpha: float = 0.05,
        n_permutations: int = 200,
        random_state: int | None = 0,
        feature: str = "embedding",
    ) -> None:
        super().__init__(
            alpha=alpha, n_permutations=n_permutations, random_state=random_state, feature=feature
        )
        self.bandwidth = None if bandwidth is None else check_positive_float(bandwidth, "bandwidth")
        self.bandwidth_samples = check_int(bandwidth_samples, "bandwidth_samples", 2)
        self.block_size = check_int(block_size, "block_size", 1)
        if device not in DEVICES:
            raise InvalidInputError(f"device must be one of {DEVICES}, got {device!r}")
        self.device: Device = device

    @classmethod
    def _unit_test_params(cls) -> Iterator[dict[str, Any]]:
        """Yield the contract suite's parameters: the CPU, so results match on every machine.

        Yields
        ------
        dict of str to Any
            ``{"device": "cpu"}``.

        Examples
        --------
        >>> [MMDDetector(**params).device for params in MMDDetector._unit_test_params()]
        ['cpu']
        """
        yield {"device": "cpu"}

    def _score(self, current: Float64Array, rng: np.random.Generator) -> DriftResult:
        n, m = self.n_reference_, current.shape[0]
        labels = np.zeros(n + m, dtype=bool)
        labels[:n] = True
        splits = rng.permuted(np.broadcast_to(labels, (self.n_permutations + 1, n + m)), axis=1)
        splits[0] = labels
        weights = np.where(splits.T, np.float32(1.0 / n), np.float32(-1.0 / m))
        return self._permutation_test(current, weights, rng, None)

    def _score_grouped(
        self, current: Float64Array, groups: PooledGroups, rng: np.random.Generator
    ) -> DriftResult:
        splits = groups.permutations(self.n_permutations, rng)[:, groups.pooled()]
        n = splits.sum(axis=1)  # each split's reference size: whole groups move
        m = splits.shape[1] - n
        weights = np.where(splits.T, (1.0 / n).astype(np.float32), (-1.0 / m).astype(np.float32))
        return self._permutation_test(current, weights, rng, groups)

    def _permutation_test(
        self,
        current: Float64Array,
        weights: npt.NDArray[np.float32],
        rng: np.random.Generator,
        groups: PooledGroups | None,
    ) -> DriftResult:
        """MMD^2 of every split (one column of ``weights`` each, column 0 observed)."""
        torch_mod = _import_torch()
        device = resolve_device(self.device)
        pooled = np.concatenate([self.reference_, current]).astype(np.float32)
        with torch_mod.inference_mode():
            x = torch_mod.from_numpy(pooled).to(device)
            sigma = self.bandwidth or median_bandwidth(x, self.bandwidth_samples, rng)
            stats = mmd_permutation_statistics(
                x,
                torch_mod.from_numpy(weights).to(device),
                gamma=1.0 / (2.0 * sigma * sigma),
                block_size=self.block_size,
            )
            values = stats.cpu().numpy()
        observed, null = float(values[0]), values[1:]
        return self._result(
            statistic=observed,
            threshold=null_threshold(null, self.alpha),
            p_value=permutation_p_value(observed, null),
            n_current=current.shape[0],
            details={"bandwidth": float(sigma)},
            groups=groups,
        )
