"""Decoding into the analysis timeline, audio extraction and repair re-encodes (PyAV only).

The timeline is built by two FFmpeg filter graphs in a row:

1. ``[transpose…,] fps=<analysis_fps>`` — orientation and time: every decoded frame goes in,
   exactly one frame per timeline tick comes out (the frame shown at ``k / fps``), which also
   turns variable-frame-rate video into a regular timeline;
2. ``[scale=-2:1080:flags=lanczos,] scale=-2:<height>:flags=lanczos, format=rgb24`` — pixels,
   run only for the timeline frames some component asked for.

Frames are emitted chunk by chunk; nothing holds more than one chunk of frames.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from trendflow.errors import VideoFileCorrupted
from trendflow.pipeline.sampling import timestamps_for
from trendflow.pipeline.types import AudioTrack, FrameChunk


@dataclass(frozen=True, slots=True)
class TimelinePlan:
    """How to turn the file into timeline frames (derived by the Segmenter from the probe)."""

    fps: float
    width: int  # timeline frame size
    height: int
    n_frames: int
    rotation: int  # counter-clockwise degrees to reach display orientation
    clamp: tuple[int, int] | None  # (w, h) of the lanczos clamp to the source limit, if any

    def orient_filters(self) -> list[tuple[str, str]]:
        match self.rotation:
            case 90:
                return [("transpose", "cclock")]
            case 270:
                return [("transpose", "clock")]
            case 180:
                return [("hflip", ""), ("vflip", "")]
        return []

    def pixel_filters(self) -> list[tuple[str, str]]:
        steps: list[tuple[str, str]] = []
        if self.clamp is not None:
            steps.append(("scale", f"{self.clamp[0]}:{self.clamp[1]}:flags=lanczos"))
        steps.append(("scale", f"{self.width}:{self.height}:flags=lanczos"))
        steps.append(("format", "rgb24"))
        return steps


def even_width(width: int, height: int, target_height: int) -> int:
    """FFmpeg's ``scale=-2:<target_height>`` width: nearest by aspect, rounded to even."""
    w = (target_height * width + height) // (2 * height) * 2
    return max(2, int(w))


def display_size(width: int, height: int, rotation: int) -> tuple[int, int]:
    return (height, width) if rotation % 180 == 90 else (width, height)


class _Graph:
    """A linear filter chain from one video stream's frames to a buffersink."""

    def __init__(
        self, template: av.VideoStream | av.VideoFrame, steps: list[tuple[str, str]]
    ) -> None:
        self._graph = av.filter.Graph()
        if isinstance(template, av.VideoFrame):
            src = self._graph.add_buffer(
                width=template.width, height=template.height, format=template.format,
                time_base=template.time_base or Fraction(1, 1000),
            )
        else:
            src = self._graph.add_buffer(template=template)
        node = src
        for name, args in steps:
            nxt = self._graph.add(name, args) if args else self._graph.add(name)
            node.link_to(nxt)
            node = nxt
        sink = self._graph.add("buffersink")
        node.link_to(sink)
        self._graph.configure()

    def push(self, frame: av.VideoFrame | None) -> list[av.VideoFrame]:
        self._graph.vpush(frame)
        out: list[av.VideoFrame] = []
        while True:
            try:
                out.append(self._graph.vpull())
            except (av.BlockingIOError, av.EOFError):
                return out


def _decoded_frames(path: Path) -> Generator[tuple[av.VideoStream, av.VideoFrame], None, None]:
    try:
        with av.open(str(path)) as container:
            vs = container.streams.video[0]
            vs.thread_type = "AUTO"
            for frame in container.decode(vs):
                frame.rotation  # noqa: B018 - read side data before frames are reused
                yield vs, frame
    except av.error.FFmpegError as exc:
        raise VideoFileCorrupted(
            f"decoding failed part-way: {type(exc).__name__}", file=path.name
        ) from exc


