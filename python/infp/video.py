"""Real footage: video files (through PyAV, i.e. FFmpeg), folders of frames, and their labels.

    >>> from infp import data
    >>> video = data.load_video("line3.mp4", 112, 144, stride=2)     # uint8 (n, 112, 144, 3)
    >>> for chunk in data.iter_video("shift.mkv", 112, 144, chunk=500):  # long files, bounded memory
    ...     ...
    >>> labels = data.load_labels("line3.csv", len(video), stride=2)   # int64 (n,) 0/1
    >>> scores = infp.video.anomaly_scores(model, "shift.mkv")         # scored chunk by chunk

A *video source* is a video file (mp4, avi, mkv, mov, … anything FFmpeg decodes), a folder of
frame images (jpg, png, bmp, tif; natural order, so 2.png comes before 10.png), or a URL PyAV
can open (``rtsp://…``, for live cameras). A folder that holds no frames but video files or
frame folders stands for those videos (:func:`video_sources`), which is what
``Model.fit("DIR")`` and ``python -m infp train --videos DIR`` read.

Frames are uint8 RGB (H, W, 3), resized (when a size is given) with Pillow's bicubic filter, as
:func:`infp.data.load_ipad` and :func:`infp.data.resize_video` do. PyAV is imported only when a
video file is read (``pip install av``); Pillow only when frames are resized or images read.

Label files (:func:`load_labels`), per video:

* ``.npy``: one 0/1 value per frame (1 = anomalous);
* ``.mat``: IPAD's ``gt`` entry, one 0/1 array per test video (as the released INFP code);
* ``.csv``: anomalous frame ranges, one ``start,end`` row per event, 0-based and **inclusive**
  (``10,19`` labels frames 10 to 19); an optional header row (e.g. ``start,end``), blank lines
  and ``#`` comments are allowed; every other frame is normal, and a file with no rows labels
  the whole video normal.
"""

from __future__ import annotations

import csv
import io
import os
from typing import Iterator, List, Optional, Sequence, Tuple

import numpy as np

from . import data as _data

__all__ = ["VIDEO_EXTENSIONS", "LABEL_EXTENSIONS", "iter_video", "load_video", "video_sources", "load_videos",
           "load_labels", "find_labels", "anomaly_scores"]

#: File name endings taken as videos when a folder is listed (any file can be given directly).
VIDEO_EXTENSIONS = (".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".ts", ".mts", ".wmv",
                    ".flv", ".mjpeg", ".mjpg", ".h264", ".h265", ".hevc", ".y4m", ".ogv")
#: Label files :func:`load_labels` reads.
LABEL_EXTENSIONS = (".npy", ".csv", ".mat")


def _av():
    try:
        import av
    except ImportError as e:
        raise ImportError("reading video files needs PyAV (FFmpeg): pip install av") from e
    return av


def _is_url(source) -> bool:
    return isinstance(source, str) and "://" in source and not os.path.exists(source)


def _images_in(folder: str) -> List[str]:
    try:
        entries = list(os.scandir(folder))
    except OSError as e:
        raise OSError(f"cannot list the video folder {folder}: {e.strerror or e}") from e
    return _data._natural_sorted([e.name for e in entries if e.is_file()
                                  and os.path.splitext(e.name)[1].lower() in _data._IMAGE_EXTENSIONS])


def _check_stride(stride, start, max_frames) -> Tuple[int, int, Optional[int]]:
    stride, start = int(stride), int(start)
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    if start < 0:
        raise ValueError(f"start must be >= 0, got {start}")
    if max_frames is not None:
        max_frames = int(max_frames)
        if max_frames < 1:
            raise ValueError(f"max_frames must be >= 1 (or None for all), got {max_frames}")
    return stride, start, max_frames


def _resize(frame: np.ndarray, size) -> np.ndarray:
    if size is None or (frame.shape[1], frame.shape[0]) == size:
        return frame
    Image = _data._pil()
    return np.asarray(Image.fromarray(frame).resize(size, _data._bicubic(Image)), dtype=np.uint8)


