"""The argusd test suite: one folder per pipeline stage, shared helpers in tests.support."""