def iter_timeline_chunks(
    path: Path, plan: TimelinePlan, indices: np.ndarray, chunk_frames: int
) -> Iterator[FrameChunk]:
    """Decode ``path`` once and yield the requested timeline frames in chunks.

    ``indices`` are sorted unique timeline indices; chunk ``k`` holds those in
    ``[k * chunk_frames, (k + 1) * chunk_frames)``. Chunks without requested frames are skipped.
    Decoding stops after the last requested frame.
    """
    indices = np.asarray(indices, dtype=np.int64)
    if indices.ndim != 1 or (len(indices) and (indices[0] < 0 or indices[-1] >= plan.n_frames)):
        raise ValueError(f"indices must be 1-D and within [0, {plan.n_frames})")
    if len(indices) > 1 and not np.all(np.diff(indices) > 0):
        raise ValueError("indices must be sorted and unique")
    if not len(indices):
        return
    # Per chunk: the slice of `indices` that falls into it.
    chunk_of = indices // chunk_frames
    chunk_ids, starts = np.unique(chunk_of, return_index=True)
    bounds = list(zip(chunk_ids.tolist(), starts.tolist(), [*starts[1:].tolist(), len(indices)],
                      strict=True))

    time_graph: _Graph | None = None
    pixel_graph: _Graph | None = None
    context_index: int | None = None
    context_frame: np.ndarray | None = None
    pos = 0  # next position in `indices` to fill
    b = 0  # current chunk in `bounds`
    buf: np.ndarray | None = None
    tick = 0  # timeline index of the next frame out of the fps graph
    last_rgb: np.ndarray | None = None

    def new_buffer() -> np.ndarray:
        _, lo, hi = bounds[b]
        return np.empty((hi - lo, plan.height, plan.width, 3), np.uint8)

    def emit() -> FrameChunk:
        nonlocal context_index, context_frame, b, buf
        cid, lo, hi = bounds[b]
        assert buf is not None
        idx = indices[lo:hi].copy()
        chunk = FrameChunk(
            index=int(cid),
            frame_indices=idx,
            timestamps_s=timestamps_for(idx, plan.fps),
            frames=buf,
            context_index=context_index,
            context_frame=context_frame,
        )
        context_index = int(idx[-1])
        context_frame = buf[-1].copy()
        b += 1
        buf = new_buffer() if b < len(bounds) else None
        return chunk

    def take(rgb: np.ndarray) -> Iterator[FrameChunk]:
        nonlocal pos
        assert buf is not None
        _, lo, hi = bounds[b]
        buf[pos - lo] = rgb
        pos += 1
        if pos == hi:
            yield emit()

    def to_rgb(frame: av.VideoFrame) -> np.ndarray:
        assert pixel_graph is not None
        out = pixel_graph.push(frame)
        if len(out) != 1:
            raise AssertionError(f"pixel graph returned {len(out)} frames for one")
        rgb = out[0].to_ndarray()
        if rgb.shape != (plan.height, plan.width, 3):
            raise AssertionError(
                f"timeline frame {rgb.shape} != planned {plan.height}x{plan.width}"
            )
        return rgb

    buf = new_buffer()
    frames = _decoded_frames(path)
    finished = False
    for vs, frame in frames:
        if time_graph is None:
            time_graph = _Graph(vs, [*plan.orient_filters(), ("fps", f"{plan.fps:g}")])
        for tframe in time_graph.push(frame):
            if pixel_graph is None:
                pixel_graph = _Graph(tframe, plan.pixel_filters())
            if tick < plan.n_frames and pos < len(indices) and indices[pos] == tick:
                rgb = to_rgb(tframe)
                last_rgb = rgb
                yield from take(rgb)
            tick += 1
            if pos == len(indices):
                finished = True
                break
        if finished:
            frames.close()
            return
    if time_graph is not None:
        for tframe in time_graph.push(None):
            if pos < len(indices) and indices[pos] == tick:
                if pixel_graph is None:
                    pixel_graph = _Graph(tframe, plan.pixel_filters())
                last_rgb = to_rgb(tframe)
                yield from take(last_rgb)
            tick += 1
            if pos == len(indices):
                return
    # The fps filter's end rounding can leave the final tick one short of the packet-derived
    # count; that tick shows the same picture as the one before it. More missing is damage.
    missing = len(indices) - pos
    if missing and tick >= plan.n_frames - 1 and last_rgb is not None and indices[pos] < tick + 1:
        while pos < len(indices):
            yield from take(last_rgb)
        return
    if missing:
        raise VideoFileCorrupted(
            f"the video ended after {tick} of {plan.n_frames} timeline frames",
            file=path.name, decoded_frames=tick, expected_frames=plan.n_frames,
        )