def _open_container(av, source: str):
    """Opens a video with PyAV; (container, video stream). Errors name the file."""
    try:
        container = av.open(source, mode="r", timeout=30.0 if _is_url(source) else None)
    except av.error.FFmpegError as e:
        if isinstance(e, OSError):  # missing, permission denied, …: PyAV's errors are OSErrors then
            raise OSError(e.errno, f"cannot open the video {source}: {e.strerror}") from e
        raise ValueError(f"{source} is not a readable video file (FFmpeg: {e.strerror or e})") from e
    if not container.streams.video:
        kinds = ", ".join(s.type for s in container.streams) or "none"
        container.close()
        raise ValueError(f"{source} holds no video stream (its streams: {kinds})")
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"  # frame and slice threads in the decoder
    return container, stream


def _file_frames(source: str, size, stride: int, start: int, max_frames: Optional[int]) -> Iterator[np.ndarray]:
    av = _av()
    container, stream = _open_container(av, source)
    index = yielded = 0
    first = None
    try:
        try:
            for frame in container.decode(stream):
                if index >= start and (index - start) % stride == 0:
                    if size is not None and (frame.width, frame.height) != size:
                        rgb = np.asarray(frame.to_image().resize(size, _data._bicubic(_data._pil())), np.uint8)
                    else:
                        rgb = frame.to_ndarray(format="rgb24")
                        if yielded and rgb.shape != first:
                            raise ValueError(f"{source}: frame {index} is {rgb.shape[1]}×{rgb.shape[0]}, the first "
                                             f"was {first[1]}×{first[0]}; give height and width to resize them all")
                    first = first if yielded else rgb.shape
                    yield rgb
                    yielded += 1
                    if max_frames is not None and yielded >= max_frames:
                        return
                index += 1
        except av.error.FFmpegError as e:
            raise ValueError(f"{source}: decoding failed after {index} frames (FFmpeg: {e.strerror or e})") from e
        if index == 0:
            raise ValueError(f"{source} holds a video stream but no decodable frames")
        if yielded == 0:
            raise ValueError(f"{source} has {index} frames, none from start={start}")
    finally:
        container.close()


def _folder_frames(folder: str, files: List[str], size, stride: int, start: int,
                   max_frames: Optional[int]) -> Iterator[np.ndarray]:
    picked = files[start::stride]
    if max_frames is not None:
        picked = picked[:max_frames]
    if not picked:
        raise ValueError(f"{folder} has {len(files)} frames, none from start={start}")
    first = None
    for name in picked:
        path = os.path.join(folder, name)
        try:
            frame = _data._read_frame(path, size)
        except OSError as e:  # Pillow's UnidentifiedImageError is an OSError
            raise ValueError(f"{path} is not a readable image: {e}") from e
        if first is None:
            first = frame.shape
        elif frame.shape != first:
            raise ValueError(f"{path} is {frame.shape[1]}×{frame.shape[0]}, the first frame of {folder} is "
                             f"{first[1]}×{first[0]}; give height and width to resize them all")
        yield frame


def _chunks(frames: Iterator[np.ndarray], chunk: int) -> Iterator[np.ndarray]:
    buf = []
    for f in frames:
        buf.append(f)
        if len(buf) == chunk:
            yield np.stack(buf)
            buf = []
    if buf:
        yield np.stack(buf)


