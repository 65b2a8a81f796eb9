"""Captioner plugins (entry point group argusd.captioners): template, openai, transformers."""
