"""The analysis pipeline: Segmenter, sampling, components and the local runner. No Ray here."""
