"""GStreamer import and one-time initialisation, shared by every module that builds pipelines."""

import contextlib
import ctypes

import gi

# libgstreamer links libunwind, whose _Unwind_* symbols would otherwise enter the global symbol scope first
# and take over C++ exception unwinding in libraries loaded later: OpenVINO then crashes (SIGSEGV) on an
# exception it throws and catches itself while probing devices. Loading GCC's unwinder globally first keeps
# exceptions on the unwinder they were built for.
with contextlib.suppress(OSError):  # not a glibc/GCC system: nothing to protect
    ctypes.CDLL("libgcc_s.so.1", mode=ctypes.RTLD_GLOBAL)

gi.require_version("Gst", "1.0")
gi.require_version("GstVideo", "1.0")
gi.require_version("GstApp", "1.0")
from gi.repository import GLib, Gst, GstApp, GstVideo  # noqa: E402

Gst.init(None)

__all__ = ["GLib", "Gst", "GstApp", "GstVideo"]


# NVDEC decoders (plugins-bad nvcodec): they register only where an NVIDIA GPU and driver are present.
NVDEC_DECODERS = ("nvh264dec", "nvh265dec", "nvjpegdec", "nvvp9dec", "nvav1dec")


def prefer_gpu_decoding() -> list[str]:
    """Rank the NVDEC decoders above the software ones, so every camera's decodebin picks them; their
    output is negotiated into system memory for the rest of the pipeline. Returns the decoders preferred
    (none where the elements are absent: a machine without an NVIDIA GPU decodes on the CPU as before)."""
    registry = Gst.Registry.get()
    preferred = []
    for name in NVDEC_DECODERS:
        feature = registry.lookup_feature(name)
        if feature is not None:
            feature.set_rank(Gst.Rank.PRIMARY + 100)
            preferred.append(name)
    return preferred
