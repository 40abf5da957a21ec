"""Synthetic test media with known ground truth.

Every generator writes one file and returns a :class:`Clip` that says what is in it (cut times,
motion, tempo, tone level, text, rotation, frame times…), so tests and the demo can check the
pipeline's answers against facts rather than against earlier outputs. Clips are encoded with
PyAV (H.264 ``ultrafast`` + AAC in MP4) and kept small, because encoding is the slow part.

Spoken words need Debian's ``espeak-ng``; :func:`speech` raises
:class:`~trendflow.errors.DependencyMissing` naming the package when it is absent.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import wave
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from trendflow.errors import DependencyMissing

AUDIO_RATE = 48_000

# Distinct, saturated scene colours (RGB) so that every cut changes colour and brightness.
_SCENE_COLOURS: tuple[tuple[int, int, int], ...] = (
    (220, 40, 40),
    (30, 160, 60),
    (40, 60, 220),
    (240, 210, 40),
    (150, 40, 200),
    (20, 200, 210),
    (250, 130, 20),
    (90, 90, 90),
)


@dataclass(frozen=True)
class Clip:
    """A generated file and the facts it was built from (``None``: not applicable)."""

    path: Path
    duration_s: float
    fps: float | None = None
    width: int | None = None  # stored (coded) size
    height: int | None = None
    has_audio: bool = False
    cuts_s: tuple[float, ...] = ()  # scene changes, seconds
    motion_px_per_frame: float | None = None  # horizontal pan speed in source pixels
    bpm: float | None = None
    click_times_s: tuple[float, ...] = ()
    tone_hz: float | None = None
    tone_peak_dbfs: float | None = None
    tone_rms_dbfs: float | None = None
    text: str | None = None
    words: tuple[str, ...] = ()
    faces: int | None = None
    rotation: int = 0  # display rotation, degrees counter-clockwise
    display_width: int | None = None  # after rotation
    display_height: int | None = None
    frame_times_s: tuple[float, ...] = ()  # presentation times of the source frames (VFR)
    notes: dict[str, object] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# Low-level writers


def write_video(
    path: Path,
    frames: Iterable[np.ndarray],
    *,
    fps: float,
    audio: np.ndarray | None = None,
    audio_rate: int = AUDIO_RATE,
    rotation: int = 0,
    frame_times_s: Sequence[float] | None = None,
    crf: int = 23,
    faststart: bool = False,
) -> Path:
    """Encode RGB uint8 ``frames`` (H.264) and mono float32 ``audio`` (AAC) into an MP4.

    ``frame_times_s`` gives each frame its own presentation time (variable frame rate);
    ``rotation`` stores a display matrix (counter-clockwise degrees) like phones do.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    options = {"movflags": "+faststart"} if faststart else {}
    rate = Fraction(fps).limit_denominator(1001)
    with av.open(str(path), "w", format="mp4", options=options) as out:
        vstream: av.VideoStream | None = None
        astream = None
        if audio is not None:
            astream = out.add_stream("aac", rate=audio_rate, layout="mono")
        time_base = Fraction(1, 1000) if frame_times_s is not None else 1 / rate
        for i, rgb in enumerate(frames):
            if vstream is None:
                vstream = out.add_stream("libx264", rate=rate)
                vstream.height, vstream.width = rgb.shape[:2]
                vstream.pix_fmt = "yuv420p"
                vstream.time_base = time_base
                vstream.codec_context.time_base = time_base
                vstream.options = {"preset": "ultrafast", "crf": str(crf)}
                if rotation:
                    vstream.set_display_rotation(rotation)
            if rgb.shape[:2] != (vstream.height, vstream.width):
                raise ValueError(f"frame {i} is {rgb.shape[:2]}, the first was "
                                 f"{(vstream.height, vstream.width)}")
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
            if frame_times_s is not None:
                frame.pts = round(frame_times_s[i] * 1000)
            else:
                frame.pts = i
            frame.time_base = time_base
            out.mux(vstream.encode(frame))
        if vstream is None:
            raise ValueError("write_video needs at least one frame")
        out.mux(vstream.encode(None))
        if astream is not None and audio is not None:
            _encode_audio(out, astream, audio, audio_rate)
    return path


