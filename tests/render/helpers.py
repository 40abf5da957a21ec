"""A run's NPZ arrays for the brief, with known values, and a loopback OpenAI-protocol server."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np


def fast_arrays() -> dict[str, dict[str, np.ndarray]]:
    """Scalar results of the ``fast`` components of a quiet, dark, slowly cut vertical clip."""
    f = np.float64
    return {
        "metadata_features": {"duration_s": f(42.0), "width": np.int64(720),
                              "height": np.int64(1280), "fps": f(30.0),
                              "title_chars": np.int64(12), "description_words": np.int64(8),
                              "tags_count": np.int64(0), "title_words": np.int64(2)},
        "shot_detection": {"n_cuts": np.int64(3), "cuts_per_minute": f(4.3),
                           "mean_shot_length_s": f(10.5),
                           "cut_timestamps_s": np.array([11.0, 20.5, 31.0])},
        "color_stats": {"brightness_mean": f(0.21), "contrast_mean": f(0.18)},
        "motion": {"motion_mean": f(0.031), "static_ratio": f(0.62)},
        "loudness": {"integrated_lufs": f(-21.4), "true_peak_dbtp": f(-0.3),
                     "short_term_lufs": np.array([-30.0, -25.5, -24.0], dtype=np.float32),
                     "short_term_times_s": np.array([1.0, 2.0, 3.0])},
        "audio_features": {"tempo_bpm": f(118.0), "silence_ratio": f(0.12)},
    }


DURATION_S = 48.0
TIMELINE_FPS = 12.0  # the analysis timeline


def _unit(rng: np.random.Generator, n: int = 384) -> np.ndarray:
    v = rng.normal(size=n)
    return (v / np.linalg.norm(v)).astype(np.float32)


def _frames(fps: float, duration: float = DURATION_S) -> tuple[np.ndarray, np.ndarray]:
    """(frame_indices, timestamps_s) of a component sampled at ``fps`` on the timeline."""
    step = int(round(TIMELINE_FPS / fps))
    idx = np.arange(0, int(duration * TIMELINE_FPS), step, dtype=np.int64)
    return idx, idx / TIMELINE_FPS


def rich_arrays(components: Sequence[str]) -> dict[str, dict[str, np.ndarray]]:
    """Complete NPZ arrays (every key, dtype and shape of ``schemas/components``) of an ordinary
    48 s vertical talking-head clip: a creator speaks to the camera (a face in most frames,
    speech three quarters of the time at about 166 words per minute), cut about every 5 s,
    mixed at -15.2 LUFS with a peak above -1 dBTP, a 46-character title, a short description
    without hashtags, 12 tags; louder, busier and moving more in its third quarter, darker and
    quieter in the last.
    ``components``: which of them the run has (a profile's list)."""
    from trendflow.forecast.tier0 import TIER0_FEATURES, tier0_vector
    from trendflow.forecast.whatif import whatif_rows
    from trendflow.pipeline.components.model_backed import pack_texts

    rng = np.random.default_rng(7)
    f64, i64 = np.float64, np.int64
    out: dict[str, dict[str, np.ndarray]] = {}
    out["metadata_features"] = {
        "duration_s": f64(DURATION_S), "width": i64(1080), "height": i64(1920),
        "aspect_ratio": f64(1080 / 1920), "is_vertical": np.bool_(True), "fps": f64(30.0),
        "has_audio": np.bool_(True), "video_probed": np.bool_(True),
        "category_id": i64(26), "language_index": i64(1), "channel_follower_count": i64(15420),
        "publish_known": np.bool_(True), "publish_weekday": i64(3), "publish_hour": i64(18),
        "title_chars": i64(46), "title_words": i64(8), "title_caps_ratio": f64(0.08),
        "title_digits": i64(1), "title_emoji": i64(1), "title_hashtags": i64(0),
        "title_links": i64(0), "title_questions": i64(1), "title_exclamations": i64(0),
        "description_chars": i64(231), "description_words": i64(38),
        "description_caps_ratio": f64(0.04), "description_digits": i64(4),
        "description_emoji": i64(2), "description_hashtags": i64(0), "description_links": i64(1),
        "description_questions": i64(0), "description_exclamations": i64(1),
        "tags_count": i64(12), "tags_chars": i64(118), "tags_words": i64(19),
        "tags_mean_chars": f64(9.1), "tags_caps_ratio": f64(0.0), "tags_digits": i64(0),
        "tags_emoji": i64(0), "tags_hashtags": i64(0), "tags_links": i64(0),
        "tags_questions": i64(0), "tags_exclamations": i64(0),
    }
    out["text_embeddings"] = {
        "title_chars": i64(46), "description_chars": i64(231), "title_empty": np.bool_(False),
        "description_empty": np.bool_(False), "title_embedding": _unit(rng),
        "description_embedding": _unit(rng),
    }
    # shots: a cut every ~5 s, the first at 2.4 s, two quick cuts in the third quarter
    idx, ts = _frames(TIMELINE_FPS)
    cut_idx = np.array([29, 90, 150, 228, 300, 330, 366, 420, 498], np.int64)
    cut_ts = cut_idx / TIMELINE_FPS
    shots = np.diff(np.concatenate([[0.0], cut_ts, [DURATION_S]]))
    score = rng.gamma(2.0, 3.0, len(idx)).astype(np.float32)
    score[0] = 0
    score[cut_idx] += 60
    out["shot_detection"] = {
        "frame_indices": idx, "timestamps_s": ts, "content_score": score,
        "cut_frame_indices": cut_idx, "cut_timestamps_s": cut_ts, "n_cuts": i64(len(cut_idx)),
        "cuts_per_minute": f64(len(cut_idx) / (DURATION_S / 60)), "shot_lengths_s": shots,
        "mean_shot_length_s": f64(shots.mean()), "median_shot_length_s": f64(np.median(shots)),
    }
    # motion: a talking head (slow), with a hand-held walk in the third quarter
    mag = np.abs(rng.normal(0.05, 0.02, len(idx))).astype(np.float32)
    mag[(ts >= 24) & (ts < 36)] += 0.12
    mag[318] = 0.46
    mag[0] = 0
    cam = (mag * 0.6).astype(np.float32)
    obj = (mag * 0.5).astype(np.float32)
    out["motion"] = {
        "frame_indices": idx, "timestamps_s": ts, "motion_magnitude": mag,
        "camera_dx": (cam * 0.8).astype(np.float32), "camera_dy": (cam * 0.6).astype(np.float32),
        "camera_magnitude": cam, "object_magnitude": obj,
        "motion_mean": f64(mag.mean()), "motion_max": f64(mag.max()),
        "motion_p90": f64(np.percentile(mag, 90)), "camera_motion_mean": f64(cam.mean()),
        "object_motion_mean": f64(obj.mean()), "static_ratio": f64(np.mean(mag[1:] < 0.02)),
    }
    # colour at 2 fps: a warm indoor picture that gets darker in the last quarter
    cidx, cts = _frames(2.0)
    n = len(cidx)
    bright = np.clip(rng.normal(0.5, 0.04, n) - 0.15 * (cts >= 36), 0, 1).astype(np.float32)
    per_frame = {
        "brightness": bright, "contrast": rng.uniform(0.18, 0.26, n).astype(np.float32),
        "saturation": rng.uniform(0.3, 0.45, n).astype(np.float32),
        "colorfulness": rng.uniform(30, 46, n).astype(np.float32),
        "warm_fraction": rng.uniform(0.35, 0.55, n).astype(np.float32),
        "cool_fraction": rng.uniform(0.1, 0.2, n).astype(np.float32),
    }
    share = np.sort(rng.dirichlet(np.ones(5), n).astype(np.float32), axis=1)[:, ::-1]
    warm, cool = per_frame["warm_fraction"].sum(), per_frame["cool_fraction"].sum()
    out["color_stats"] = {
        "frame_indices": cidx, "timestamps_s": cts, **per_frame,
        **{f"{k}_mean": f64(v.mean()) for k, v in per_frame.items()},
        **{f"{k}_std": f64(v.std()) for k, v in per_frame.items()},
        "palette_rgb": rng.integers(0, 256, (n, 5, 3), dtype=np.uint8),
        "palette_share": np.ascontiguousarray(share),
        "video_palette_rgb": np.array([[182, 132, 96], [60, 52, 48], [220, 210, 200],
                                       [90, 120, 150], [140, 30, 40]], np.uint8),
        "video_palette_share": np.array([0.34, 0.27, 0.18, 0.13, 0.08], np.float32),
        "warm_cool_balance": f64((warm - cool) / (warm + cool)),
    }
    # faces at 2 fps: one face most of the time (from 0.5 s), a guest in the third quarter
    count = np.where(cts >= 0.5, 1, 0).astype(np.int32)
    count[(cts >= 40) & (cts < 43)] = 0
    count[(cts >= 26) & (cts < 32)] = 2
    face_frame = np.repeat(np.arange(n, dtype=np.int32), count)
    nf = len(face_frame)
    x1 = rng.uniform(0.25, 0.35, nf)
    y1 = rng.uniform(0.2, 0.3, nf)
    boxes = np.stack([x1, y1, x1 + 0.4, y1 + 0.22], axis=1).astype(np.float32)
    area = ((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])).astype(np.float32)
    screen = np.zeros(n, np.float32)
    np.add.at(screen, face_frame, area)
    first_row = np.full(n, -1, np.int32)
    rows = np.flatnonzero(np.r_[True, face_frame[1:] != face_frame[:-1]]) if nf else []
    first_row[face_frame[rows]] = np.asarray(rows, np.int32)
    track = np.where(first_row >= 0, 0, -1).astype(np.int32)
    track[cts >= 43] = np.where(first_row[cts >= 43] >= 0, 1, -1)
    out["faces"] = {
        "frame_indices": cidx, "timestamps_s": cts, "face_count": count,
        "face_frame": face_frame, "face_boxes": boxes, "face_area_ratio": area,
        "face_scores": rng.uniform(0.92, 0.999, nf).astype(np.float32),
        "face_landmarks": rng.uniform(0.3, 0.6, (nf, 5, 2)).astype(np.float32),
        "screen_share": screen, "largest_face_row": first_row, "largest_face_track_id": track,
        "frames_with_faces_ratio": f64(np.mean(count > 0)), "mean_face_count": f64(count.mean()),
        "max_face_count": np.int32(count.max()), "mean_screen_share": f64(screen.mean()),
        "n_largest_face_tracks": np.int32(2),
        "largest_face_mean_center": np.array([0.5, 0.36], np.float32),
    }
    labels = np.array(["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"])
    probs = rng.dirichlet([0.3, 0.1, 0.1, 2.0, 0.3, 0.6, 3.0], nf).astype(np.float32)
    dominant = probs.argmax(axis=1).astype(np.int32)
    out["face_emotion"] = {
        "frame_indices": cidx, "timestamps_s": cts, "face_frame": face_frame,
        "emotion_probs": probs, "dominant_emotion": dominant, "labels": labels.astype("<U8"),
        "dominant_share": (np.bincount(dominant, minlength=7) / nf).astype(np.float32),
        "emotion_distribution": probs.mean(axis=0).astype(np.float32),
    }
    # on-screen text at 1 fps: a caption in the first 5 s, then subtitles half of the time
    oidx, ots = _frames(1.0)
    boxes_per = np.where(ots < 5, 2, np.where(ots.astype(int) % 2 == 0, 1, 0)).astype(np.int32)
    box_frame = np.repeat(np.arange(len(oidx), dtype=np.int32), boxes_per)
    nb = len(box_frame)
    area_t = np.where(boxes_per > 0, 0.04 * boxes_per, 0).astype(np.float32)
    scores = rng.uniform(0.85, 0.99, nb).astype(np.float32)
    mean_score = np.zeros(len(oidx), np.float32)
    np.add.at(mean_score, box_frame, scores)
    mean_score = np.where(boxes_per > 0, mean_score / np.maximum(boxes_per, 1), 0)
    out["ocr_text"] = {
        "frame_indices": oidx, "timestamps_s": ots, "box_count": boxes_per,
        "box_frame": box_frame,
        "box_quads": rng.uniform(0.1, 0.9, (nb, 4, 2)).astype(np.float32),
        "box_scores": scores, "frame_mean_score": mean_score.astype(np.float32),
        "text_area_ratio": area_t, "text_lengths": rng.integers(8, 30, nb).astype(np.int32),
        "text_sha256": np.array([f"{i % 17:064x}" for i in range(nb)], "<U64"),
        "text_spans": np.zeros((nb, 2), np.int64), "text_utf8": np.zeros(0, np.uint8),
        "raw_text_stored": np.bool_(False), "distinct_lines": np.int32(17),
        "frames_with_text_ratio": f64(np.mean(boxes_per > 0)),
        "mean_text_area_ratio": f64(area_t.mean()), "text_embedding": _unit(rng),
    }
    # loudness: short-term windows at 10 Hz ending at 3 s … 48 s; louder in the third quarter,
    # a quiet outro
    st_t = np.round(np.arange(30, int(DURATION_S * 10) + 1) / 10, 1)
    st = rng.normal(-15.5, 1.0, len(st_t)) + 3.0 * ((st_t >= 24) & (st_t < 36))
    st = (st - 9.0 * (st_t >= 44)).astype(np.float32)
    out["loudness"] = {
        "integrated_lufs": f64(-15.2), "loudness_range_lu": f64(6.8),
        "true_peak_dbtp": f64(-0.4), "sample_peak_dbfs": f64(-0.9),
        "short_term_lufs": st, "short_term_times_s": st_t,
        "short_term_max_lufs": f64(st.max()),
    }
    beats = np.arange(0.4, DURATION_S, 60 / 96)
    out["audio_features"] = {
        "tempo_bpm": f64(96.0), "beat_times_s": beats, "n_beats": i64(len(beats)),
        "onset_rate_per_s": f64(3.4), "rms_dbfs_mean": f64(-22.7), "silence_ratio": f64(0.08),
        "spectral_centroid_mean": f64(1840.0), "spectral_centroid_std": f64(610.0),
        "spectral_rolloff_mean": f64(3920.0), "spectral_rolloff_std": f64(1210.0),
        "spectral_flatness_mean": f64(0.04), "spectral_flatness_std": f64(0.03),
        "zcr_mean": f64(0.09), "zcr_std": f64(0.04),
        "mfcc_mean": rng.normal(0, 20, 13).astype(np.float32),
        "mfcc_std": rng.uniform(5, 25, 13).astype(np.float32),
    }
    segments = np.array([[0.9, 9.6], [10.4, 21.8], [22.5, 24.1], [29.0, 37.2], [38.0, 43.9]])
    window = 512 / 16000
    wt = np.arange(int(DURATION_S / window)) * window
    inside = ((wt[:, None] >= segments[:, 0]) & (wt[:, None] < segments[:, 1])).any(axis=1)
    speech = float((segments[:, 1] - segments[:, 0]).sum())
    out["speech_activity"] = {
        "audio_duration_s": f64(DURATION_S), "segments_s": segments,
        "speech_duration_s": f64(speech), "speech_ratio": f64(speech / DURATION_S),
        "speech_probs": np.where(inside, 0.9, 0.05).astype(np.float32), "window_s": f64(window),
    }
    said = ["Сегодня покажу, как собрать полку за десять минут."] * len(segments)
    text_buf, spans = pack_texts(said)
    text = b" ".join(bytes(text_buf[a:b]) for a, b in spans)
    starts = np.cumsum([0] + [b - a + 1 for a, b in spans[:-1]])
    out["transcript"] = {
        "source": np.array("asr", "<U8"), "language": np.array("ru", "<U16"),
        "segments_s": segments, "text_stored": np.bool_(True),
        "text_utf8": np.frombuffer(text, np.uint8).copy(),
        "segment_spans": np.stack([starts, starts + (spans[:, 1] - spans[:, 0])], axis=1)
        .astype(np.int64),
        "char_count": i64(len(text.decode())), "word_count": i64(99),
        "words_per_minute": f64(99 / (speech / 60)), "text_sha256": np.array("ab" * 32, "<U64"),
        "text_embedding": _unit(rng),
    }
    if "popularity_prediction" in components:
        vector = tier0_vector({k: v for k, v in out.items() if k in components}, age_days=30.0)
        _, whatifs = whatif_rows(vector)
        names_buf, names_spans = pack_texts(list(TIER0_FEATURES))
        groups = ["metadata_features.title_chars", "text_embeddings.title_embedding",
                  "loudness.integrated_lufs", "faces.frames_with_faces_ratio", "run.age_days"]
        groups_buf, groups_spans = pack_texts(groups)
        w_buf, w_spans = pack_texts([json.dumps({"feature": w.feature, "label": w.label})
                                     for w in whatifs])
        base = np.array([2300.0, 8400.0, 31000.0])
        moved = np.array([[base * (1 + 0.04 * (k % 4) - 0.03)] for k in range(len(whatifs))])
        out["popularity_prediction"] = {
            "views": base, "likes": np.array([71.0, 305.0, 1240.0]),
            "horizon_days": f64(30.0), "features": vector,
            "feature_names_utf8": names_buf, "feature_name_spans": names_spans,
            "contribution_groups_utf8": groups_buf, "contribution_group_spans": groups_spans,
            "contributions": rng.normal(0, 0.3, (2, len(groups))),
            "contribution_bias": np.array([8.1, 4.9]), "whatif_utf8": w_buf,
            "whatif_spans": w_spans,
            "whatif_current": np.array([w.current for w in whatifs], np.float64),
            "whatif_target": np.array([w.target for w in whatifs], np.float64),
            "whatif_views": moved.reshape(len(whatifs), 3),
        }
    return {k: v for k, v in out.items() if k in components}


