"""Writes lab_skimage.json: reference CIE Lab values for data/lab_test.go.

skimage.color.rgb2lab (D65, 2° observer) of 8-bit sRGB colours (the
primaries, white, black, greys and 40 random colours from a fixed seed),
and skimage.color.lab2rgb of a few Lab colours inside and outside the sRGB
gamut. Run with scikit-image 0.26 and numpy:

    python lab_skimage.py > lab_skimage.json
"""
import json

import numpy as np
import skimage
from skimage.color import lab2rgb, rgb2lab

rng = np.random.default_rng(13)
rgb = [[255, 255, 255], [0, 0, 0], [255, 0, 0], [0, 255, 0], [0, 0, 255],
       [255, 255, 0], [0, 255, 255], [255, 0, 255], [128, 128, 128], [1, 1, 1],
       [10, 200, 30], [250, 128, 114]]
rgb += rng.integers(0, 256, size=(40, 3)).tolist()
arr = np.array(rgb, dtype=np.float64).reshape(1, -1, 3) / 255
lab = rgb2lab(arr).reshape(-1, 3)
labs = [[50, 0, 0], [75, 20, -30], [30, 60, 40], [90, -80, 90], [60, 100, -100], [0, 0, 0], [100, 0, 0]]
back = lab2rgb(np.array(labs, dtype=np.float64).reshape(1, -1, 3)).reshape(-1, 3)
print(json.dumps({
    "skimage": skimage.__version__,
    "rgb8": rgb,
    "lab": [[round(v, 9) for v in row] for row in lab.tolist()],
    "lab_in": labs,
    "rgb_out": [[round(v, 9) for v in row] for row in back.tolist()],
}, indent=1))
