"""GStreamer import and one-time initialisation, shared by every module that builds pipelines."""

import ctypes

import gi

# libgstreamer links libunwind, which also exports the C++ unwinder's _Unwind_* symbols. Put libgcc_s
# (the real unwinder) into the global symbol scope first. Otherwise a C++ exception thrown later (OpenVINO
# throws and catches some while probing devices) can bind to libunwind's copy and abort the process.
ctypes.CDLL("libgcc_s.so.1", mode=ctypes.RTLD_GLOBAL)

gi.require_version("Gst", "1.0")
gi.require_version("GstVideo", "1.0")
from gi.repository import GLib, Gst, GstVideo  # noqa: E402

Gst.init(None)

__all__ = ["GLib", "Gst", "GstVideo"]
