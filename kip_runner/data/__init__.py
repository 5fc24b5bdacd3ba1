"""Data layer: numpy in, numpy out. The only importer of TensorFlow / tfds (lazily)."""

from kip_runner.data.datasets import Dataset, load_dataset

__all__ = ["Dataset", "load_dataset"]