def _encode_audio(
    out: av.container.OutputContainer, stream: av.AudioStream, samples: np.ndarray, rate: int
) -> None:
    block = rate  # one second per frame keeps memory flat for long clips
    data = np.clip(samples, -1.0, 1.0).astype(np.float32)
    for start in range(0, len(data), block):
        piece = data[start : start + block]
        frame = av.AudioFrame.from_ndarray(piece[None, :], format="flt", layout="mono")
        frame.sample_rate = rate
        frame.pts = start
        frame.time_base = Fraction(1, rate)
        out.mux(stream.encode(frame))
    out.mux(stream.encode(None))


def write_audio_only(path: Path, samples: np.ndarray, rate: int = AUDIO_RATE) -> Path:
    """An AAC-in-M4A file with no video stream (a valid file that is not a video)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("aac", rate=rate, layout="mono")
        _encode_audio(out, stream, samples, rate)
    return path


def _repeat(frame: np.ndarray, n: int) -> Iterable[np.ndarray]:
    for _ in range(n):
        yield frame


def _n_frames(duration_s: float, fps: float) -> int:
    return max(1, round(duration_s * fps))


def _sine(freq_hz: float, duration_s: float, peak: float, rate: int = AUDIO_RATE) -> np.ndarray:
    t = np.arange(round(duration_s * rate)) / rate
    return (peak * np.sin(2 * np.pi * freq_hz * t)).astype(np.float32)


def _bed(duration_s: float, kind: str | None) -> np.ndarray | None:
    """Default audio under a visual clip: a quiet 440 Hz tone, silence, or none."""
    match kind:
        case None:
            return None
        case "tone":
            return _sine(440.0, duration_s, 0.1)
        case "silence":
            return np.zeros(round(duration_s * AUDIO_RATE), np.float32)
    raise ValueError(f"unknown audio bed {kind!r} (tone, silence or None)")


def _texture(height: int, width: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (-(-height // 8), -(-width // 8), 3), dtype=np.uint8)
    return np.repeat(np.repeat(small, 8, axis=0), 8, axis=1)[:height, :width]


# ---------------------------------------------------------------------------------------------
# Visual content


def scene_cuts(
    path: Path,
    cuts_s: Sequence[float] = (2.0, 4.0, 6.0),
    duration_s: float = 8.0,
    fps: float = 24.0,
    size: tuple[int, int] = (192, 108),
    audio: str | None = "tone",
) -> Clip:
    """Hard cuts at ``cuts_s``: each scene is a different colour with its own static texture."""
    width, height = size
    cuts = sorted(float(c) for c in cuts_s)
    if any(c <= 0 or c >= duration_s for c in cuts):
        raise ValueError("cuts must lie strictly inside the clip")
    scenes = []
    for k in range(len(cuts) + 1):
        colour = np.array(_SCENE_COLOURS[k % len(_SCENE_COLOURS)], np.float32)
        tex = _texture(height, width, seed=k).astype(np.float32)
        scenes.append((0.75 * colour + 0.25 * tex).astype(np.uint8))
    n = _n_frames(duration_s, fps)

    def frames() -> Iterable[np.ndarray]:
        for i in range(n):
            yield scenes[int(np.searchsorted(cuts, i / fps, side="right"))]

    write_video(path, frames(), fps=fps, audio=_bed(duration_s, audio))
    # A cut lands on the first frame at or after its time.
    actual = tuple(float(np.ceil(c * fps - 1e-9) / fps) for c in cuts)
    return Clip(Path(path), n / fps, fps, width, height, audio is not None, cuts_s=actual)


def slow_fade(
    path: Path,
    duration_s: float = 6.0,
    fps: float = 24.0,
    size: tuple[int, int] = (192, 108),
    audio: str | None = "tone",
) -> Clip:
    """A slow fade from black to a textured scene: gradual change, no cut."""
    width, height = size
    target = (0.6 * _texture(height, width, 7) + 80).clip(0, 255).astype(np.float32)
    n = _n_frames(duration_s, fps)
    frames = ((target * (i / (n - 1))).astype(np.uint8) for i in range(n))
    write_video(path, frames, fps=fps, audio=_bed(duration_s, audio))
    return Clip(Path(path), n / fps, fps, width, height, audio is not None, cuts_s=())


def static(
    path: Path,
    duration_s: float = 6.0,
    fps: float = 24.0,
    size: tuple[int, int] = (192, 108),
    audio: str | None = "tone",
    colour: tuple[int, int, int] = (120, 130, 140),
) -> Clip:
    """One still picture for the whole clip (no motion, no cuts)."""
    width, height = size
    frame = np.empty((height, width, 3), np.uint8)
    frame[:] = colour
    n = _n_frames(duration_s, fps)
    write_video(path, _repeat(frame, n), fps=fps, audio=_bed(n / fps, audio))
    return Clip(Path(path), n / fps, fps, width, height, audio is not None, motion_px_per_frame=0.0)


def pan(
    path: Path,
    px_per_frame: int = 4,
    duration_s: float = 6.0,
    fps: float = 24.0,
    size: tuple[int, int] = (192, 108),
    audio: str | None = "tone",
) -> Clip:
    """A texture sliding left at a constant ``px_per_frame`` (known horizontal motion)."""
    width, height = size
    n = _n_frames(duration_s, fps)
    strip = _texture(height, width + px_per_frame * n + 8, 11)
    frames = (strip[:, i * px_per_frame : i * px_per_frame + width] for i in range(n))
    write_video(path, frames, fps=fps, audio=_bed(duration_s, audio))
    return Clip(
        Path(path), n / fps, fps, width, height, audio is not None,
        motion_px_per_frame=float(px_per_frame),
    )


def face_clip(
    path: Path,
    duration_s: float = 6.0,
    fps: float = 12.0,
    size: tuple[int, int] = (320, 320),
    audio: str | None = "tone",
) -> Clip:
    """One real face (``skimage.data.astronaut()``) held still for the whole clip."""
    import cv2
    from skimage import data

    width, height = size
    img = cv2.resize(data.astronaut(), (width, height), interpolation=cv2.INTER_AREA)
    n = _n_frames(duration_s, fps)
    write_video(path, _repeat(img, n), fps=fps, audio=_bed(duration_s, audio), crf=18)
    return Clip(Path(path), n / fps, fps, width, height, audio is not None, faces=1)


def text_clip(
    path: Path,
    text: str = "TRENDFLOW 2025",
    duration_s: float = 6.0,
    fps: float = 12.0,
    size: tuple[int, int] = (480, 270),
    audio: str | None = "tone",
) -> Clip:
    """Black ``text`` rendered large on a white background for the whole clip."""
    import cv2

    width, height = size
    img = np.full((height, width, 3), 255, np.uint8)
    scale = 1.0
    font = cv2.FONT_HERSHEY_SIMPLEX
    (tw, th), _ = cv2.getTextSize(text, font, scale, 2)
    scale = min(2.5, 0.85 * width / tw)
    (tw, th), _ = cv2.getTextSize(text, font, scale, 2)
    org = ((width - tw) // 2, (height + th) // 2)
    cv2.putText(img, text, org, font, scale, (0, 0, 0), max(2, round(2 * scale)), cv2.LINE_AA)
    n = _n_frames(duration_s, fps)
    write_video(path, _repeat(img, n), fps=fps, audio=_bed(duration_s, audio), crf=18)
    return Clip(Path(path), n / fps, fps, width, height, audio is not None, text=text)


# ---------------------------------------------------------------------------------------------
# Audio content (over a still picture)


def _still(size: tuple[int, int]) -> np.ndarray:
    width, height = size
    return np.full((height, width, 3), 64, np.uint8)


def click_track(
    path: Path,
    bpm: float = 120.0,
    duration_s: float = 8.0,
    fps: float = 12.0,
    size: tuple[int, int] = (96, 64),
) -> Clip:
    """Short 1 kHz clicks (10 ms, peak 0.8) on every beat at ``bpm``, starting at t = 0."""
    samples = np.zeros(round(duration_s * AUDIO_RATE), np.float32)
    click = _sine(1000.0, 0.010, 0.8) * np.hanning(round(0.010 * AUDIO_RATE)).astype(np.float32)
    times = np.arange(0.0, duration_s - 0.02, 60.0 / bpm)
    for t in times:
        start = round(t * AUDIO_RATE)
        samples[start : start + len(click)] += click
    n = _n_frames(duration_s, fps)
    write_video(path, _repeat(_still(size), n), fps=fps, audio=samples)
    return Clip(
        Path(path), n / fps, fps, size[0], size[1], True,
        bpm=float(bpm), click_times_s=tuple(float(t) for t in times),
    )


def tone(
    path: Path,
    freq_hz: float = 1000.0,
    dbfs: float = -20.0,
    duration_s: float = 6.0,
    fps: float = 12.0,
    size: tuple[int, int] = (96, 64),
) -> Clip:
    """A steady sine at ``freq_hz`` whose peak is ``dbfs`` (RMS is 3.01 dB lower)."""
    peak = 10 ** (dbfs / 20)
    n = _n_frames(duration_s, fps)
    write_video(path, _repeat(_still(size), n), fps=fps, audio=_sine(freq_hz, duration_s, peak))
    return Clip(
        Path(path), n / fps, fps, size[0], size[1], True,
        tone_hz=float(freq_hz), tone_peak_dbfs=float(dbfs),
        tone_rms_dbfs=float(dbfs + 20 * np.log10(np.sqrt(0.5))),
    )


def silence(
    path: Path, duration_s: float = 6.0, fps: float = 12.0, size: tuple[int, int] = (96, 64)
) -> Clip:
    """An audio track of digital silence over a still picture."""
    n = _n_frames(duration_s, fps)
    audio = np.zeros(round(duration_s * AUDIO_RATE), np.float32)
    write_video(path, _repeat(_still(size), n), fps=fps, audio=audio)
    return Clip(Path(path), n / fps, fps, size[0], size[1], True)


def espeak_binary() -> str:
    """Path of ``espeak-ng``; DependencyMissing names the Debian package when it is absent."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise DependencyMissing(
            "spoken test audio needs the espeak-ng program "
            "(Debian package 'espeak-ng': apt-get install espeak-ng)",
            dependency="espeak-ng",
        )
    return exe


