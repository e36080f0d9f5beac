"""Batches at the network's rate: DataLoaders, decoding threads, packed-array batches, prefetching.

The lower half of :mod:`lib.data` (which opens the sources, defines the per-image transform and calls
this module; nothing here imports it back: decoding comes in as a function): here images become batches ``(x, labels, paths, bad)``, decoded or read ahead of the network so that it never
waits. ``raw=True`` everywhere yields uint8 pixels that the consumer normalises on its device
(:func:`normalize_uint8`, the same float32 operations as the original's transform): a quarter of
the bytes to move, one vectorised normalisation per batch, and page-locked (pinned) memory on CUDA.
"""
from __future__ import annotations

import os
import queue
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler, SequentialSampler

__all__ = ["normalize_uint8", "collate_skip_bad", "make_loader", "iter_image_batches", "PackedLoader", "prefetch", "auto_workers"]


def normalize_uint8(t: torch.Tensor) -> torch.Tensor:
    """``ToTensor`` + ``Normalize(0.5, 0.5)`` of uint8 pixels, any shape, on their device: the same float32 ops."""
    return t.float().div_(255).sub_(0.5).div_(0.5)


def auto_workers(requested: int, device: str, purpose: str, local_world: int = 1) -> int:
    """Decoding workers: at most ``requested`` (--workers), and what the device can use.

    CUDA: worker processes, up to the CPUs per GPU process less one (the main process feeds the GPU).
    CPU: training decodes in-process (0: the network already uses every core); scoring uses 1-4 threads
    (one per 4 CPUs per process), enough to overlap decoding with the network without starving it.
    """
    cpus = max(1, (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
               // max(1, local_world))
    if device.startswith("cuda"):
        return min(requested, max(1, cpus - 1))
    if purpose == "train" or requested == 0:
        return 0
    return min(requested, max(1, min(4, cpus // 4)))


def prefetch(iterable, depth: int = 2):
    """Iterate ``iterable`` in a background thread, ``depth`` items ahead (reading overlaps the consumer)."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    done, stop = object(), threading.Event()

    def run() -> None:
        try:
            for item in iterable:
                while not stop.is_set():
                    try:
                        q.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(done)
        except BaseException as exc:  # handed to the consumer
            q.put(exc)

    threading.Thread(target=run, daemon=True).start()
    try:
        while (item := q.get()) is not done:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()


def collate_skip_bad(items):
    """Stack good items; return ``(images (B,C,H,W), labels (B,), paths, bad)``."""
    good = [it for it in items if it[0] is not None]
    bad = [(it[2], it[3]) for it in items if it[0] is None]
    if not good:
        return None, None, [], bad
    x = torch.stack([it[0] for it in good])
    y = torch.tensor([it[1] for it in good], dtype=torch.long)
    return x, y, [it[2] for it in good], bad


def make_loader(dataset: Dataset, batchsize: int, *, shuffle: bool, drop_last: bool, workers: int,
                generator: torch.Generator | None = None, pin_memory: bool = False, batch_sampler=None) -> DataLoader:
    """A DataLoader yielding ``collate_skip_bad`` batches (``batch_sampler``, e.g. a rank's shard, replaces
    batchsize / shuffle / drop_last)."""
    if batch_sampler is not None:  # generator: the DataLoader draws its worker seed from it first, as below
        return DataLoader(dataset, batch_sampler=batch_sampler, num_workers=workers, collate_fn=collate_skip_bad,
                          generator=generator, pin_memory=pin_memory, persistent_workers=workers > 0)
    return DataLoader(dataset, batch_size=batchsize, shuffle=shuffle, drop_last=drop_last,
                      num_workers=workers, collate_fn=collate_skip_bad, generator=generator,
                      pin_memory=pin_memory, persistent_workers=workers > 0)


def _decode_chunk(chunk: Sequence[tuple[str, int]], decode: Callable[[str], torch.Tensor | np.ndarray]):
    tensors, paths, labels, bad = [], [], [], []
    for path, label in chunk:
        try:
            tensors.append(decode(path))
            paths.append(path)
            labels.append(label)
        except Exception as exc:  # reported per file; the rest of the batch is scored
            bad.append((path, f"{type(exc).__name__}: {exc}".splitlines()[0]))
    if not tensors:
        return None, labels, paths, bad
    # numpy (H, W, C) images are stacked by numpy: no torch kernel in a worker thread, whose own OpenMP
    # team would compete with the network's threads for the cores
    return (np.stack(tensors) if isinstance(tensors[0], np.ndarray) else torch.stack(tensors)), labels, paths, bad


def iter_image_batches(samples: Sequence[tuple[str, int]], decode: Callable[[str], torch.Tensor], batchsize: int,
                       workers: int = 1, pin: bool = False
                       ) -> Iterator[tuple[torch.Tensor | None, list[int], list[str], list[tuple[str, str]]]]:
    """Decode images in ``workers`` background threads (PIL releases the GIL) while earlier batches are scored.

    ``decode(path)`` gives one image tensor (C, H, W), e.g. ``transform(load_image(path, nc))`` of
    :mod:`lib.data`, or a uint8 numpy array (H, W, C) (yielded as a channels-last uint8 view (B, C, H, W));
    a file it cannot read is reported, not raised. Yields ``(x (B, C, H, W) or None,
    labels, paths, bad)`` in file order, ``workers + 1`` batches ahead at most, where ``bad`` lists
    ``(path, reason)``; ``pin``: x in page-locked memory (CUDA).
    """
    chunks = [samples[i:i + batchsize] for i in range(0, len(samples), batchsize)]

    def decode_chunk(chunk):
        x, labels, paths, bad = _decode_chunk(chunk, decode)
        if isinstance(x, np.ndarray):  # (B, H, W, C) -> a (B, C, H, W) channels-last view: metadata only
            x = torch.from_numpy(x).permute(0, 3, 1, 2)
        return (x.pin_memory() if pin and x is not None else x), labels, paths, bad

    workers = max(1, workers)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        pending = [pool.submit(decode_chunk, c) for c in chunks[:workers + 1]]
        for i in range(len(chunks)):
            result = pending.pop(0).result()
            if i + workers + 1 < len(chunks):
                pending.append(pool.submit(decode_chunk, chunks[i + workers + 1]))
            yield result


class PackedLoader:
    """Batches of a ``lib.data.PackedImages`` in the form of :func:`make_loader`: ``(x, labels, filenames, bad=[])``.

    Used by train.py and test.py wherever an image folder is accepted; the
    shuffle order comes from ``generator`` (re-seeded per epoch by the
    training loop, as for folders).
    """

    def __init__(self, dataset: Dataset, batchsize: int, shuffle: bool = False, drop_last: bool = False,
                 generator: torch.Generator | None = None, batch_sampler=None, raw: bool = False,
                 pin: bool = False) -> None:
        self.dataset, self.batchsize, self.shuffle, self.drop_last = dataset, batchsize, shuffle, drop_last
        self.generator, self.batch_sampler, self.raw, self.pin = generator, batch_sampler, raw, pin

    def __len__(self) -> int:
        if self.batch_sampler is not None:
            return len(self.batch_sampler)
        n = len(self.dataset)
        return n // self.batchsize if self.drop_last else -(-n // self.batchsize)

    def _batches(self, index_lists):
        names = self.dataset.filenames
        for idx in index_lists:
            idx = np.asarray(idx, dtype=np.int64)
            if self.raw:  # uint8 (B, C, H, W), a channels-last view of the (B, H, W, C) rows
                x = torch.from_numpy(np.ascontiguousarray(self.dataset.array[idx])).permute(0, 3, 1, 2)
            else:
                x = self.dataset.batch(idx)
            yield (x.pin_memory() if self.pin else x), torch.from_numpy(self.dataset.labels[idx]), \
                [names[i] for i in idx], []

    def __iter__(self):
        # the same samplers as a DataLoader over the image folder: same seed, same batches
        if self.batch_sampler is not None:
            index_lists = iter(self.batch_sampler)
        else:
            sampler = RandomSampler(self.dataset, generator=self.generator) if self.shuffle else SequentialSampler(self.dataset)
            index_lists = BatchSampler(sampler, self.batchsize, self.drop_last)
        return prefetch(self._batches(index_lists))  # the memory-mapped read overlaps the network
