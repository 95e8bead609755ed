"""An endless, deterministic, resumable stream of index batches, sharded across processes.

Epoch ``e`` visits the dataset in the order ``default_rng([seed, e]).permutation(n)``. Under DDP the
permutation is padded (by wrapping around) to a multiple of the world size and process ``rank``
takes every ``world_size``-th index from ``rank`` on. A process's stream is its shards of epochs
0, 1, 2, ... laid end to end, and its position is the number of indices it has drawn. Starting
from that position yields exactly the batches the uninterrupted stream would have yielded.

With ``drop_last`` (as a PyTorch ``DataLoader(shuffle=True, drop_last=True)`` iterated once per
epoch, the official MOVE loop) each epoch ends at its last full batch: the ``epoch_length %
batch_size`` indices left over are dropped, never carried into the next epoch, which starts a fresh
permutation. An epoch is then ``epoch_length // batch_size`` batches.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np


class InfiniteBatchSampler:
    """Batches of ``batch_size`` indices of a ``size``-item dataset, forever, from position ``start``."""

    def __init__(self, size: int, *, batch_size: int, seed: int = 0, rank: int = 0, world_size: int = 1,
                 start: int = 0, drop_last: bool = False):
        if size < 1:
            raise ValueError("the dataset is empty")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is not in [0, {world_size})")
        self.size, self.batch_size, self.seed = size, batch_size, seed
        self.rank, self.world_size, self.start = rank, world_size, start
        self.epoch_length = -(-size // world_size)  # indices per process and epoch
        self.drop_last = drop_last
        if drop_last and self.epoch_length < batch_size:
            raise ValueError(f"with drop_last an epoch of {self.epoch_length} items per process holds no full batch "
                             f"of {batch_size}; use a smaller batch or more data")
        # indices of an epoch that are used: all of them, or (drop_last) those of its full batches
        self.epoch_used = self.batches_per_epoch * batch_size if drop_last else self.epoch_length

    @property
    def batches_per_epoch(self) -> int:
        """Full batches per epoch and process: ``epoch_length // batch_size`` (with drop_last, all there are)."""
        return self.epoch_length // self.batch_size

    def shard(self, epoch: int) -> np.ndarray:
        """This process's indices of epoch ``epoch``, (epoch_length,)."""
        order = np.random.default_rng([self.seed, epoch]).permutation(self.size)
        padding = self.epoch_length * self.world_size - self.size
        order = np.concatenate([order, order[:padding]])
        return order[self.rank :: self.world_size]

    def __iter__(self) -> Iterator[list[int]]:
        epoch, offset = divmod(self.start, self.epoch_used)
        shard = self.shard(epoch)
        while True:
            batch = []
            while len(batch) < self.batch_size:
                if offset == self.epoch_used:
                    epoch, offset = epoch + 1, 0
                    shard = self.shard(epoch)
                take = shard[offset : offset + self.batch_size - len(batch)]
                batch.extend(int(i) for i in take)
                offset += len(take)
            yield batch
