"""Helpers shared by the test suite, imported as a package: ``from tests.support.rtsp import RtspServer``."""
