"""Each page's view in the URL (cnnlab.ui.url_state): which widget, under which name, with
which check. A page binds its view before its widgets draw (a link's values go into them)
and syncs it (the URL follows the widgets); a bad value is ignored with a one-line notice.

    view = views.opened("train", views.train_params(PRESETS, DATASET_NAMES))

The Architectures page declares its own (it depends on the network drawn); the Calculator
keeps its own format (cnnlab.calc.presets.to_query/from_query).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import streamlit as st

from cnnlab.ui.url_state import (
    Param,
    UrlView,
    choice,
    choices,
    decimal,
    flag,
    flag_text,
    integer,
    join,
    number_text,
)

MAX_SEED = 2**31 - 1    # the pages' seed inputs


def opened(page: str, params: Sequence[Param]) -> UrlView:
    """Bind `params` (before their widgets draw), write the URL and show the notice of bad
    values: a widget's new value is already in session_state when a rerun starts, so the
    URL is right even where the page stops before drawing the widget."""
    view = UrlView(page)
    for param in params:
        view.bind(param)
    view.sync()
    view.notice()
    return view


def train_params(presets: Mapping[str, str], datasets: Mapping[str, str]) -> list[Param]:
    """The Train page's whole config (pages/train.py config_ui)."""
    from cnnlab.train.config import OPTIMIZERS, TrainConfig, dense_preset

    default = TrainConfig()
    return [
        Param("net", "preset", choice(list(presets), presets.get), next(iter(presets)),
              presets.get),
        Param("data", "dataset", choice(list(datasets)), next(iter(datasets))),
        Param("epochs", "epochs", integer(1, 200), default.epochs),
        Param("batch", "batch", choice([16, 32, 64, 128, 256, 512]), 64),
        Param("seed", "seed", integer(0, MAX_SEED), default.seed),
        Param("f1", "f1", integer(1, 512), 32),
        Param("f2", "f2", integer(1, 512), 64),
        Param("k1", "k1", choice([1, 3, 5, 7]), 3),
        Param("k2", "k2", choice([1, 3, 5, 7]), 3),
        Param("units", "units", integer(1, 4096), 128),
        Param("hidden", "preset_units", integer(1, 4096),
              dense_preset(default).dense_preset_units),
        Param("dropout", "dropout", decimal(0.0, 0.9), 0.0, number_text),
        Param("opt", "optimizer", choice(list(OPTIMIZERS)), OPTIMIZERS[0]),
        Param("lr", "lr", choice([0.0001, 0.0003, 0.001, 0.003, 0.01, 0.03, 0.1], number_text),
              0.001, number_text),
        Param("fp16", "mixed", flag, False, flag_text),
    ]


def transfer_params(modes: Sequence[str], image_sizes: Sequence[int]) -> list[Param]:
    """The Transfer page's mode and options (pages/transfer.py): split, augmentation, mode,
    image size, epochs, batch, learning rates, phase 2."""
    mode = st.session_state.get("transfer_mode", modes[0])
    url_mode = st.query_params.get("mode")
    if url_mode in modes:
        mode = url_mode
    return [
        Param("val", "transfer_val", decimal(0.05, 0.4), 0.15, number_text),
        Param("test", "transfer_test", decimal(0.05, 0.4), 0.15, number_text),
        Param("seed", "transfer_seed", integer(0, MAX_SEED), 0),
        *[Param(name, f"transfer_{name}", flag, True, flag_text)
          for name in ("flip", "rotation", "zoom", "contrast")],
        Param("mode", "transfer_mode", choice(list(modes)), modes[0]),
        Param("size", "transfer_size", choice(list(image_sizes)), None),
        Param("epochs", f"transfer_epochs_{mode}", integer(1, 200), 10 if mode == "fast" else 3),
        Param("batch", "transfer_batch", choice([8, 16, 32, 64, 128]), 32),
        Param("lr", "transfer_lr", choice([1e-4, 3e-4, 1e-3, 3e-3, 1e-2], number_text), 1e-3,
              number_text),
        Param("unfreeze", "transfer_blocks", choice([0, 1, 2]), 0),
        Param("ft_epochs", "transfer_ft_epochs", integer(1, 50), 2),
        Param("ft_lr", "transfer_ft_lr", choice([1e-6, 3e-6, 1e-5, 3e-5, 1e-4], number_text),
              1e-5, number_text),
    ]


def classify_params(samples: Sequence[str]) -> list[Param]:
    """The Classify page's chosen sample photos (uploads cannot travel in a URL)."""
    return [Param("samples", "classify_samples", choices(list(samples)), [],
                  lambda picked: join(picked))]


def cam_param(key: str, options: Sequence[int]) -> Param:
    """The Grad-CAM class of one image's panel (an ImageNet class index; the top class by
    default). Every panel of the page follows the same `cam=`."""
    return Param("cam", key, choice(list(options)), options[0])
