"""OpenVINO on a CPU, one camera per core: a batch's images run as concurrent single-image requests on
independent streams, each with its own thread, instead of one request whose threads wait for each other.

Why: with the cameras' decoders on the same cores, a LATENCY-mode request's worker threads stall whenever one
of them is descheduled, and the process used 131% of 200% in benchmarks/run.py. Streams share nothing, so a
descheduled stream delays only its own image (docs/performance.md, "OpenVINO streams"). A single image (one
camera, or a batch of one) still runs on the LATENCY model, which gives it every thread.

ultralytics' AsyncInferQueue is avoided (it can hang on Intel and AMD CPUs, ultralytics issue 25923): each
stream is driven by a synchronous request on a thread of a small pool; OpenVINO releases the GIL in infer().
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np


class ParallelRequests:
    """Stands in for ultralytics' compiled model (called with a BCHW float32 array, answering an object whose
    ``values()`` are the outputs in order): a batch above one image is split over ``streams`` requests."""

    def __init__(self, latency_model: Any, throughput_model: Any, streams: int) -> None:
        self.latency_model = latency_model
        self.streams = streams
        self._requests = [throughput_model.create_infer_request() for _ in range(streams)]
        self._pool = ThreadPoolExecutor(streams, thread_name_prefix="openvino-stream")
        self.get_property: Callable[[str], Any] = latency_model.get_property  # what callers read of the model

    def input(self) -> Any:
        return self.latency_model.input()

    def __call__(self, batch: np.ndarray) -> dict[int, np.ndarray]:
        if len(batch) == 1:
            return dict(enumerate(self.latency_model(batch).values()))
        # contiguous slices, one per request; each request's outputs are copied before it runs again
        slices = np.array_split(np.arange(len(batch)), min(self.streams, len(batch)))
        parts = list(self._pool.map(self._infer, self._requests, [batch[s[0]: s[-1] + 1] for s in slices]))
        return {index: np.concatenate([part[index] for part in parts]) for index in range(len(parts[0]))}

    @staticmethod
    def _infer(request: Any, images: np.ndarray) -> list[np.ndarray]:
        outputs = []
        for image in images:
            request.infer({0: image[None]})
            outputs.append([tensor.data.copy() for tensor in request.output_tensors])
        return [np.concatenate(per_output) for per_output in zip(*outputs, strict=True)]


def compile_streams(core: Any, model: Any, threads: int) -> ParallelRequests:
    """``model`` compiled twice on the CPU: LATENCY with ``threads`` threads for single images, THROUGHPUT with
    one stream (and thread) per thread for batches."""
    latency = core.compile_model(model, "CPU", {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": threads})
    if threads == 1:
        return ParallelRequests(latency, latency, 1)
    throughput = core.compile_model(model, "CPU", {"PERFORMANCE_HINT": "THROUGHPUT", "NUM_STREAMS": threads,
                                                   "INFERENCE_NUM_THREADS": threads})
    return ParallelRequests(latency, throughput, threads)
