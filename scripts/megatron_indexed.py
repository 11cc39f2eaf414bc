#!/usr/bin/env python3
"""Megatron-LM's own indexed-dataset reader and writer, for Kumo's format-parity tests.

  megatron_indexed.py read PREFIX            prints {"dtype", "sequences", "document_indices"} as JSON
  megatron_indexed.py write PREFIX DTYPE     reads {"documents": [[[tokens]...]...]} (sequences per
                                             document) on stdin and writes PREFIX.bin/.idx with
                                             megatron.core's IndexedDatasetBuilder

Needs `pip install torch megatron-core numpy` (make test installs them).
"""
import json
import sys
import warnings

warnings.filterwarnings("ignore")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from megatron.core.datasets.indexed_dataset import IndexedDataset, IndexedDatasetBuilder  # noqa: E402


def read(prefix):
    dataset = IndexedDataset(prefix)
    print(json.dumps({
        "dtype": np.dtype(dataset.index.dtype).name,
        "sequences": [dataset[i].tolist() for i in range(len(dataset))],
        "document_indices": dataset.document_indices.tolist(),
    }))


def write(prefix, dtype):
    documents = json.load(sys.stdin)["documents"]
    builder = IndexedDatasetBuilder(prefix + ".bin", dtype=np.dtype(dtype).type)
    for document in documents:
        for sequence in document:
            builder.add_item(torch.tensor(sequence, dtype=torch.int64))
        builder.end_document()
    builder.finalize(prefix + ".idx")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "read":
        read(sys.argv[2])
    elif len(sys.argv) == 4 and sys.argv[1] == "write":
        write(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)