def iter_video(source, height: Optional[int] = None, width: Optional[int] = None, *, stride: int = 1,
               start: int = 0, max_frames: Optional[int] = None,
               chunk: Optional[int] = None) -> Iterator[np.ndarray]:
    """Reads a video source frame by frame (or chunk by chunk), for files too long to hold.

    Args:
        source: a video file, a folder of frame images, or a URL (``rtsp://…``) PyAV opens.
        height, width: resize every frame to this size (Pillow bicubic); None keeps the
            source's size (give both or neither).
        stride: keep every ``stride``-th frame (frames start, start+stride, …).
        start: skip the frames before this index (0-based, in the source's frames).
        max_frames: stop after this many frames (None = to the end).
        chunk: yield uint8 arrays (≤ chunk, H, W, 3) instead of single frames (H, W, 3).
    Returns:
        an iterator of uint8 RGB frames (or chunks). The source is checked when this is called
        (missing, empty, not a video: FileNotFoundError / ValueError naming it); decoding
        errors surface while iterating, as ValueError naming the file and the frame.
    """
    stride, start, max_frames = _check_stride(stride, start, max_frames)
    if chunk is not None and int(chunk) < 1:
        raise ValueError(f"chunk must be >= 1 (or None for single frames), got {chunk}")
    size = _data._size(height, width)
    if isinstance(source, np.ndarray):  # already frames: the same options, for uniform code
        v = np.asarray(source)
        if v.dtype != np.uint8 or v.ndim != 4 or v.shape[-1] != 3:
            raise ValueError(f"expected uint8 RGB frames (n, H, W, 3), got {v.dtype} {v.shape}")
        v = v[start::stride][:max_frames]
        frames: Iterator[np.ndarray] = (_resize(f, size) for f in v)
    else:
        src = os.fspath(source)
        if _is_url(src):
            _av()
            frames = _file_frames(src, size, stride, start, max_frames)
        elif os.path.isdir(src):
            files = _images_in(src)
            if not files:
                inner = _inner_videos(src)
                hint = (f"; it holds {len(inner)} videos (files or frame folders): read them with "
                        f"infp.data.load_videos or infp.video.video_sources") if inner else ""
                raise ValueError(f"the video folder {src} holds no frame images "
                                 f"({'/'.join(_data._IMAGE_EXTENSIONS)}){hint}")
            frames = _folder_frames(src, files, size, stride, start, max_frames)
        elif not os.path.exists(src):
            raise FileNotFoundError(f"no video file or folder {src}")
        else:
            if os.path.getsize(src) == 0:
                raise ValueError(f"{src} is empty (0 bytes), not a video")
            av = _av()
            container, _ = _open_container(av, src)  # fail now, not at the first frame
            container.close()
            frames = _file_frames(src, size, stride, start, max_frames)
    return _chunks(frames, int(chunk)) if chunk is not None else frames


def load_video(source, height: Optional[int] = None, width: Optional[int] = None, *, stride: int = 1,
               start: int = 0, max_frames: Optional[int] = None) -> np.ndarray:
    """Reads a whole video source into memory: uint8 RGB (n, H, W, 3).

    ``source`` is a video file (mp4, avi, mkv, … through PyAV), a folder of frame images or a
    URL; the other arguments are those of :func:`iter_video`. For files too long to hold, use
    :func:`iter_video` with ``chunk`` (or :func:`anomaly_scores` to score one).
    """
    frames = list(iter_video(source, height, width, stride=stride, start=start, max_frames=max_frames))
    if not frames:  # only an ndarray source can get here (files raise while decoding)
        raise ValueError(f"no frames left in the video (stride={stride}, start={start})")
    return np.stack(frames)


def _inner_videos(folder: str) -> List[str]:
    out = []
    for e in os.scandir(folder):
        if e.is_file() and os.path.splitext(e.name)[1].lower() in VIDEO_EXTENSIONS:
            out.append(e.name)
        elif e.is_dir() and _images_in(e.path):
            out.append(e.name)
    return [os.path.join(folder, n) for n in _data._natural_sorted(out)]


def video_sources(path) -> List[str]:
    """The videos a path stands for, in natural order: a video file (or URL) is one video; a
    folder of frame images is one video; any other folder stands for the video files
    (:data:`VIDEO_EXTENSIONS`) and frame-image folders directly inside it.

    Raises FileNotFoundError for a missing path, ValueError for a folder with no videos.
    """
    p = os.fspath(path)
    if _is_url(p):
        return [p]
    if not os.path.exists(p):
        raise FileNotFoundError(f"no video file or folder {p}")
    if not os.path.isdir(p) or _images_in(p):
        return [p]
    found = _inner_videos(p)
    if not found:
        raise ValueError(f"{p} holds no videos: no frame images, no video files ({', '.join(VIDEO_EXTENSIONS[:6])}, …) "
                         f"and no sub-folders of frame images")
    return found


