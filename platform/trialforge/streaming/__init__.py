"""Datasets bigger than memory, read by Ray Data as trials iterate them (`data.stream`).

The driver lists the files and splits them by file; it never reads them. Reading, decoding
and preprocessing run in Ray Data's tasks, a block at a time, and each trial (or each DDP
worker, through `ray.train.get_dataset_shard`) iterates batches of its share.
"""

from trialforge.streaming.stream import StreamedData, check_stream, open_stream

__all__ = ["StreamedData", "check_stream", "open_stream"]
