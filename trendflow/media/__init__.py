"""Test and demo media: synthetic clips with known ground truth (see :mod:`.synth`)."""
