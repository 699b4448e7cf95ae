"""Video and GIF I/O: read frames as RGB with OpenCV; write H.264 mp4 with the ffmpeg of imageio-ffmpeg.

Written videos are H.264 (yuv420p, even dimensions, ``moov`` box first), the one format that plays inline in
Jupyter, Colab and every browser; OpenCV's own writer only offers MPEG-4 Part 2 (``mp4v``), which browsers refuse.
Writes are atomic (temporary file, then rename) and streamed: frames go to ffmpeg as they come, never held in memory.
"""

from __future__ import annotations

import base64
import contextlib
import html
import subprocess
import tempfile
from collections.abc import Iterable, Iterator
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from dancenow_utils.io_utils import atomic_path

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".gif")


def open_video(path: str | Path) -> cv2.VideoCapture:
    """Open a video for reading; errors name the file and the fix."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such video file")
    cap = cv2.VideoCapture(str(path))
    ok, _ = cap.read() if cap.isOpened() else (False, None)
    cap.release()
    if not ok:
        streams = ffmpeg_streams(path)
        if streams and not any(kind == "Video" for kind, _ in streams):
            kinds = ", ".join(sorted({kind.lower() for kind, _ in streams}))
            raise ValueError(f"{path}: this file has no video stream, only {kinds}; give a video of the dancer "
                             "(or a folder of frames)")
        raise ValueError(f"{path}: OpenCV cannot decode this video; re-encode it as H.264 mp4 "
                         "(e.g. `ffmpeg -i in.mov -c:v libx264 out.mp4`) or pass a folder of frames")
    # opened again rather than sought back to frame 0: seeking a one-frame video loses its only frame
    return cv2.VideoCapture(str(path))


def ffmpeg_streams(path: str | Path) -> list[tuple[str, str]]:
    """``[("Audio", "aac ..."), ("Video", "h264 ...")]``: the streams ffmpeg finds in a file (empty when it cannot
    tell)."""
    try:
        run = subprocess.run([ffmpeg_exe(), "-hide_banner", "-i", str(path)], capture_output=True, text=True,
                             timeout=60)
    except (ImportError, OSError, RuntimeError, subprocess.SubprocessError):
        return []
    found = []
    for line in run.stderr.splitlines():
        parts = line.strip().split(": ", 2)  # "Stream #0:0(und)", "Audio", "aac (LC), 44100 Hz, ..."
        if parts[0].startswith("Stream #") and len(parts) >= 2:
            found.append((parts[1].strip(), parts[2].strip() if len(parts) > 2 else ""))
    return found


def read_frames(path: str | Path, frame_step: int = 1, max_frames: int = 0,
                start: int = 0) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(frame_index, rgb)`` for every ``frame_step``-th frame from frame ``start`` on, at most
    ``max_frames`` (0 = all). Skipped leading frames are only grabbed, not converted."""
    if frame_step < 1:
        raise ValueError(f"frame_step must be >= 1, got {frame_step}")
    cap = open_video(path)
    try:
        index = yielded = 0
        while index < start and cap.grab():
            index += 1
        while True:
            ok, bgr = cap.read()
            if not ok:
                break
            if (index - start) % frame_step == 0:
                yield index, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
                yielded += 1
                if max_frames and yielded >= max_frames:
                    break
            index += 1
    finally:
        cap.release()


def count_frames(path: str | Path) -> int:
    """Number of decodable frames (decodes the whole video: exact, unlike the container's header)."""
    return sum(1 for _ in read_frames(path))


MP4_FORMATS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov"}
VIDEO_MIME = {".mp4": "video/mp4", ".m4v": "video/mp4", ".mov": "video/quicktime", ".webm": "video/webm"}


def ffmpeg_exe() -> str:
    """The ffmpeg binary shipped in the imageio-ffmpeg wheel (or ``$IMAGEIO_FFMPEG_EXE``)."""
    try:
        import imageio_ffmpeg  # a declared dependency; the message covers an environment that lost it
    except ImportError:
        raise ImportError("writing H.264 videos needs the imageio-ffmpeg package: "
                          "pip install -c constraints.txt imageio-ffmpeg") from None
    return imageio_ffmpeg.get_ffmpeg_exe()