def spoken(text: str, *, voice: str = "en-us", words_per_minute: int = 140) -> np.ndarray:
    """``text`` spoken by espeak-ng in ``voice`` (e.g. ``en-us``, ``ru``): mono float32 samples
    at :data:`AUDIO_RATE`."""
    exe = espeak_binary()
    with tempfile.TemporaryDirectory(prefix="trendflow-speech-") as tmp:
        wav = Path(tmp) / "speech.wav"
        subprocess.run(
            [exe, "-v", voice, "-s", str(words_per_minute), "-w", str(wav), text],
            check=True, capture_output=True, timeout=60,
        )
        with wave.open(str(wav)) as w:
            rate = w.getframerate()
            pcm = np.frombuffer(w.readframes(w.getnframes()), np.int16)
            if w.getnchannels() > 1:
                pcm = pcm.reshape(-1, w.getnchannels())[:, 0]
    samples = pcm.astype(np.float32) / 32768.0
    if rate != AUDIO_RATE:
        from scipy.signal import resample_poly

        g = np.gcd(rate, AUDIO_RATE)
        samples = resample_poly(samples, AUDIO_RATE // g, rate // g).astype(np.float32)
    return samples


def speech(
    path: Path,
    words: Sequence[str] = ("hello", "creators", "welcome", "to", "the", "channel"),
    fps: float = 12.0,
    size: tuple[int, int] = (96, 64),
    pad_s: float = 1.0,
) -> Clip:
    """``words`` spoken by espeak-ng (English), padded to at least 5 s, over a still picture."""
    voice = spoken(" ".join(words))
    pad = np.zeros(round(pad_s * AUDIO_RATE), np.float32)
    samples = np.concatenate([pad, voice, pad])
    duration = max(5.5, len(samples) / AUDIO_RATE)
    samples = np.pad(samples, (0, round(duration * AUDIO_RATE) - len(samples)))
    n = _n_frames(duration, fps)
    write_video(path, _repeat(_still(size), n), fps=fps, audio=samples)
    return Clip(
        Path(path), n / fps, fps, size[0], size[1], True, words=tuple(words),
        notes={"speech_start_s": pad_s, "speech_end_s": pad_s + len(voice) / AUDIO_RATE},
    )


# ---------------------------------------------------------------------------------------------
# Variants and bad inputs


def no_audio(path: Path, duration_s: float = 6.0) -> Clip:
    """A valid video without any audio stream."""
    return scene_cuts(path, cuts_s=(duration_s / 2,), duration_s=duration_s, audio=None)


def uhd_4k(path: Path, duration_s: float = 5.5, fps: float = 4.0) -> Clip:
    """3840×2160 scene cuts (cheap: low frame rate) — must be downscaled, not refused."""
    return scene_cuts(
        path, cuts_s=(duration_s / 2,), duration_s=duration_s, fps=fps, size=(3840, 2160)
    )


def vertical(path: Path, duration_s: float = 6.0, size: tuple[int, int] = (108, 192)) -> Clip:
    """A 9:16 portrait clip (stored portrait, no rotation metadata)."""
    return scene_cuts(path, cuts_s=(duration_s / 2,), duration_s=duration_s, size=size)


def rotated(
    path: Path, rotation: int = 90, duration_s: float = 6.0, size: tuple[int, int] = (192, 108)
) -> Clip:
    """A landscape-coded clip with a display matrix (like phones write).

    The stored picture has a white band on its left quarter; displayed (rotated ``rotation``°
    counter-clockwise) the band is at the bottom for 90°, at the top for 270°.
    """
    width, height = size
    img = np.full((height, width, 3), 40, np.uint8)
    img[:, : width // 4] = 255
    n = _n_frames(duration_s, 24.0)
    write_video(path, _repeat(img, n), fps=24.0, audio=_bed(duration_s, "tone"), rotation=rotation)
    swap = rotation % 180 == 90
    return Clip(
        Path(path), n / 24.0, 24.0, width, height, True, rotation=rotation % 360,
        display_width=height if swap else width, display_height=width if swap else height,
    )


def vfr(path: Path, duration_s: float = 6.0, size: tuple[int, int] = (96, 64)) -> Clip:
    """Variable frame rate: intervals alternate 1/30 s and 1/5 s; frame ``i`` is grey
    ``20 + 23·i mod 220``.

    ``frame_times_s`` lists each source frame's time: a 12 fps timeline frame ``k`` shows the last
    source frame that starts before ``(k + 1/2) / 12`` s (FFmpeg's fps filter rounds to nearest).
    """
    times: list[float] = []
    t, i = 0.0, 0
    while t < duration_s - 1e-9:
        times.append(round(t, 3))
        t += 1 / 30 if i % 2 == 0 else 0.2
        i += 1
    width, height = size
    levels = [20 + (k * 23) % 220 for k in range(len(times))]
    frames = (np.full((height, width, 3), lv, np.uint8) for lv in levels)
    write_video(path, frames, fps=30.0, audio=_bed(duration_s, "tone"), frame_times_s=times)
    return Clip(
        Path(path), duration_s, None, width, height, True,
        frame_times_s=tuple(times), notes={"grey_levels": tuple(levels)},
    )


def truncated(path: Path, keep_fraction: float = 0.5, duration_s: float = 8.0) -> Clip:
    """An MP4 with its index in front (faststart) whose media data is cut off part-way."""
    path = Path(path)
    full = path.with_name(path.stem + ".full.mp4")
    fps = 24.0
    n = _n_frames(duration_s, fps)
    frames = (_texture(108, 192, k) for k in range(n))  # incompressible so bytes ~ time
    write_video(full, frames, fps=fps, audio=_bed(duration_s, "tone"), faststart=True)
    data = full.read_bytes()
    full.unlink()
    path.write_bytes(data[: int(len(data) * keep_fraction)])
    return Clip(path, duration_s, fps, 192, 108, True, notes={"keep_fraction": keep_fraction})


def _small_gop_clip(path: Path, container_format: str, n: int, fps: float) -> None:
    """96×64 textured frames with a keyframe every second, plus the tone bed (AAC)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rate = Fraction(fps).limit_denominator(1001)
    with av.open(str(path), "w", format=container_format) as out:
        vstream = out.add_stream("libx264", rate=rate)
        vstream.width, vstream.height = 96, 64
        vstream.pix_fmt = "yuv420p"
        vstream.options = {"preset": "ultrafast", "crf": "23", "g": str(max(1, round(fps)))}
        astream = out.add_stream("aac", rate=AUDIO_RATE, layout="mono")
        for i in range(n):
            frame = av.VideoFrame.from_ndarray(_texture(64, 96, i), format="rgb24")
            frame.pts, frame.time_base = i, 1 / rate
            out.mux(vstream.encode(frame))
        out.mux(vstream.encode(None))
        _encode_audio(out, astream, _sine(440.0, n / fps, 0.1), AUDIO_RATE)


def ts_lost_packets(
    path: Path, duration_s: float = 8.0, fps: float = 12.0, lost: int = 40
) -> Clip:
    """An MPEG-TS whose middle lost ``lost`` 188-byte transport packets (a broken broadcast).

    The demuxer flags the PES packet that spans the gap as corrupt; everything else is intact.
    """
    path = Path(path)
    n = _n_frames(duration_s, fps)
    _small_gop_clip(path, "mpegts", n, fps)
    data = path.read_bytes()
    middle = len(data) // 188 // 2 * 188
    path.write_bytes(data[:middle] + data[middle + lost * 188 :])
    return Clip(path, n / fps, fps, 96, 64, True, notes={"lost_ts_packets": lost})


def garbled_packets(
    path: Path,
    first: int = 0,
    count: int | None = 1,
    duration_s: float = 8.0,
    fps: float = 12.0,
    seed: int = 0,
) -> Clip:
    """An MP4 (a keyframe every second) whose video packets ``[first, first + count)`` — all
    from ``first`` when ``count`` is None — hold random bytes. The container and its index are
    intact, so only decoding fails; the default garbles the first keyframe.
    """
    path = Path(path)
    n = _n_frames(duration_s, fps)
    _small_gop_clip(path, "mp4", n, fps)
    with av.open(str(path)) as container:
        spans = [
            (p.pos, p.size) for p in container.demux(container.streams.video[0])
            if p.size and p.pos is not None
        ]
    chosen = spans[first:] if count is None else spans[first : first + count]
    data = bytearray(path.read_bytes())
    rng = np.random.default_rng(seed)
    for pos, size in chosen:
        data[pos : pos + size] = rng.bytes(size)
    path.write_bytes(bytes(data))
    return Clip(path, n / fps, fps, 96, 64, True,
                notes={"garbled_packets": [first, first + len(chosen)]})


def garbled_all(path: Path) -> Clip:
    """An MP4 whose every video packet holds random bytes: nothing can be decoded or repaired."""
    return garbled_packets(path, first=0, count=None)


def random_bytes(path: Path, size: int = 64_000, seed: int = 0) -> Clip:
    """Noise with an .mp4 name."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(np.random.default_rng(seed).bytes(size))
    return Clip(path, 0.0)


def empty_file(path: Path) -> Clip:
    """A zero-byte file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return Clip(path, 0.0)


def image_file(path: Path, size: tuple[int, int] = (192, 108)) -> Clip:
    """A PNG picture (a real image, not a video)."""
    from PIL import Image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(_texture(size[1], size[0], 3)).save(path, format="PNG")
    return Clip(path, 0.0, width=size[0], height=size[1])


def audio_only(path: Path, duration_s: float = 6.0) -> Clip:
    """An M4A with a tone and no video stream."""
    write_audio_only(path, _sine(440.0, duration_s, 0.3))
    return Clip(Path(path), duration_s, has_audio=True)


def too_short(path: Path, duration_s: float = 3.0) -> Clip:
    """A valid 3 s clip (below the 5 s minimum)."""
    return static(path, duration_s=duration_s)


def long_still(
    path: Path,
    duration_s: float = 21 * 60.0,
    fps: float = 1.0,
    size: tuple[int, int] = (64, 36),
    audio: str | None = None,
) -> Clip:
    """A long clip made cheap: tiny, 1 fps, a picture that changes every 10 s."""
    width, height = size
    n = _n_frames(duration_s, fps)
    frames = (
        np.full((height, width, 3), 30 + (int(i / fps) // 10 * 37) % 200, np.uint8)
        for i in range(n)
    )
    write_video(path, frames, fps=fps, audio=_bed(duration_s, audio))
    return Clip(Path(path), n / fps, fps, width, height, audio is not None)


def too_long(path: Path) -> Clip:
    """A 21 min clip (above the 20 min maximum), generated in seconds."""
    return long_still(path, duration_s=21 * 60.0)


# Name → generator with defaults: what ``trendflow media synth`` and the fixtures offer.
GENERATORS: dict[str, Callable[[Path], Clip]] = {
    "scene_cuts": scene_cuts,
    "slow_fade": slow_fade,
    "static": static,
    "pan": pan,
    "face": face_clip,
    "text": text_clip,
    "click_track": click_track,
    "tone": tone,
    "silence": silence,
    "speech": speech,
    "no_audio": no_audio,
    "4k": uhd_4k,
    "vertical": vertical,
    "rotated": rotated,
    "vfr": vfr,
    "truncated": truncated,
    "ts_lost_packets": ts_lost_packets,
    "garbled_first_frame": garbled_packets,
    "garbled_all": garbled_all,
    "random_bytes": random_bytes,
    "empty": empty_file,
    "image": image_file,
    "audio_only": audio_only,
    "3s": too_short,
    "21min": too_long,
}

# File suffix per generator where it is not ".mp4".
SUFFIXES: dict[str, str] = {"image": ".png", "audio_only": ".m4a", "ts_lost_packets": ".ts"}


def generate(name: str, out_dir: Path) -> Clip:
    """Write the named clip with its defaults into ``out_dir`` (file ``<name><suffix>``)."""
    try:
        gen = GENERATORS[name]
    except KeyError:
        raise ValueError(f"unknown clip {name!r}; choose from {', '.join(GENERATORS)}") from None
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    return gen(out_dir / f"{name}{SUFFIXES.get(name, '.mp4')}")

