"""Test peers that stand in for real equipment (an RTSP camera, a model server) on loopback."""
