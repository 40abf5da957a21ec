"""TrendFlow: video analysis for creators."""