def _source_list(paths) -> List[str]:
    if isinstance(paths, (str, os.PathLike)):
        return video_sources(paths)
    out = []
    for p in paths:
        out.extend(video_sources(p))
    return out


def load_videos(paths, height: Optional[int] = None, width: Optional[int] = None, *, stride: int = 1,
                max_frames: Optional[int] = None) -> Tuple[List[np.ndarray], List[str]]:
    """Reads every video that a path (or list of paths) stands for (:func:`video_sources`).

    Returns:
        (videos, sources): uint8 RGB (n, H, W, 3) arrays and the file or folder each came from.
    """
    sources = _source_list(paths)
    if not sources:
        raise ValueError("no videos given")
    return [load_video(s, height, width, stride=stride, max_frames=max_frames) for s in sources], sources


# -- labels -----------------------------------------------------------------------------------

def _mat_count(path: str) -> int:
    """How many label arrays IPAD's .mat file holds (``gt``), for :func:`infp.data._mat_labels`."""
    try:
        import scipy.io
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(f"reading the labels in {path} needs SciPy: pip install scipy") from e
    try:
        gt = scipy.io.loadmat(path, squeeze_me=True).get("gt")
    except (ValueError, OSError, TypeError) as e:
        raise ValueError(f"{path} is not a readable .mat file: {e}") from e
    if gt is None:
        return 1  # _mat_labels reports the missing entry
    gt = np.asarray(gt)
    if gt.dtype == object:
        return max(1, gt.size)
    return gt.shape[0] if gt.ndim == 2 else 1


