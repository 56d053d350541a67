"""Issue 15, budgets before work and limits that are true: `cnnlab.budgets` and the
Streamlit settings in .streamlit/config.toml."""

from __future__ import annotations

import io
import tomllib

import pytest
from PIL import Image

from cnnlab import budgets
from cnnlab.budgets import BudgetError, DiskBudget, PixelBudget
from cnnlab.vision import images
from tests import ROOT


def config() -> dict:
    return tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())


def test_streamlit_enforces_the_largest_limit_a_page_states():
    """Streamlit 1.67 checks server.maxUploadSize on the server for every uploader (413
    above it); a widget's max_upload_size is only the browser's check. So it must be the
    largest limit any page promises: the Transfer page's zip archives."""
    from cnnlab.transfer import archive

    stated = [archive.MAX_ARCHIVE_MB, images.MAX_UPLOAD_BYTES // 2**20]
    assert config()["server"]["maxUploadSize"] == max(stated)


def test_users_never_see_a_traceback():
    from streamlit.config import ShowErrorDetailsConfigOptions

    assert config()["client"]["showErrorDetails"] == ShowErrorDetailsConfigOptions.NONE.value


def png_header(width: int, height: int) -> images.ImageHeader:
    buffer = io.BytesIO()
    Image.new("1", (width, height)).save(buffer, "PNG")
    return images.probe_image(buffer.getvalue(), f"{width}x{height}.png")


def test_pixel_budget_refuses_before_decoding():
    budget = PixelBudget("archive cats.zip", limit=120_000_000)
    header = png_header(7000, 7000)  # 49 MP in a few KB: nothing decoded to know it
    budget.charge(header.name, header.pixels)
    budget.charge(header.name, header.pixels)
    with pytest.raises(BudgetError) as info:
        budget.charge("evil\nname.png", header.pixels)
    text = str(info.value)
    assert "\n" not in text and text.startswith("archive cats.zip: ")
    assert "120 megapixels" in text and "147 megapixels" in text and "'evil\\nname.png'" in text
    assert budget.used == 98_000_000  # the refused image was not counted


def test_the_default_archive_budget_stops_the_issues_archive_at_its_headers():
    """Row 1: 19,990 copies of a 50 MP 1-bit PNG would be 74 minutes of decoding; the
    budget stops it at the 21st header (1 gigapixel)."""
    budget = PixelBudget("archive bomb.zip")
    header = png_header(7100, 7042)
    charged = 0
    with pytest.raises(BudgetError):
        for _ in range(19_990):
            budget.charge(header.name, header.pixels)
            charged += 1
    assert charged == budgets.ARCHIVE_PIXELS // header.pixels


@pytest.mark.parametrize("text,expected", [("1G", 1024**3), ("500M", 500 * 1024**2),
                                           ("2.5GB", int(2.5 * 1024**3)), ("1048576", 2**20),
                                           (" 64 kb ", 64 * 1024)])
def test_parse_size(text, expected):
    assert budgets.parse_size(text) == expected


def test_session_disk_limit_from_the_environment():
    assert budgets.session_disk_limit({}) == budgets.SESSION_DISK_BYTES
    assert budgets.session_disk_limit({"CNNLAB_SESSION_DISK": "300M"}) == 300 * 1024**2
    with pytest.raises(ValueError, match="CNNLAB_SESSION_DISK: not a size: 'lots'"):
        budgets.session_disk_limit({"CNNLAB_SESSION_DISK": "lots"})


def test_disk_budget_counts_what_a_session_holds(tmp_path):
    """Row 9: two zips that unpack to 1 GB each; the second is refused before extracting."""
    disk = DiskBudget(limit=1536 * 1024**2)
    disk.charge("first.zip", 1024**3)
    with pytest.raises(BudgetError) as info:
        disk.charge("second.zip", 1024**3)
    assert str(info.value).startswith("second.zip: unpacking needs 1.0 GB, and this session "
                                      "already holds 1.0 GB of its 1.5 GB")
    disk.release(1024**3)
    disk.charge("second.zip", 1024**3)
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.bin").write_bytes(b"x" * 1000)
    (tmp_path / "link").symlink_to(tmp_path / "a" / "x.bin")
    assert budgets.folder_bytes(tmp_path) == 1000  # links not followed, not counted
