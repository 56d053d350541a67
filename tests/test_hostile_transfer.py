"""Issue 15, the Transfer rows: budgets before work for uploaded archives (row 1), a
session's disk (row 9), and entry names that would leak paths or errnos (row 10)."""

from __future__ import annotations

import io
import time
import zipfile

import pytest
from PIL import Image

from cnnlab.transfer import archive, image_folder
from cnnlab.transfer.archive import ArchiveError, SessionWorkspace, load_zip
from cnnlab.transfer.image_folder import ImageFolderError
from tests.test_transfer import jpeg, make_zip, three_each


@pytest.fixture
def workspace(tmp_path):
    ws = SessionWorkspace(parent=tmp_path)
    yield ws
    ws.cleanup()


def one_line(exc: BaseException, workspace: SessionWorkspace) -> str:
    text = str(exc)
    assert "\n" not in text and str(workspace.path) not in text and "Errno" not in text
    return text


def test_row1_many_huge_declared_images_are_refused_before_any_decoding(workspace,
                                                                        monkeypatch):
    """An 85 KB zip of 400 copies of one 50-megapixel 1-bit PNG took 116 s of CPU: every
    image was decoded before any count was checked. Headers are summed first now."""
    buffer = io.BytesIO()
    Image.new("1", (10_000, 5_000)).save(buffer, "PNG")
    png = buffer.getvalue()
    data = io.BytesIO()
    with zipfile.ZipFile(data, "w", zipfile.ZIP_DEFLATED) as zf:
        for i in range(400):
            zf.writestr(f"{'ab'[i % 2]}/{i:03d}.png", png)
    decoded = []
    monkeypatch.setattr(image_folder, "read_image",
                        lambda *a, **k: decoded.append(a) or pytest.fail("decoded"))
    start = time.perf_counter()
    with pytest.raises(ImageFolderError) as info:
        load_zip(data.getvalue(), "huge.zip", workspace)
    text = one_line(info.value, workspace)
    assert "refused before decoding" in text and "megapixels" in text
    assert decoded == []
    print(f"refused in {time.perf_counter() - start:.2f} s: {text}")


def test_row1_the_image_count_is_checked_before_decoding(workspace, monkeypatch):
    monkeypatch.setattr(image_folder, "MAX_IMAGES", 5)
    monkeypatch.setattr(image_folder, "read_image", lambda *a, **k: pytest.fail("decoded"))
    with pytest.raises(ImageFolderError, match="more than the 5 images allowed; refused "
                                               "before decoding any"):
        load_zip(make_zip(three_each()), "six.zip", workspace)


def test_row1_more_files_than_images_allowed_are_refused_before_unpacking(workspace,
                                                                          monkeypatch):
    """The issue's 4.3 MB zip of 19,990 copies under the entry limit: any file may be an
    image (content decides), so more files than the image cap are refused from the zip's
    directory, before anything is written; hidden and system files do not count."""
    monkeypatch.setattr(archive, "MAX_IMAGES", 5)
    with pytest.raises(ArchiveError, match="six.zip: 6 files, more than the 5 images "
                                           "allowed; refused before unpacking"):
        load_zip(make_zip(three_each()), "six.zip", workspace)
    assert list(workspace.path.iterdir()) == []
    monkeypatch.setattr(archive, "MAX_IMAGES", 6)
    hidden = {"__MACOSX/cats/._0.jpg": b"x", "cats/.hidden.jpg": b"x", "dogs/Thumbs.db": b"x"}
    assert len(load_zip(make_zip(three_each(hidden)), "ok.zip", workspace)) == 6


def test_row9_a_session_cannot_fill_the_disk(workspace, monkeypatch):
    """Two small zips that unpack to 1 GB each held 2 GB for the session; now the session's
    budget (CNNLAB_SESSION_DISK) is charged with each zip's declared size first."""
    monkeypatch.setenv("CNNLAB_SESSION_DISK", "3M")
    ws = SessionWorkspace(parent=workspace.path)
    padding = b"\0" * 2_000_000
    zipped = make_zip(three_each({"cats/padding.bin": padding}))
    assert len(zipped) < 100_000
    first = load_zip(zipped, "one.zip", ws)
    assert len(first) == 6
    with pytest.raises(ArchiveError) as info:
        load_zip(zipped, "two.zip", ws)
    text = one_line(info.value, ws)
    assert text.startswith("two.zip: unpacking needs") and "refused" in text
    assert len(list(ws.path.iterdir())) == 1      # the refused zip wrote nothing
    ws.cleanup()


@pytest.mark.parametrize("entries, expected", [
    ({**three_each(), f"cats/{'x' * 300}/a.jpg": jpeg()}, "longer than 255 bytes"),
    ({**three_each(), "cats/same": jpeg(), "cats/same/b.jpg": jpeg()}, "both a file and a folder"),
    ({**three_each(), "cats/same/b.jpg": jpeg(), "cats/same": jpeg()}, "appears twice"),
])
def test_row10_entry_names_give_one_line_without_server_paths(workspace, entries, expected):
    with pytest.raises(ArchiveError) as info:
        load_zip(make_zip(entries), "names.zip", workspace)
    assert expected in one_line(info.value, workspace)
    assert list(workspace.path.iterdir()) == []   # nothing left behind


def test_archive_name_limit_is_linux_name_max():
    assert archive.MAX_NAME_BYTES == 255
