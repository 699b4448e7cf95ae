"""Written videos are H.264 mp4s that browsers play: right codec, frame count, faststart, streaming, atomic."""

from __future__ import annotations

import base64
import gc
import re
import subprocess

import cv2
import numpy as np
import pytest

from dancenow_utils.video import (
    VideoWriter,
    codec_of,
    count_frames,
    ffmpeg_exe,
    inline_video_html,
    read_frames,
    write_gif,
    write_video,
)


def moving_frames(n: int = 32, h: int = 64, w: int = 64):
    """A generator of smooth frames with a square that moves (realistic for the encoder, easy to compare)."""
    yy, xx = np.mgrid[:h, :w]
    for i in range(n):
        img = np.stack([xx * 255 // w, yy * 255 // h, np.full((h, w), 128)], axis=2).astype(np.uint8)
        img[10:26, i:i + 16] = (250, 250, 30)
        yield img


def stream_line(path) -> str:
    """ffmpeg's description of the first video stream (codec, pixel format, size)."""
    err = subprocess.run([ffmpeg_exe(), "-hide_banner", "-i", str(path)], capture_output=True, text=True).stderr
    return next(line for line in err.splitlines() if "Video:" in line)


def top_level_boxes(path) -> list[str]:
    data, boxes, pos = path.read_bytes(), [], 0
    while pos + 8 <= len(data):
        size, kind = int.from_bytes(data[pos:pos + 4], "big"), data[pos + 4:pos + 8].decode("latin-1")
        boxes.append(kind)
        if size < 8:
            break
        pos += size
    return boxes


def test_write_video_is_h264_yuv420p_faststart_and_reads_back(tmp_path):
    path = tmp_path / "v.mp4"
    assert write_video(path, moving_frames(), fps=16) == 32  # a generator: frames are streamed
    assert codec_of(path) == "h264"
    line = stream_line(path)
    assert "yuv420p" in line and "64x64" in line, line
    boxes = top_level_boxes(path)
    assert boxes.index("moov") < boxes.index("mdat"), boxes  # faststart: playable while downloading
    assert count_frames(path) == 32
    decoded = [rgb for _, rgb in read_frames(path)]  # OpenCV plays it
    err = np.mean([np.abs(a.astype(int) - b).mean() for a, b in zip(decoded, moving_frames())])
    assert decoded[0].shape == (64, 64, 3) and err < 6, err
    assert not [p for p in tmp_path.iterdir() if p.name != "v.mp4"]  # no temporary file left


def test_odd_sizes_are_padded_to_even(tmp_path):
    frames = [np.full((33, 47, 3), 20 * i, np.uint8) for i in range(5)]
    write_video(tmp_path / "odd.mp4", frames, fps=10)
    assert codec_of(tmp_path / "odd.mp4") == "h264"
    _, first = next(read_frames(tmp_path / "odd.mp4"))
    assert first.shape == (34, 48, 3)


def test_video_writer_streams_and_is_atomic(tmp_path):
    path = tmp_path / "s.mp4"
    with VideoWriter(path, fps=8) as video:
        for frame in moving_frames(12):
            video.write(frame)
        video.write(frame[:, :, 0])  # a grey frame is accepted
        assert not path.exists()  # only moved into place at the end
    assert video.n_frames == 13 and count_frames(path) == 13 and video.size == (64, 64)
    old = path.read_bytes()
    with pytest.raises(RuntimeError, match="boom"), VideoWriter(path) as video:
        video.write(np.zeros((64, 64, 3), np.uint8))
        raise RuntimeError("boom")
    assert path.read_bytes() == old  # the previous video survives a failed write
    with pytest.raises(ValueError, match="resize the frames to one size"), VideoWriter(path) as video:
        video.write(np.zeros((64, 64, 3), np.uint8))
        video.write(np.zeros((32, 64, 3), np.uint8))
    with pytest.raises(ValueError, match="uint8"), VideoWriter(tmp_path / "f.mp4") as video:
        video.write(np.zeros((8, 8, 3), np.float32))
    dropped = VideoWriter(tmp_path / "dropped.mp4")
    dropped.write(np.zeros((8, 8, 3), np.uint8))
    del dropped  # never closed: ffmpeg is stopped and the temporary file removed
    gc.collect()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.mp4"]


def test_bad_arguments_name_the_fix(tmp_path):
    with pytest.raises(ValueError, match="no frames"):
        write_video(tmp_path / "empty.mp4", iter([]))
    with pytest.raises(ValueError, match="change the suffix"):
        VideoWriter(tmp_path / "v.avi")
    with pytest.raises(ValueError, match="fps"):
        VideoWriter(tmp_path / "v.mp4", fps=0)
    with pytest.raises(OSError, match="ffmpeg said: .*no-such-preset"), \
            VideoWriter(tmp_path / "p.mp4", preset="no-such-preset") as video:  # ffmpeg's complaint is passed on
        for frame in moving_frames(4):
            video.write(frame)
    assert list(tmp_path.iterdir()) == []


def test_codec_of_tells_h264_from_opencv_mp4v(tmp_path):
    writer = cv2.VideoWriter(str(tmp_path / "old.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 10, (64, 64))
    for frame in moving_frames(4):
        writer.write(frame)
    writer.release()
    assert codec_of(tmp_path / "old.mp4") == "mpeg4"
    with pytest.raises(FileNotFoundError):
        codec_of(tmp_path / "missing.mp4")


def test_inline_video_html_embeds_small_files(tmp_path):
    path = tmp_path / "v.mp4"
    write_video(path, moving_frames(8), fps=8)
    page = inline_video_html(path, width=320)
    data = re.search(r'src="data:video/mp4;base64,([^"]+)"', page)
    assert data and base64.b64decode(data.group(1)) == path.read_bytes()
    assert "<video controls" in page and 'width="320"' in page
    linked = inline_video_html(path, max_embed_bytes=10, src="demo/v.mp4")
    assert 'src="demo/v.mp4"' in linked and "base64" not in linked


def test_gif_from_a_generator(tmp_path):
    write_gif(tmp_path / "a.gif", moving_frames(6, 80, 120), fps=5, max_side=60)
    frames = [rgb for _, rgb in read_frames(tmp_path / "a.gif")]
    assert len(frames) == 6 and frames[0].shape == (40, 60, 3)
    with pytest.raises(ValueError, match="no frames"):
        write_gif(tmp_path / "b.gif", iter([]))
