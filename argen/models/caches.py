"""The incremental-decoding toolkit: caches that a model's stepper (its fast path) keeps between
steps, so that a step costs what is new rather than the whole prefix again.

- :class:`KVCache`: the keys and values of a transformer layer's positions so far, preallocated
  for the whole run (growing a cache by concatenation copies it at every step); a step appends a
  block of positions (one value, or a whole scale of VAR's pyramid) and reads them all.
- :func:`argen.models.layers.row_buffer`: the rows above a convolution's current row, which the
  convolutional fast paths keep (their rows-above products) between rows.
"""


class KVCache:
    """Keys and values ``[B, heads, n, d]`` of the first ``n`` positions, in buffers for ``capacity``."""

    def __init__(self, capacity):
        self.capacity, self.n, self.keys, self.values = capacity, 0, None, None

    def extend(self, keys, values):
        """Append the keys and values ``[B, heads, P, d]`` of P new positions; returns those of every
        position so far, views ``[B, heads, n, d]`` of the buffers (valid until the next call)."""
        if self.keys is None:
            shape = (*keys.shape[:2], self.capacity, keys.shape[3])
            self.keys, self.values = keys.new_empty(shape), values.new_empty(shape)
        n, p = self.n, keys.shape[2]
        if n + p > self.capacity:
            raise ValueError(f"the KV cache holds {self.capacity} positions; {n} are used and {p} more were given")
        self.keys[:, :, n:n + p], self.values[:, :, n:n + p] = keys, values
        self.n = n + p
        return self.keys[:, :, :self.n], self.values[:, :, :self.n]