def extract_audio(path: Path, rates: tuple[int, ...], duration_hint_s: float) -> AudioTrack:
    """Mono float32 audio of ``path``'s first audio stream at each of ``rates``."""
    with av.open(str(path)) as container:
        if not container.streams.audio:
            return AudioTrack(samples={}, duration_s=0.0, missing_reason="no_audio_stream")
    buffers = {r: np.empty(int(np.ceil((duration_hint_s + 2.0) * r)), np.float32) for r in rates}
    filled = dict.fromkeys(rates, 0)
    resamplers = {r: av.AudioResampler(format="flt", layout="mono", rate=r) for r in rates}

    def put(rate: int, frames: list[av.AudioFrame]) -> None:
        for f in frames:
            data = f.to_ndarray().reshape(-1)
            end = filled[rate] + len(data)
            if end > len(buffers[rate]):  # longer than the container said: grow once
                buffers[rate] = np.resize(buffers[rate], max(end, 2 * len(buffers[rate])))
            buffers[rate][filled[rate] : end] = data
            filled[rate] = end

    try:
        with av.open(str(path)) as container:
            stream = container.streams.audio[0]
            for frame in container.decode(stream):
                for r in rates:
                    put(r, resamplers[r].resample(frame))
            for r in rates:
                put(r, resamplers[r].resample(None))
    except av.error.FFmpegError as exc:
        return AudioTrack(
            samples={}, duration_s=0.0,
            missing_reason=f"extract_failed: {type(exc).__name__}",
        )
    samples = {r: np.clip(buffers[r][: filled[r]], -1.0, 1.0) for r in rates}
    if not any(len(s) for s in samples.values()):
        return AudioTrack(samples={}, duration_s=0.0, missing_reason="extract_failed: no samples")
    first = rates[0]
    return AudioTrack(samples=samples, duration_s=len(samples[first]) / first)