def _csv_ranges(path: str) -> List[Tuple[int, int, int]]:
    """(line number, start, end) of each row of a CSV of inclusive frame ranges."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            text = f.read()
    except UnicodeDecodeError as e:
        raise ValueError(f"{path} is not a text CSV file of 'start,end' frame ranges") from e
    rows = []
    seen_data = False
    for lineno, row in enumerate(csv.reader(io.StringIO(text)), 1):
        cells = [c.strip() for c in row]
        if not cells or all(c == "" for c in cells) or cells[0].startswith("#"):
            continue
        if len(cells) < 2 or any(c == "" for c in cells[:2]):
            raise ValueError(f"{path}, line {lineno}: expected 'start,end' (two frame numbers), got {row!r}")
        try:
            a, b = int(cells[0]), int(cells[1])
        except ValueError:
            if not seen_data and not rows:
                seen_data = True  # a header row, only as the first row
                continue
            raise ValueError(f"{path}, line {lineno}: 'start,end' must be whole frame numbers, got {row!r}") from None
        seen_data = True
        if a < 0 or b < a:
            raise ValueError(f"{path}, line {lineno}: the range {a},{b} is not 0 <= start <= end (inclusive ends)")
        rows.append((lineno, a, b))
    return rows


def _sample(full: np.ndarray, n: int, stride: int, start: int, where: str) -> np.ndarray:
    lab = full[start::stride]
    if lab.shape[0] != n:
        how = f" ({lab.shape[0]} from frame {start} every {stride})" if (stride, start) != (1, 0) else ""
        raise ValueError(f"labels {where} have {full.shape[0]} frames{how}, the video has {n}")
    return np.ascontiguousarray(lab)


def load_labels(path, n_frames, *, stride: int = 1, start: int = 0, index: Optional[int] = None):
    """Per-frame labels (int64 0/1, 1 = anomalous) from a ``.npy``, ``.mat`` or ``.csv`` file
    (formats in the module's doc), checked against the video's length.

    Args:
        path: the label file.
        n_frames: frames of the video as loaded (after ``stride``/``start``), or a list of
            lengths, one per video, for a ``.mat`` file holding several videos' labels.
        stride, start: those the video was read with (:func:`load_video`): the labels of
            frames start, start+stride, … are returned.
        index: for a ``.mat`` holding several videos and an int ``n_frames``: which one.
    Returns:
        int64 (n_frames,), or a list of them when ``n_frames`` is a list.
    Raises:
        FileNotFoundError; ValueError naming the file when it is unreadable, its values are
        not 0/1, a CSV row is malformed, or the length does not fit the video.
    """
    p = os.fspath(path)
    stride, start, _ = _check_stride(stride, start, None)
    many = not np.isscalar(n_frames)
    lengths = [int(n) for n in (n_frames if many else [n_frames])]
    if any(n < 1 for n in lengths):
        raise ValueError(f"n_frames must be positive, got {n_frames}")
    if not os.path.isfile(p):
        raise FileNotFoundError(f"no label file {p}")
    ext = os.path.splitext(p)[1].lower()
    if ext == ".mat":
        count = len(lengths) if many else _mat_count(p)
        arrays = _data._mat_labels(p, count)
        if many:
            out = [_sample(a, n, stride, start, f"{i} in {p}") for i, (a, n) in enumerate(zip(arrays, lengths))]
            return out
        if index is None:
            if len(arrays) != 1:
                raise ValueError(f"{p} holds the labels of {len(arrays)} videos: pass index= (which one) or "
                                 f"a list of the videos' lengths as n_frames")
            index = 0
        if not 0 <= int(index) < len(arrays):
            raise IndexError(f"index {index} out of range: {p} holds the labels of {len(arrays)} videos")
        return _sample(arrays[int(index)], lengths[0], stride, start, f"[{index}] in {p}")
    if many:
        if len(lengths) != 1:
            raise ValueError(f"{p} holds the labels of one video; got {len(lengths)} lengths")
        return [load_labels(p, lengths[0], stride=stride, start=start)]
    n = lengths[0]
    if ext == ".npy":
        try:
            raw = np.load(p, allow_pickle=False)
        except (ValueError, OSError) as e:
            raise ValueError(f"{p} is not a readable .npy file: {e}") from e
        return _sample(_data._as_labels(raw, f"in {p}"), n, stride, start, f"in {p}")
    if ext == ".csv" or ext == ".txt":
        # The original video had between start + (n-1)·stride + 1 and start + n·stride frames.
        full_len = start + n * stride
        full = np.zeros(full_len, np.int64)
        for lineno, a, b in _csv_ranges(p):
            if a >= full_len:
                raise ValueError(f"{p}, line {lineno}: frames {a}–{b} start past the video's {n} frames"
                                 + (f" (read every {stride} from {start})" if (stride, start) != (1, 0) else ""))
            if stride == 1 and start == 0 and b >= n:
                raise ValueError(f"{p}, line {lineno}: frames {a}–{b} end past the video's last frame {n - 1} "
                                 f"(ranges are 0-based and inclusive)")
            full[a:b + 1] = 1
        return np.ascontiguousarray(full[start::stride][:n])
    raise ValueError(f"{p}: unknown label format {ext or '(no extension)'}; use .npy (per frame 0/1), "
                     f".mat (IPAD's gt) or .csv (start,end rows of inclusive frame ranges)")


def _stem(source: str) -> str:
    base = os.path.basename(os.path.normpath(source))
    return base if os.path.isdir(source) else os.path.splitext(base)[0]


def find_labels(sources: Sequence[str], lengths: Sequence[int], labels=None, *, stride: int = 1) -> List[np.ndarray]:
    """The labels of test videos read from ``sources`` (e.g. by :func:`load_videos`).

    Args:
        sources: the video files or frame folders; lengths: their frame counts as loaded.
        labels: None: for each video ``<stem>.npy`` or ``<stem>.csv`` beside it or in a
            ``labels/`` folder beside it (``cam1.mp4`` → ``cam1.csv``), or, failing those, a
            single ``.mat`` file beside the videos holding them all; a folder: ``<stem>.npy``
            / ``<stem>.csv`` in it; one ``.mat`` file: one array per video, in order; a list of
            files: one per video, in order.
        stride: the stride the videos were read with.
    """
    sources, lengths = list(sources), [int(n) for n in lengths]
    if len(sources) != len(lengths):
        raise ValueError(f"{len(sources)} sources but {len(lengths)} lengths")
    if isinstance(labels, (list, tuple)) and len(labels) == 1:
        labels = labels[0]
    if isinstance(labels, (list, tuple)):
        if len(labels) != len(sources):
            raise ValueError(f"{len(labels)} label files for {len(sources)} videos; give one per video, "
                             f"a folder of <video name>.npy/.csv, or one .mat")
        return [load_labels(f, n, stride=stride) for f, n in zip(labels, lengths)]
    if labels is not None:
        lp = os.fspath(labels)
        if os.path.isfile(lp) and lp.lower().endswith(".mat"):
            return load_labels(lp, lengths, stride=stride)
        if os.path.isfile(lp):
            if len(sources) != 1:
                raise ValueError(f"one label file {lp} for {len(sources)} videos")
            return [load_labels(lp, lengths[0], stride=stride)]
        if not os.path.isdir(lp):
            raise FileNotFoundError(f"no label file or folder {lp}")
        folders = [lp]
    else:
        folders = None
    out = []
    for src, n in zip(sources, lengths):
        stem = _stem(src)
        here = os.path.dirname(os.path.normpath(src))
        places = folders or [here, os.path.join(here, "labels")]
        found = next((os.path.join(d, stem + e) for d in places for e in (".npy", ".csv")
                      if os.path.isfile(os.path.join(d, stem + e))), None)
        if found is None:
            if labels is None:
                mats = sorted(f for f in os.listdir(here) if f.lower().endswith(".mat")) if os.path.isdir(here) else []
                if len(mats) == 1 and all(os.path.dirname(os.path.normpath(s)) == here for s in sources):
                    return load_labels(os.path.join(here, mats[0]), lengths, stride=stride)
            raise FileNotFoundError(f"no labels for the video {src}: looked for {stem}.npy / {stem}.csv in "
                                    f"{', '.join(places)}")
        out.append(load_labels(found, n, stride=stride))
    return out


# -- scoring long files -------------------------------------------------------------------------

def anomaly_scores(model, source, method: str = "memory", *, chunk: int = 512, stride: int = 1,
                   patch_size: int = 16, smoothing: int = 1) -> np.ndarray:
    """:meth:`infp.Model.anomaly_scores` of a video file or folder read chunk by chunk, so a
    long recording never has to fit in memory; the scores equal those of the whole video
    (consecutive chunks overlap by the 4 input frames plus ``smoothing - 1``).

    Args:
        model: an :class:`infp.Model`; source: a video source (or a uint8 array).
        method, patch_size, smoothing: as :meth:`infp.Model.anomaly_scores`.
        chunk: frames decoded (at the model's size) per call into the library.
        stride: keep every ``stride``-th frame of the source.
    Returns:
        float32 scores of frames 4..n-1 (n = frames read), higher = more anomalous.
    """
    chunk, smoothing = int(chunk), int(smoothing)
    overlap = 4 + max(smoothing, 1) - 1
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1, got {chunk}")
    _, h, w = model.frame_shape
    out: List[np.ndarray] = []
    tail = None  # the last `overlap` frames already scored
    total = 0
    for part in iter_video(source, h, w, stride=stride, chunk=chunk):
        frames = part if tail is None else np.concatenate([tail, part])
        total += part.shape[0]
        if frames.shape[0] >= 5:
            s = model.anomaly_scores(frames, method, patch_size=patch_size, smoothing=smoothing)
            # scores of frames already scored in the previous call come first: drop them
            fresh = part.shape[0] if tail is not None and tail.shape[0] >= 4 else s.shape[0]
            out.append(s[s.shape[0] - min(fresh, s.shape[0]):])
            tail = frames[-overlap:]
        else:
            tail = frames
    if total < 5:
        raise ValueError(f"scoring needs at least 5 frames, {source} has {total}")
    return np.concatenate(out).astype(np.float32, copy=False)
