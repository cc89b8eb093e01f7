"""A region marked in an editor (brush layers, a followed object's boxes) becomes the project's
Region without the studio: foley_core.region_spec."""

from __future__ import annotations

import numpy as np
import pytest

from foley_core.errors import MaskError
from foley_core.request import Region
from foley_core.region_spec import mask_spec, painted_mask


def test_brush_layers_become_one_mask_at_the_video_size():
    rgba = np.zeros((36, 64, 4), np.uint8)
    rgba[0:18, 0:32, 3] = 255                          # painted: top-left quarter
    grey = np.zeros((36, 64, 3), np.uint8)
    grey[18:, 32:, 1] = 40                              # a layer without alpha: bottom-right
    mask = painted_mask([None, rgba, grey], width=128, height=72)
    assert mask.shape == (72, 128) and mask.dtype == np.float32
    assert set(np.unique(mask)) == {0.0, 1.0}
    assert mask[:36, :64].all() and mask[36:, 64:].all()
    assert not mask[:36, 64:].any() and not mask[36:, :64].any()


@pytest.mark.parametrize("layers", [None, [], [None], [np.zeros((10, 10, 4), np.uint8)]])
def test_nothing_painted_is_refused_in_plain_words(layers):
    with pytest.raises(MaskError, match="The mask is empty: paint over the object"):
        painted_mask(layers, width=20, height=20)


def test_a_region_becomes_the_projects_mask_spec():
    mask = np.zeros((4, 6), np.float32)
    mask[1:3, 2:4] = 1.0
    image = mask_spec("image", mask=mask)
    assert image.kind == "image" and np.array_equal(image.image, mask)
    track = mask_spec("track", track_id="t3", times_s=np.array([0.0, 0.04]),
                      boxes=np.array([[1, 2, 3, 4], [2, 3, 4, 5]], np.float64))
    assert (track.kind, track.track_id) == ("track", "t3")
    assert track.track_boxes == ((0.0, 1.0, 2.0, 3.0, 4.0), (0.04, 2.0, 3.0, 4.0, 5.0))
    assert all(type(v) is float for row in track.track_boxes for v in row)
    assert mask_spec("none") == Region() == mask_spec("image", mask=None)
    assert mask_spec("track", track_id=None).kind == "none"
