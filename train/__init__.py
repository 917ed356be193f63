"""Training entry points: ``python -m train <family> [flags]`` over one shared loop."""
