import numpy as np
import pytest
import torch

from samestyle.pretrain.patches import (
    PatchPCA,
    kaleido_patches,
    n_patches,
    patch_layout,
    pool_matrix,
    region_bounds,
    scale_slices,
)


def _loop_reference(m: np.ndarray) -> np.ndarray:
    """Slow twin: explicit loops over grids and cells, floor/ceil bounds written out."""
    c, h, w = m.shape
    out = []
    for k in (1, 2, 3, 4, 5):
        for i in range(k):
            for j in range(k):
                r0, r1 = (i * h) // k, -((-(i + 1) * h) // k)
                c0, c1 = (j * w) // k, -((-(j + 1) * w) // k)
                acc = np.zeros(c)
                for r in range(r0, r1):
                    for cc in range(c0, c1):
                        acc += m[:, r, cc]
                out.append(acc / ((r1 - r0) * (c1 - c0)))
    return np.stack(out)


def test_patches_equal_loop_reference_and_adaptive_pool() -> None:
    rng = np.random.default_rng(0)
    maps = rng.normal(size=(3, 8, 7, 7)).astype(np.float32)
    got = kaleido_patches(maps)
    assert got.shape == (3, 55, 8) and n_patches() == 55
    for n in range(3):
        np.testing.assert_allclose(got[n], _loop_reference(maps[n]), rtol=1e-5, atol=1e-5)
    t = torch.from_numpy(maps)
    for k, sl in zip((1, 2, 3, 4, 5), scale_slices(), strict=True):
        ref = torch.nn.functional.adaptive_avg_pool2d(t, k).flatten(2).transpose(1, 2).numpy()
        np.testing.assert_allclose(got[:, sl], ref, rtol=1e-5, atol=1e-5)


def test_bounds_layout_and_pool_rows() -> None:
    assert region_bounds(2, 7) == [(0, 4), (3, 7)]
    assert region_bounds(7, 7) == [(i, i + 1) for i in range(7)]
    with pytest.raises(ValueError):
        region_bounds(8, 7)
    np.testing.assert_allclose(pool_matrix().sum(1), 1.0, rtol=1e-6)
    scale, cell = patch_layout()
    assert scale.tolist().count(4) == 25 and scale[0] == 0 and cell[-1] == 54


def test_pca_keeps_top_variance_directions() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(500, 6)) * np.array([10.0, 5.0, 1.0, 0.1, 0.1, 0.1])
    pca = PatchPCA.fit(x, 2)
    assert pca.dim == 2
    y = pca.transform(x)
    assert y.shape == (500, 2) and y[:, 0].var() > y[:, 1].var() > 1.0
    np.testing.assert_allclose(np.abs(pca.components[:2, :2]), np.eye(2), atol=0.05)
