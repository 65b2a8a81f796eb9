"""Test peers that stand in for real equipment (an RTSP camera) on loopback."""