class VideoWriter:
    """Stream RGB frames into an H.264 mp4 at ``path``; the file appears only when writing succeeded.

    Use as a context manager (an error inside the block leaves no file, and any previous file intact)::

        with VideoWriter("results/demo/transfer.mp4", fps=30) as video:
            for frame in frames:
                video.write(frame)

    Each frame is piped to ffmpeg as it comes, so memory stays bounded whatever the length. The first frame fixes
    the size; an odd width or height gets one black column or row (H.264 in yuv420p needs even sizes). ``crf`` is
    x264's quality (0 lossless .. 51 worst; 18-23 looks clean); the ``moov`` box is written first ("faststart")
    so browsers start playing before the whole file has arrived.
    """

    def __init__(self, path: str | Path, fps: float = 30.0, crf: int = 20, preset: str = "medium") -> None:
        self.path = Path(path)
        if self.path.suffix.lower() not in MP4_FORMATS:
            raise ValueError(f"{self.path}: H.264 videos are written as {', '.join(MP4_FORMATS)}; change the suffix")
        if not fps > 0:
            raise ValueError(f"{self.path}: fps must be > 0, got {fps}")
        if not 0 <= crf <= 51:
            raise ValueError(f"{self.path}: crf must be in 0..51 (x264 quality), got {crf}")
        self.fps, self.crf, self.preset = fps, crf, preset
        self.n_frames = 0
        self.size: tuple[int, int] | None = None  # (width, height) of the frames given
        self._proc: subprocess.Popen | None = None
        self._stack = contextlib.ExitStack()
        self._log = None
        self._done = False

    def __enter__(self) -> VideoWriter:
        return self

    def __del__(self) -> None:  # a writer dropped without close(): stop ffmpeg, leave no temporary file
        with contextlib.suppress(Exception):
            self.abort()

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc is None:
            self.close()
        else:
            self.abort(exc)

    def _start(self, width: int, height: int) -> None:
        tmp = self._stack.enter_context(atomic_path(self.path))
        self._log = self._stack.enter_context(tempfile.TemporaryFile())  # noqa: SIM115
        fps = Fraction(self.fps).limit_denominator(1001)
        cmd = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y",
               "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}", "-r", str(fps), "-i", "pipe:0",
               "-an", "-c:v", "libx264", "-preset", self.preset, "-crf", str(self.crf), "-pix_fmt", "yuv420p",
               "-movflags", "+faststart", "-f", MP4_FORMATS[self.path.suffix.lower()]]
        if width % 2 or height % 2:
            cmd[-2:-2] = ["-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2"]
        self._proc = subprocess.Popen(cmd + [str(tmp)], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                      stderr=self._log)
        self.size = (width, height)

    def _ffmpeg_error(self, what: str) -> str:
        log = b""
        if self._log is not None:
            self._log.seek(0)
            log = self._log.read()[-2000:]
        return f"{self.path}: {what}; ffmpeg said: {log.decode(errors='replace').strip() or '(nothing)'}"

    def write(self, frame: np.ndarray) -> None:
        """Append one RGB ``uint8`` frame (``H x W x 3``, or ``H x W`` grey) of the video's size."""
        if self._done:
            raise ValueError(f"{self.path}: the writer is closed; open a new VideoWriter")
        frame = np.asarray(frame)
        if frame.ndim == 2:
            frame = np.repeat(frame[:, :, None], 3, axis=2)
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            raise ValueError(f"{self.path}: frame {self.n_frames} is {frame.dtype} {frame.shape}; expected uint8 "
                             "H x W x 3 RGB (convert with np.clip(x, 0, 255).astype(np.uint8))")
        height, width = frame.shape[:2]
        if self._proc is None:
            self._start(width, height)
        elif (width, height) != self.size:
            raise ValueError(f"{self.path}: frame {self.n_frames} is {width}x{height} but the video is "
                             f"{self.size[0]}x{self.size[1]}; resize the frames to one size")
        try:
            self._proc.stdin.write(np.ascontiguousarray(frame).data)
        except BrokenPipeError:
            self._proc.wait()
            raise OSError(self._ffmpeg_error(f"ffmpeg stopped at frame {self.n_frames}")) from None
        self.n_frames += 1

    def close(self) -> int:
        """Finish the video and move it into place; returns the number of frames. No frames is an error."""
        if self._done:
            return self.n_frames
        self._done = True
        try:
            if self._proc is None:
                raise ValueError(f"{self.path}: no frames to write")
            with contextlib.suppress(BrokenPipeError):
                self._proc.stdin.close()
            if self._proc.wait() != 0:
                raise OSError(self._ffmpeg_error(f"ffmpeg failed with exit status {self._proc.returncode}"))
        except BaseException as exc:
            self._stack.__exit__(type(exc), exc, exc.__traceback__)  # removes the temporary file
            raise
        self._stack.close()  # renames the temporary file onto path
        return self.n_frames

    def abort(self, reason: BaseException | None = None) -> None:
        """Stop ffmpeg and remove the partial file (an existing file at ``path`` is left as it was)."""
        if self._done:
            return
        self._done = True
        if self._proc is not None:
            self._proc.kill()
            with contextlib.suppress(BrokenPipeError):
                self._proc.stdin.close()
            self._proc.wait()
        reason = reason or RuntimeError("aborted")
        self._stack.__exit__(type(reason), reason, reason.__traceback__)


