"""Appending to a top-k routesim trace (docs/trace-format.md): the experts
each token used per layer, /router/topk_ids [T, L, K] (-1 pads a row, a row
of -1 only is a (token, layer) not observed), with token ids, phases and
sequence offsets. The file is written with h5py in resizable, chunked
datasets, so memory holds one appended block, never the whole trace."""

import h5py
import numpy as np

__all__ = ["TopkTraceWriter"]

_CHUNK_BYTES = 1 << 20   # about 1 MiB per chunk of /router/topk_ids, as the format suggests
_TOKEN_CHUNK = 1 << 16   # elements per chunk of the per-token datasets


class TopkTraceWriter:
    """Writes a version 1 `unit = token` trace with /router/topk_ids into
    the open path (a temporary file: see routesim.atomic). attrs: the root
    attributes besides format, format_version, unit, num_layers and
    num_experts (model, top_k, source, import_notes, layer_index, ...)."""

    def __init__(self, path, num_layers, num_experts, k, attrs, gzip_level=None):
        self.num_layers, self.num_experts, self.k = num_layers, num_experts, k
        self.tokens = 0
        self.sequences = 0
        self._file = h5py.File(path, "w")
        try:
            self._create(attrs, gzip_level)
        except BaseException:
            self._file.close()
            raise

    def _create(self, attrs, gzip_level):
        f = self._file
        f.attrs.update({"format": "routesim-trace", "format_version": 1, "unit": "token",
                        "num_layers": self.num_layers, "num_experts": self.num_experts})
        for name, value in attrs.items():
            if value is not None:
                f.attrs[name] = value
        filters = {"compression": "gzip", "compression_opts": gzip_level} if gzip_level else {}
        L, K = self.num_layers, self.k
        rows = max(1, _CHUNK_BYTES // (L * K * 4))
        f.create_dataset("router/topk_ids", shape=(0, L, K), maxshape=(None, L, K), dtype=np.int32,
                         chunks=(rows, L, K), **filters)
        f.create_dataset("tokens/ids", shape=(0,), maxshape=(None,), dtype=np.int32, chunks=(_TOKEN_CHUNK,),
                         **filters)
        f.create_dataset("tokens/phase", shape=(0,), maxshape=(None,), dtype=np.uint8, chunks=(_TOKEN_CHUNK,),
                         **filters)
        f.create_dataset("sequences/offsets", data=np.zeros(1, np.int64), maxshape=(None,),
                         chunks=(_TOKEN_CHUNK // 8,))

    def append(self, topk_ids, token_ids, phase, sequence_lengths):
        """Appends n tokens: topk_ids [n, L, K], token_ids [n], phase [n]
        (0 prefill, 1 decode), forming whole sequences of the given lengths
        (summing to n), in order."""
        n = len(token_ids)
        assert topk_ids.shape == (n, self.num_layers, self.k) and int(np.sum(sequence_lengths)) == n
        t0 = self.tokens
        for name, data in (("router/topk_ids", topk_ids), ("tokens/ids", token_ids), ("tokens/phase", phase)):
            d = self._file[name]
            d.resize(t0 + n, axis=0)
            if n:
                d[t0:t0 + n] = data
        lengths = np.asarray(sequence_lengths, np.int64)
        offsets = self._file["sequences/offsets"]
        s0 = self.sequences
        offsets.resize(s0 + 1 + len(lengths), axis=0)
        offsets[s0 + 1:] = t0 + np.cumsum(lengths)
        self.tokens += n
        self.sequences += len(lengths)

    def set_attr(self, name, value):
        """Sets a root attribute known only once the tokens are written (top_k, import_notes)."""
        self._file.attrs[name] = value

    def close(self):
        self._file.close()
