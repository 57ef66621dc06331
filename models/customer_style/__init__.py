"""Models in the styles customers hand over (not tuned for EGIS); see train_nhwc.py."""
