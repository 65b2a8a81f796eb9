"""GStreamer import and one-time initialisation, shared by every module that builds pipelines."""

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstVideo", "1.0")
from gi.repository import GLib, Gst, GstVideo  # noqa: E402

Gst.init(None)

__all__ = ["GLib", "Gst", "GstVideo"]
