"""Datasets in memory (numpy arrays, or the same as tensors): MNIST, Fashion-MNIST (IDX files), the bundled sample.

Rooms: ``idx`` reads IDX files defensively; ``mirrors`` and ``package_index`` are the two
fetch routes; ``sample`` is the bundled offline sample; ``sources`` says where each dataset
is looked for, in which order, and implements ``auto``. Importing this package imports no torch:
the loaders read numpy (``load_arrays``, ``load_test_arrays``); ``load_dataset`` / ``load_test_set``
wrap the same arrays as tensors.
"""

from fnnkit.data.dataset import (
    DIGITS,
    Dataset,
    DatasetArrays,
    DatasetInfo,
    TestArrays,
    TestSet,
    preprocess,
    preprocess_array,
)
from fnnkit.data.idx import IMAGE_SHAPE, NUM_CLASSES, read_idx, read_images, read_labels
from fnnkit.data.sample import load_sample, read_sample, sample_file
from fnnkit.data.sources import (
    DATASET_NAMES,
    FASHION_CLASSES,
    IDX_FILES,
    IDX_SOURCES,
    SPLIT_FILES,
    SYSTEM_FASHION_DIR,
    DatasetStatus,
    dataset_status,
    dataset_statuses,
    default_data_dir,
    fetch_dataset,
    find_idx_folder,
    load_arrays,
    load_dataset,
    load_test_arrays,
    load_test_set,
)

__all__ = [
    "DATASET_NAMES",
    "DIGITS",
    "FASHION_CLASSES",
    "IDX_FILES",
    "IDX_SOURCES",
    "IMAGE_SHAPE",
    "NUM_CLASSES",
    "SPLIT_FILES",
    "SYSTEM_FASHION_DIR",
    "Dataset",
    "DatasetArrays",
    "DatasetInfo",
    "DatasetStatus",
    "TestArrays",
    "TestSet",
    "dataset_status",
    "dataset_statuses",
    "default_data_dir",
    "fetch_dataset",
    "find_idx_folder",
    "load_arrays",
    "load_dataset",
    "load_sample",
    "load_test_arrays",
    "load_test_set",
    "preprocess",
    "preprocess_array",
    "read_idx",
    "read_images",
    "read_labels",
    "read_sample",
    "sample_file",
]
