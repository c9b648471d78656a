"""Datasets: plugins provide a :class:`SampleSource`; zoo decodes and resizes it once into a
cache (:mod:`zoo.data.cache`) and batches, augments and normalizes on the training device
(:mod:`zoo.data.pipeline`)."""

from zoo.data.source import DataWarning, Sample, SampleSource, SkipSample, binary_mask, decode_rgb, read_mask

__all__ = ["DataWarning", "Sample", "SampleSource", "SkipSample", "binary_mask", "decode_rgb", "read_mask"]
