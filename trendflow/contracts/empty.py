"""The canonical vocabulary of ``empty_reason``: why a valid component result holds no data.

A component returns an empty result (status ``empty``) only for one of these reasons; anything
else is an error. The list is part of the NPZ and manifest contracts (DESIGN.md §3).
"""

from __future__ import annotations

from enum import StrEnum


class EmptyReason(StrEnum):
    AUDIO_MISSING_OR_EXTRACT_FAILED = "audio_missing_or_extract_failed"
    NO_FACES_IN_VIDEO = "no_faces_in_video"
    NO_TEXT_AVAILABLE = "no_text_available"
    OCR_DISABLED_BY_POLICY = "ocr_disabled_by_policy"
    COMMENTS_MISSING_OR_DISABLED = "comments_missing_or_disabled"
    VIDEO_TOO_SHORT = "video_too_short"
    VIDEO_TOO_LONG = "video_too_long"
    DEPENDENCY_MISSING = "dependency_missing"


EMPTY_REASONS: frozenset[str] = frozenset(r.value for r in EmptyReason)
