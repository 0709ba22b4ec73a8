"""Batched views on the batch's device, with fresh random parameters per sample.

Ops take (N, C, H, W) images (float in [0, 1]; the crop and the pipelines also take uint8) and
an optional `generator` on the same device. `ViewPipeline` chains them SimCLR-style,
`MultiView` makes several views, `recipes` holds one function per paper, `masking` the MAE and
BERT maskings.
"""

from selfsup.augment.blur import (
    gaussian_blur,
    random_gaussian_blur,
    sample_blur_sigma,
    simclr_kernel_size,
)
from selfsup.augment.color import (
    JitterParams,
    adjust_brightness,
    adjust_contrast,
    adjust_hue,
    adjust_saturation,
    apply_color_jitter,
    apply_grayscale,
    color_jitter,
    random_grayscale,
    random_solarize,
    rgb_to_grayscale,
    sample_jitter_params,
    solarize,
)
from selfsup.augment.crop import (
    center_crop_resize,
    random_resized_crop,
    resized_crop,
    sample_crop_boxes,
)
from selfsup.augment.flip import random_horizontal_flip
from selfsup.augment.masking import mask_tokens, random_masking
from selfsup.augment.normalize import (
    CIFAR10_MEAN,
    CIFAR10_STD,
    IMAGENET_MEAN,
    IMAGENET_STD,
    normalize,
)
from selfsup.augment.pipeline import EvalView, MultiView, ViewParams, ViewPipeline
from selfsup.augment.recipes import (
    byol_views,
    default_stats,
    eval_view,
    moco_v2_views,
    multicrop_views,
    simclr_views,
)

__all__ = [
    "CIFAR10_MEAN",
    "CIFAR10_STD",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "EvalView",
    "JitterParams",
    "MultiView",
    "ViewParams",
    "ViewPipeline",
    "adjust_brightness",
    "adjust_contrast",
    "adjust_hue",
    "adjust_saturation",
    "apply_color_jitter",
    "apply_grayscale",
    "byol_views",
    "center_crop_resize",
    "color_jitter",
    "default_stats",
    "eval_view",
    "gaussian_blur",
    "mask_tokens",
    "moco_v2_views",
    "multicrop_views",
    "normalize",
    "random_gaussian_blur",
    "random_grayscale",
    "random_horizontal_flip",
    "random_masking",
    "random_resized_crop",
    "random_solarize",
    "sample_blur_sigma",
    "resized_crop",
    "rgb_to_grayscale",
    "sample_crop_boxes",
    "sample_jitter_params",
    "simclr_kernel_size",
    "simclr_views",
    "solarize",
]
