"""Video -> frames: sampling rules (sampling), PyAV decoding (decode), Spark steps (tasks), config, demo videos."""
