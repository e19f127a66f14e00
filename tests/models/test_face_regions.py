"""The facial-region mask sits on our aligned crop: it covers the template's eyes, nose and
mouth, scales with the crop, and is exactly binary (numpy only, device-side)."""

from __future__ import annotations

import numpy as np
import pytest

from edge.align.template import ARCFACE_112, template_points
from edge.errors import EdgeBuildError
from edge.face_regions import REGIONS, region_mask


@pytest.mark.parametrize("size", [112, 224, 32])
def test_mask_is_binary_float32_and_covers_every_template_point(size):
    mask = region_mask((size, size))
    assert mask.shape == (size, size) and mask.dtype == np.float32
    assert set(np.unique(mask)) == {0.0, 1.0}
    for x, y in template_points(size):
        assert mask[int(round(y)), int(round(x))] == 1.0, (x, y)
    # the crop's border (hair, cheeks' edge, background) is outside every region
    assert mask[0].sum() == mask[-1].sum() == mask[:, 0].sum() == mask[:, -1].sum() == 0


def test_regions_are_named_and_cover_a_minority_of_the_face():
    assert [r.name for r in REGIONS] == ["left_brow_eye", "right_brow_eye", "nose", "mouth"]
    assert 0.1 < region_mask(112).mean() < 0.3


def test_int_size_is_square_and_scaling_is_consistent():
    np.testing.assert_array_equal(region_mask(56), region_mask((56, 56)))
    big, small = region_mask(224), region_mask(112)
    # same coverage at twice the resolution (up to boundary pixels)
    assert abs(big.mean() - small.mean()) < 0.01


def test_non_square_scales_x_and_y_separately():
    mask = region_mask((112, 224))
    assert mask.shape == (112, 224)
    sx = 224 / 112
    for x, y in ARCFACE_112:
        assert mask[int(round(y)), int(round(x * sx))] == 1.0
    # stretching x doubles the area
    assert abs(mask.sum() / region_mask(112).sum() - 2.0) < 0.05


@pytest.mark.parametrize("size", [(0, 10), (10, -1), "big", (1, 2, 3)])
def test_bad_sizes_are_refused(size):
    with pytest.raises(EdgeBuildError, match="region mask size"):
        region_mask(size)