def reencode_tolerant(src: Path, dest: Path, *, crf: int, preset: str) -> tuple[int, int]:
    """Re-encode ``src`` to H.264 (``crf``) + AAC, skipping what cannot be decoded.

    Returns ``(frames written, packets skipped)``. Raises VideoFileCorrupted when nothing decodes.
    """
    written = skipped = 0
    with av.open(str(src), options={"fflags": "+discardcorrupt+genpts"}) as inp:
        vin = inp.streams.video[0]
        vin.codec_context.options = {"err_detect": "ignore_err"}
        vin.thread_type = "AUTO"
        ain = inp.streams.audio[0] if inp.streams.audio else None
        rate = vin.average_rate or vin.guessed_rate or Fraction(30)
        with av.open(str(dest), "w", format="mp4") as out:
            vout = out.add_stream("libx264", rate=rate)
            vout.width = vin.codec_context.width // 2 * 2
            vout.height = vin.codec_context.height // 2 * 2
            vout.pix_fmt = "yuv420p"
            vout.options = {"crf": str(crf), "preset": preset}
            vout.time_base = vin.time_base
            aout = out.add_stream("aac", rate=ain.codec_context.sample_rate) if ain else None
            streams = [s for s in (vin, ain) if s is not None]
            rotation: int | None = None
            start_pts: int | None = None  # the first video packet's time, decodable or not
            for packet in inp.demux(*streams):
                if packet.stream is vin and packet.pts is not None and start_pts is None:
                    start_pts = packet.pts
                try:
                    decoded = packet.decode()
                except av.error.FFmpegError:
                    skipped += 1
                    continue
                for frame in decoded:
                    # Only `vin` and `ain` are demuxed, so a frame is video or audio.
                    if isinstance(frame, av.VideoFrame):
                        if rotation is None:
                            rotation = int(round(frame.rotation or 0)) % 360
                            if rotation:
                                vout.set_display_rotation(rotation)
                        frame.pict_type = av.video.frame.PictureType.NONE
                        if (frame.width, frame.height) != (vout.width, vout.height):
                            frame = frame.reformat(width=vout.width, height=vout.height)
                        if (written == 0 and start_pts is not None and frame.pts is not None
                                and frame.pts > start_pts):
                            # The opening frames did not decode: hold the first picture that
                            # did from the stream's start, so the copy keeps the original's
                            # length and stays in step with the audio.
                            held = av.VideoFrame.from_ndarray(
                                np.asarray(frame.to_ndarray(format="yuv420p"), dtype=np.uint8),
                                format="yuv420p",
                            )
                            held.pts, held.time_base = start_pts, frame.time_base
                            out.mux(vout.encode(held))
                        out.mux(vout.encode(frame))
                        written += 1
                    elif isinstance(frame, av.AudioFrame) and aout is not None:
                        frame.pts = None
                        out.mux(aout.encode(frame))
            out.mux(vout.encode(None))
            if aout is not None:
                out.mux(aout.encode(None))
    if written == 0:
        raise VideoFileCorrupted("no video frame could be decoded", file=src.name)
    return written, skipped


def remux_tolerant(src: Path, dest: Path) -> int:
    """Copy ``src``'s first video and audio streams into a fresh MP4 without re-encoding.

    The demuxer drops packets it flags as corrupt (``+discardcorrupt``) and fills in missing
    presentation times (``+genpts``); the MP4 muxer writes a new index. Returns the number of
    video packets copied; FFmpeg's refusal (a codec MP4 cannot carry, a demux error part-way)
    is a :class:`VideoFileCorrupted` saying so.
    """
    copied = 0
    try:
        with av.open(str(src), options={"fflags": "+discardcorrupt+genpts"}) as inp:
            vin = inp.streams.video[0]
            ain = inp.streams.audio[0] if inp.streams.audio else None
            with av.open(str(dest), "w", format="mp4") as out:
                targets: dict[int, av.stream.Stream] = {
                    vin.index: out.add_stream_from_template(vin)
                }
                if ain is not None:
                    targets[ain.index] = out.add_stream_from_template(ain)
                for packet in inp.demux(*[s for s in (vin, ain) if s is not None]):
                    if packet.size == 0 or (packet.pts is None and packet.dts is None):
                        continue  # end-of-stream markers; nothing a muxer can place
                    is_video = packet.stream is vin
                    packet.stream = targets[packet.stream.index]
                    out.mux(packet)
                    copied += int(is_video)
    except (av.error.FFmpegError, ValueError) as exc:
        raise VideoFileCorrupted(
            f"remux failed: {type(exc).__name__}: {exc}", file=src.name
        ) from exc
    return copied


def count_decodable_frames(path: Path) -> int:
    """Decode every video frame of ``path`` strictly; :class:`VideoFileCorrupted` on any error.

    The check that a repaired copy will not fail part-way through the timeline decode (the
    packet scan does not decode, so damage inside packets only shows here).
    """
    frames = 0
    for _ in _decoded_frames(path):
        frames += 1
    return frames