def profile_components(profile_id: str) -> tuple[str, ...]:
    """The components of a built-in profile (``seed.json``)."""
    from trendflow.db.seed.seed import load_seed

    profile = next(p for p in load_seed().profiles if p.profile_id == profile_id)
    return tuple(c.component_name for c in profile.components)


@contextmanager
def openai_server(answer: Callable[[dict[str, Any], int], tuple[int, dict[str, str], bytes]]
                  ) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A loopback server of ``POST /v1/chat/completions``; ``answer(body, n)`` gives the n-th
    request's (status, headers, body). Yields (base URL, the requests' bodies)."""
    seen: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            seen.append(body)
            status, headers, payload = answer(body, len(seen))
            try:
                self.send_response(status)
                for k, v in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (the timeout case)

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1", seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def completion(content: dict[str, Any]) -> bytes:
    return json.dumps({"model": "fake", "choices": [{"message": {
        "role": "assistant", "content": json.dumps(content, ensure_ascii=False)}}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 20}}).encode()


def echo_statements(body: dict[str, Any]) -> dict[str, Any]:
    """An answer that rewrites nothing: the statements of the request, as the schema asks."""
    schema = body["response_format"]["json_schema"]["schema"]
    user = body["messages"][-1]["content"]
    if "sentences" in schema["properties"]:  # the retry: its statements as one JSON list
        return {"sentences": json.loads(next(ln for ln in user.splitlines()
                                             if ln.startswith("[\"")))}
    lines = [ln.split(". ", 1)[1] for ln in user.splitlines() if ln[:1].isdigit()]
    out, i = [], 0
    for sec in schema["properties"]["sections"]["prefixItems"]:
        n = sec["properties"]["sentences"]["minItems"]
        out.append({"id": sec["properties"]["id"]["const"], "sentences": lines[i:i + n]})
        i += n
    return {"sections": out}