def write_video(path: str | Path, frames: Iterable[np.ndarray], fps: float = 30.0, crf: int = 20) -> int:
    """Write RGB frames (any iterable, consumed lazily) to an H.264 mp4 that plays in browsers, Jupyter and Colab,
    atomically. Returns the number of frames written; an empty iterable is an error and leaves no file."""
    with VideoWriter(path, fps, crf) as video:
        for frame in frames:
            video.write(frame)
    return video.n_frames


def codec_of(path: str | Path) -> str:
    """The codec of the first video stream, as ffmpeg names it: ``"h264"``, ``"mpeg4"`` (mp4v), ``"gif"``..."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such video file")
    probe = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path)], capture_output=True,
                           text=True, errors="replace")
    for line in probe.stderr.splitlines():
        if "Stream #" in line and "Video:" in line:
            return line.split("Video:", 1)[1].split()[0].rstrip(",")
    raise ValueError(f"{path}: ffmpeg finds no video stream in this file")


def inline_video_html(path: str | Path, width: int | None = None, max_embed_bytes: int = 8 * 2**20,
                      autoplay: bool = False, src: str | None = None) -> str:
    """A ``<video controls>`` element showing ``path``: embedded as base64 when at most ``max_embed_bytes`` (so it
    plays in Colab and in a saved notebook), else linked by ``src`` (default: the path as given)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such video file")
    mime = VIDEO_MIME.get(path.suffix.lower(), "video/mp4")
    if path.stat().st_size <= max_embed_bytes:
        src = f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"
    elif src is None:
        src = path.as_posix()
    attrs = "controls loop playsinline" + (" autoplay muted" if autoplay else "")
    if width:
        attrs += f' width="{int(width)}"'
    return (f'<video {attrs}><source src="{html.escape(src)}" type="{mime}">'
            f'Your browser cannot play this video: <a href="{html.escape(path.as_posix())}">download it</a>.</video>')


def notebook_video(path: str | Path, width: int | None = None, autoplay: bool = True):
    """An IPython display object playing the (small, embedded) video inline in Jupyter or Colab."""
    from IPython.display import HTML

    return HTML(inline_video_html(path, width, autoplay=autoplay))


def write_gif(path: str | Path, frames: Iterable[np.ndarray], fps: float = 10.0, max_side: int = 0) -> None:
    """Write an animated GIF (looping), optionally downscaled so its longer side is ``max_side``; atomic."""
    def images() -> Iterator[Image.Image]:
        for f in frames:
            if max_side and max(f.shape[:2]) > max_side:
                s = max_side / max(f.shape[:2])
                f = cv2.resize(f, (round(f.shape[1] * s), round(f.shape[0] * s)), interpolation=cv2.INTER_AREA)
            yield Image.fromarray(np.ascontiguousarray(f))

    stream = images()
    first = next(stream, None)
    if first is None:
        raise ValueError(f"{path}: no frames to write")
    with atomic_path(path) as tmp:
        first.save(tmp, format="GIF", save_all=True, append_images=stream, duration=int(1000 / fps), loop=0)
