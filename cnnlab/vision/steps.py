"""The Classify page as a lecture: five steps through one photo (issue 11).

1 the photo and the square the network sees, 2 its top-5 classes, 3 Grad-CAM (where it
looked for a class), 4 the explanation lab (every method, its time and faithfulness), 5 the
sanity check (the maps when the network's weights are destroyed). Presenter mode always
walks through them; `classify?step=3` opens step 3 in any mode. Steps 2-5 need a photo and a
model, both chosen in step 1: without them they say so in one line.

Pure Python (and Pillow for the crop's outline): the step list, its titles and notices.
The page draws.
"""

from __future__ import annotations

from PIL import Image, ImageDraw

from cnnlab.walk import Walk, numbered

STEPS = numbered((
    ("photo", "The photo, and the square the network sees"),
    ("top5", "What the network says: its top-5 classes"),
    ("gradcam", "Grad-CAM: where it looked for a class"),
    ("lab", "The explanation lab: every method, its time and faithfulness"),
    ("sanity", "The sanity check: destroy the weights, do the maps change?"),
))
FIRST, LAST = 1, len(STEPS)
PARAM = "step"                  # the URL's query parameter
STATE_KEY = "classify_step"     # session_state: the step picker's key (None: the whole page)

NO_PHOTO = "No photo yet: pick a sample photo or upload one in step 1."
NO_MODEL = ("No model yet: step 1 offers the Inception v3 weights, or the untrained network "
            "to see the pipeline.")


WALK = Walk(STEPS)
step, title, number_of = WALK.step, WALK.title, WALK.number_of


def followed(names: list[str]) -> str | None:
    """The line saying which photo the walk follows when several are chosen (None for one)."""
    if len(names) < 2:
        return None
    return (f"The steps follow the first of the {len(names)} photos chosen: {names[0]} "
            "(step 1 chooses; the whole page shows them all).")


def crop_box(size: tuple[int, int]) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of the largest centred square of an image of `size`: what
    `images.center_crop_square` keeps."""
    width, height = size
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    return left, top, left + side, top + side


def outline_crop(img: Image.Image, colour: tuple[int, int, int] = (255, 200, 0)) -> Image.Image:
    """A copy of `img` (RGB) with the centre square outlined and the cut-off sides dimmed."""
    shown = img.convert("RGB")
    box = crop_box(shown.size)
    dimmed = Image.blend(shown, Image.new("RGB", shown.size, (0, 0, 0)), 0.55)
    dimmed.paste(shown.crop(box), box[:2])
    line = max(3, min(shown.size) // 80)
    ImageDraw.Draw(dimmed).rectangle((box[0], box[1], box[2] - 1, box[3] - 1), outline=colour,
                                     width=line)
    return dimmed
