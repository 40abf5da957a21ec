-- 0005: what a paid run was priced for. Forward-only.
--
-- The video facts its estimate (and credit reservation) used: {"duration_s", "width",
-- "height"} — read from YouTube's metadata by the API, or probed from the upload. Once the
-- run has fetched and probed the video it checks the real file against them and refuses one
-- that is longer or larger than priced (video_exceeds_quote; nothing is charged). NULL for
-- runs that reserve nothing (the system account's bulk runs) and for rows made before.

ALTER TABLE runs ADD COLUMN priced_video JSONB;
